"""What reads the archive for a person: `ls`, `stats`, `info` and the HTML page.

Views only read (the page is the one file they write, where asked); they import archive/
and the base modules, never phone/ or the flows.
"""
