"""The backup: the one flow that joins the phone to the archive.

Plan what to copy (pure), receive and check each note, publish it a group at a time, and
report the run. It may import phone/, archive/ and the base modules; never the views,
unattended use or the CLI.
"""
