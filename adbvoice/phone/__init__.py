"""Everything that speaks ADB to a phone, and nothing else does.

The wire format, one connection with its streams, the `sync:` and `shell:` clients, the
scripts the phone runs and their parsers, the adb server's protocol, and connecting (USB,
TCP, through a server; keys; the Allow wait). It knows nothing of the archive: it may
import only the base modules (errors, cancel, events, display, whatsapp).
"""
