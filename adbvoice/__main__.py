"""`python -m adbvoice` runs the same CLI as the `adbvoice` script."""

from adbvoice.cli import main

main()
