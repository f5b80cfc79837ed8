"""`python -m creditguard`: the same command line as the `creditguard` script."""

from creditguard.cli import app

app()
