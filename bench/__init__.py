"""Benchmarks: adbvoice against Google's `adb pull` on the same emulated phone.

`python -m bench` (see bench/__main__.py) builds WhatsApp-shaped phone trees, serves each
through the emulated phone under three link profiles, and times adbvoice and `adb pull`
alternately, counting what does not depend on machine noise too: round trips, packets and
bytes on the wire, from the emulator's packet log.
"""
