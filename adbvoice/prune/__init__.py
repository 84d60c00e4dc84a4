"""`prune`: the one command that deletes on the phone — only notes the archive provably holds.

A flow beside backup/: it joins the phone and the archive, and may import phone/, archive/
and the base modules, never the views, unattended use or the CLI.
"""
