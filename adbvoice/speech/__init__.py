"""The speech engine: turning a note's audio into words, offline, on this computer's CPU.

The one import boundary of faster-whisper (an optional extra, `adbvoice[transcribe]`): every
fault test patches it here. Like phone/ and archive/, it knows nothing of the other packages
of its layer: it may import only the base modules (errors, cancel, events, display).
"""
