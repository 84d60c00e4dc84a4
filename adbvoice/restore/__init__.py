"""`restore` and `send`: putting notes and recordings back on the phone, each file verified
by the phone's own hash before it takes its name, never replacing a different file.

A flow beside backup/ and prune/: it joins the phone and the archive, and may import phone/,
archive/ and the base modules, never the views, unattended use or the CLI.
"""
