"""The `creditguard` command line: one thin command per library function, grouped in modules by
what they work on (data, models, runs, the service, the demo); the commands themselves are flat."""

from __future__ import annotations

from creditguard import data, demo, jobs, models, runs, service  # noqa: F401  (they register commands)
from creditguard.app import app

__all__ = ["app"]
