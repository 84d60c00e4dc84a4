"""`transcribe`: every archived note heard by the speech engine, its words kept in the catalog.

A flow beside backup/ and prune/: it joins the archive (notes, catalog) and the speech
engine, and may import archive/, speech/ and the base modules, never the views, unattended
use or the CLI.
"""
