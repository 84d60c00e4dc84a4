"""Every error a user can cause, each with its one-line message and its own exit code.

The pattern is borg's: the class names the exit code, the instance carries the message.
The CLI prints `str(error)` and exits with `error.exit_code`; README's exit-code table is
checked against `EXIT_CODES` by a test, so add a row there when you add a class here.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_WARNINGS = 3
EXIT_SOME_FAILED = 4
EXIT_INTERRUPTED = 130


class AdbVoiceError(Exception):
    """Base of every error the user can cause or fix; never shown with a traceback."""

    exit_code: ClassVar[int] = EXIT_INTERNAL
    summary: ClassVar[str] = "unexpected error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(AdbVoiceError):
    exit_code = EXIT_USAGE
    summary = "bad command line or option value"


class NoDeviceError(AdbVoiceError):
    exit_code = 10
    summary = "no phone found"


class SeveralDevicesError(AdbVoiceError):
    exit_code = 11
    summary = "several phones attached and no --serial"


class NotAuthorizedError(AdbVoiceError):
    exit_code = 12
    summary = "the phone refused this computer (USB debugging not allowed)"


class AuthTimeoutError(AdbVoiceError):
    exit_code = 13
    summary = "nobody tapped Allow on the phone in time"


class UsbPermissionError(AdbVoiceError):
    exit_code = 14
    summary = "no permission to open the USB device (udev rule missing)"


class UsbBusyError(AdbVoiceError):
    exit_code = 15
    summary = "another program holds the USB phone"


class HostUnreachableError(AdbVoiceError):
    exit_code = 16
    summary = "the phone's Wi-Fi address cannot be reached"


class ConnectionLostError(AdbVoiceError):
    exit_code = 17
    summary = "the phone went away or stopped answering during the run"


class NoWhatsAppFoldersError(AdbVoiceError):
    exit_code = 18
    summary = "no WhatsApp voice-note folder on the phone"


class AdbKeyError(AdbVoiceError):
    exit_code = 19
    summary = "the adb key file cannot be read or created"


class ArchiveNotWritableError(AdbVoiceError):
    exit_code = 20
    summary = "the archive folder cannot be created or written"


class DiskFullError(AdbVoiceError):
    exit_code = 21
    summary = "the archive's disk is full"


class ArchiveLockedError(AdbVoiceError):
    exit_code = 22
    summary = "another adbvoice run is using the archive"


class LayoutError(AdbVoiceError):
    exit_code = 23
    summary = "the --layout template is not usable"


class NotAnArchiveError(AdbVoiceError):
    exit_code = 24
    summary = "the folder is not an adbvoice archive, or its catalog is unreadable"


class UnknownNoteError(AdbVoiceError):
    exit_code = 25
    summary = "no such note in the archive's catalog"


class ConfigError(AdbVoiceError):
    exit_code = 26
    summary = "the config file or an ADBVOICE_ environment variable is not usable"


class ScheduleError(AdbVoiceError):
    exit_code = 27
    summary = "the scheduled backup cannot be installed or removed"


class LogFileError(AdbVoiceError):
    exit_code = 28
    summary = "the log file cannot be written"


class ArchiveDamagedError(AdbVoiceError):
    """`verify` found the archive and its catalog disagreeing; the report says where."""

    exit_code = 29
    summary = "verify found notes missing or changed, or files the catalog does not know"


class PruneRefusedError(AdbVoiceError):
    """`prune` cannot prove the archive holds the notes apart from the phone: nothing deleted."""

    exit_code = 50
    summary = "prune refused: the archive may be on the phone itself, or the phone cannot hash its notes"


class PruneNeedsConfirmationError(AdbVoiceError):
    exit_code = 51
    summary = "prune needs --yes when it cannot ask on a terminal; nothing was deleted"


class TlsNotTrustedError(AdbVoiceError):
    """Wireless debugging: the phone ended TLS after seeing our key (it forgot this computer)."""

    exit_code = 52
    summary = "this phone no longer trusts this computer for Wireless debugging: pair again"


class PhoneNotOnNetworkError(AdbVoiceError):
    """--wifi: mDNS did not find the phone, and its last known address did not answer either."""

    exit_code = 53
    summary = "the remembered phone is not on the network (Wireless debugging off, or mDNS blocked)"


class WrongPhoneError(AdbVoiceError):
    """--wifi: another phone answered at the remembered phone's address."""

    exit_code = 54
    summary = "a different phone answered at the remembered phone's address"


class ShareError(AdbVoiceError):
    """`send --share` could not hand the file to WhatsApp; the file itself is on the phone."""

    exit_code = 30
    summary = "send --share could not open WhatsApp's share sheet (the file is on the phone)"


class PushRefusedError(AdbVoiceError):
    """restore/send cannot prove a pushed file whole before it takes its name: nothing pushed."""

    exit_code = 35
    summary = "restore or send refused: the phone has no shell that can hash and rename files"


class PhoneFullError(AdbVoiceError):
    exit_code = 36
    summary = "the phone's storage is full"


class PhoneNotWritableError(AdbVoiceError):
    exit_code = 37
    summary = "a folder on the phone cannot be written (read-only or not allowed)"


class NotAudioError(AdbVoiceError):
    exit_code = 38
    summary = "send: a file is not audio"


class SendFileError(AdbVoiceError):
    exit_code = 39
    summary = "send: a file cannot be read (missing, a folder, or not allowed)"


class PairingCodeWrongError(AdbVoiceError):
    exit_code = 56
    summary = "pairing failed: the phone refused the pairing code"


class PairingClosedError(AdbVoiceError):
    """Nothing (or something else) answers at the pairing address, or it hung up midway."""

    exit_code = 57
    summary = "pairing failed: the phone's pairing dialog is closed (its port is gone)"


class PairingNotFoundError(AdbVoiceError):
    exit_code = 58
    summary = "pairing by QR code: no phone's pairing service appeared on the network in time"


class PairingInputError(AdbVoiceError):
    exit_code = 59
    summary = "pairing: the address is not HOST:PORT, or the code is not 6 digits"
class TranscribeExtraMissingError(AdbVoiceError):
    exit_code = 40
    summary = "transcription needs the transcribe extra: pip install 'adbvoice[transcribe]'"


class ModelNotFoundError(AdbVoiceError):
    exit_code = 41
    summary = "the speech model is not a known model name, or its path is not a model folder"


class ModelUnavailableError(AdbVoiceError):
    """A model named by a name that is not on disk, and no network (or HF_HUB_OFFLINE=1) to fetch it."""

    exit_code = 42
    summary = "the speech model is not on disk and cannot be downloaded"


class TranscribeLockedError(AdbVoiceError):
    exit_code = 43
    summary = "another transcribe run is working on the archive"


class LanguageError(AdbVoiceError):
    exit_code = 44
    summary = "the speech model does not know the language asked for"


class PhoneMessageTooLongError(AdbVoiceError):
    """A message header claimed more bytes than the link agreed: nothing of it was read."""

    exit_code = 65
    summary = "the phone sent a message longer than the ADB protocol allows"


class PhoneSentTooMuchError(AdbVoiceError):
    """Output past its cap, or data sent past flow control: no real phone does either."""

    exit_code = 66
    summary = "the phone sent more than any real phone would (output past its cap, or ignoring flow control)"


class PhoneTooSlowError(AdbVoiceError):
    """A deadline passed that a trickle of bytes cannot extend (handshake, request or run)."""

    exit_code = 67
    summary = "the phone did not finish in time: a deadline that a trickle cannot extend passed"


class StaleLockError(AdbVoiceError):
    """The lock's holder is past the end it expected for itself: hung, not busy."""

    exit_code = 68
    summary = "the archive has been locked for longer than the run holding it expected (a hung run?)"


class UnsafeStateFolderError(AdbVoiceError):
    """Something in `.adbvoice/` is a link, not what it should be, or not the user's."""

    exit_code = 69
    summary = "the archive's .adbvoice folder holds a link or something that is not yours"


class ArchiveNotPrivateError(AdbVoiceError):
    """The archive folder belongs to someone else, or others may write in it."""

    exit_code = 70
    summary = "the archive folder is not private: another user owns it or may write in it"


class AdbServerError(AdbVoiceError):
    """The program on the adb server's port answered outside the smart-socket protocol."""

    exit_code = 71
    summary = "the adb server answered something adb's protocol does not allow"


class InterruptedRun(AdbVoiceError):
    """Ctrl-C or SIGTERM: the file in flight was finished or discarded."""

    exit_code = EXIT_INTERRUPTED
    summary = "interrupted (Ctrl-C or SIGTERM); the next run resumes"


def _all_error_classes() -> list[type[AdbVoiceError]]:
    found: list[type[AdbVoiceError]] = []
    pending = list(AdbVoiceError.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def exit_code_table() -> dict[int, str]:
    """Exit code → what it means: the single source README's table is checked against."""
    table = {
        EXIT_OK: "success: everything new is archived",
        EXIT_INTERNAL: "internal error (a bug: please report it with the output of -v)",
        EXIT_WARNINGS: "completed with warnings (e.g. a note still being recorded, unreadable audio)",
        EXIT_SOME_FAILED: "completed, but some notes could not be copied (see the messages)",
    }
    for cls in _all_error_classes():
        table[cls.exit_code] = cls.summary
    return dict(sorted(table.items()))
