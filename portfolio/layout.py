"""Where scoring runs live: a runs root of dated runs, each published atomically.

    RUNS/
      2026-01-01 -> .versions/2026-01-01.20260102T031500.123456   one per scoring day
      2026-01-31 -> .versions/2026-01-31.20260201T031500.654321
      latest     -> 2026-01-31                                    the newest scoring day
      .versions/                                                  the runs' files
      .lock                                                       held while a run writes

A run is written in full under `.versions/` and then published by replacing its dated link with
one rename, so a reader finds either the old run or the new one, never a missing or half-written
folder. The version it replaced stays until the day is scored again (a reader that opened it
keeps reading it). One run writes to a root at a time (an exclusive lock); a second is refused.
The nightly job, `creditguard score`, the service (`CREDITGUARD_RUNS`) and the run history read
this layout.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.errors import InputError

LATEST = "latest"
VERSIONS = ".versions"
LOCK = ".lock"
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RUN_MARKER = "clients.parquet"  # every run has its clients table


class RunsRootError(InputError):
    """A runs root cannot be written to (a file, a single run, not writable, a foreign folder)."""


class RunLockedError(InputError):
    """Another run is writing to the same runs root."""


def check_root(root: Path) -> None:
    """Whether a run could be published under `root`, checked before any work is done: a folder
    (or a path one can be made at) that is writable and not itself a single run."""
    if root.exists() and not root.is_dir():
        raise RunsRootError(f"{root} is a file; --out is a folder of runs")
    if (root / RUN_MARKER).exists():
        raise RunsRootError(
            f"{root} holds a single run ({RUN_MARKER}); --out is the folder of runs above it"
        )
    existing = root
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise RunsRootError(f"{root} cannot be made: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunsRootError(f"{root} is not writable (no write permission on {existing})")


class RunsRoot:
    """A folder of dated runs (see the module's docstring)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, day: pd.Timestamp) -> Path:
        return self.root / _name(day)

    def runs(self) -> list[tuple[pd.Timestamp, Path]]:
        """The published runs, oldest first (dated entries that are runs)."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if DAY.match(entry.name) and (entry / RUN_MARKER).exists():
                try:
                    found.append((pd.Timestamp(dt.date.fromisoformat(entry.name)), entry))
                except ValueError:
                    continue
        return sorted(found)

    def latest(self) -> Path | None:
        runs = self.runs()
        return runs[-1][1] if runs else None

    def before(self, day: pd.Timestamp) -> Path | None:
        """The latest run scored strictly before `day`."""
        earlier = [path for as_of, path in self.runs() if as_of < day]
        return earlier[-1] if earlier else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while a run writes (the nightly job: while it scores, monitors and prunes); a
        second writer is refused at once with who holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / LOCK).open("a+")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise RunLockedError(
                    f"another scoring run is writing to {self.root} ({holder}); wait for it to "
                    "finish or write to another --out"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(
                f"pid {os.getpid()}, started {dt.datetime.now().isoformat(timespec='seconds')}"
            )
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the lock

    @contextmanager
    def publish(self, day: pd.Timestamp) -> Iterator[Path]:
        """A scratch folder for the run of `day`; when the block ends without error it becomes
        the published run of that day (and `latest` when no later day is published). On any
        error or interruption the scratch is removed and nothing published changes."""
        versions = self.root / VERSIONS
        versions.mkdir(parents=True, exist_ok=True)
        name = _name(day)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=versions))
        try:
            yield scratch
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        try:
            self.check_day(day)  # made while the run was being written?
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        final = versions / f"{name}.{stamp}"
        scratch.rename(final)
        final.chmod(0o755)  # mkdtemp made it private; a run is read by the service and people
        target = self.root / name
        replaced = _migrate(target, versions, name)
        _point(target, Path(VERSIONS) / final.name)
        newest = self.runs()[-1][0] if self.runs() else day
        if day >= newest:
            _point(self.root / LATEST, Path(name))
        self._prune(name, keep={final.name, replaced})

    def _prune(self, name: str, keep: set[str | None]) -> None:
        """Versions of a day other than the one published and the one it replaced, and scratch
        left by a run that was killed outright (SIGKILL: no chance to clean; under the lock no
        other run is writing)."""
        versions = self.root / VERSIONS
        for entry in versions.iterdir():
            superseded = entry.name.startswith(f"{name}.") and entry.name not in keep
            if superseded or entry.name.startswith("."):
                shutil.rmtree(entry, ignore_errors=True)

    def published(self, day: pd.Timestamp) -> bool:
        """Whether a run of `day` is published."""
        target = self.path(day)
        return target.is_dir() and (target / RUN_MARKER).exists()

    def check_day(self, day: pd.Timestamp) -> None:
        """Whether the run of `day` can be published: its dated entry is absent, a published
        run, or a run folder from before this layout; anything else is refused, not moved."""
        target = self.path(day)
        if target.is_symlink() or not os.path.lexists(target):
            return
        if target.is_dir() and (target / RUN_MARKER).exists():
            return
        kind = "a folder that is not a run" if target.is_dir() else "a file"
        raise RunsRootError(
            f"{target} is {kind}; move it away to publish the run of {_name(day)} there"
        )


def _name(day: pd.Timestamp) -> str:
    return pd.Timestamp(day).date().isoformat()


def _point(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to `target` (relative) in one rename."""
    fresh = link.with_name(f".{link.name}.link-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    os.symlink(target, fresh)
    os.replace(fresh, link)


def _migrate(target: Path, versions: Path, name: str) -> str | None:
    """The version the dated entry points at now (None: none). A run folder written before this
    layout (a real folder, not a link) is moved under `.versions/` first: the one moment a
    reader could miss it, once."""
    if target.is_symlink():
        return os.readlink(target).rsplit("/", 1)[-1]
    if target.is_dir() and (target / RUN_MARKER).exists():
        moved = versions / f"{name}.before-layout"
        shutil.rmtree(moved, ignore_errors=True)
        target.rename(moved)
        return moved.name
    return None
