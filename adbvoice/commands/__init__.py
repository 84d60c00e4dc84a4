"""The command line's commands, one module per family; `adbvoice.cli` assembles them.

The only code (with cli.py) that parses arguments and prints: each command calls one core
function, shows its events and result, and turns its errors into one line and an exit code.
"""
