"""An emulated Android phone: adbd's side of ADB over TCP, serving a folder as /sdcard.

The rest of the project is tested end to end against it, and it is itself checked
against Google's adb host, so it follows AOSP's adbd (packages/modules/adb) closely:
transport and streams, RSA authentication, the sync service and the shell, the latter
being Android's own userland (mksh, toybox) in a bubblewrap sandbox.
"""

from adbvoice.emulator.auth import AuthPolicy
from adbvoice.emulator.faults import Faults
from adbvoice.emulator.link import LinkProfile
from adbvoice.emulator.log import PacketLog, PacketRecord
from adbvoice.emulator.phone import EmulatedPhone

__all__ = ["AuthPolicy", "EmulatedPhone", "Faults", "LinkProfile", "PacketLog", "PacketRecord"]
