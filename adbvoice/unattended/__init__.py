"""Running with nobody watching: settings from flags, variables and the config file, a
cheap look for phones, `watch`, scheduled jobs (cron, systemd) and the run log.

It sits above the flows (backup/) and below the CLI: it never prints.
"""
