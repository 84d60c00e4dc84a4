"""adbvoice: back up WhatsApp voice notes from an Android phone over ADB."""

__version__ = "0.1.0"
