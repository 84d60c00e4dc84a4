"""The CLI's commands, one module per group; `adbvoice.cli` assembles them."""
