"""The `creditguard` command line (see `creditguard.cli`); no library logic lives here."""
