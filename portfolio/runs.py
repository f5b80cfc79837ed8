"""Reading the nightly runs back: what each run said of each client, for the next decision.

The decision PD of a client is the previous run's, moved towards today's point-in-time PD
(`scoring.grades`); the service and a run that was not given `--previous` read that history from
the runs under a runs root (one folder per run, each with its `clients.parquet`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from portfolio.layout import LATEST
from scoring.scorer import HISTORY_COLUMNS


def run_folders(root: Path) -> list[Path]:
    """The run folders under `root` (those with a clients table), oldest first by their as_of."""
    return list(dated_runs(root).values())


def dated_runs(root: Path) -> dict[pd.Timestamp, Path]:
    """The run folders under `root` by their as_of, oldest first."""
    if not root.is_dir():
        return {}
    found = []
    for folder in root.iterdir():
        table = folder / "clients.parquet"
        if folder.name.startswith(".") or folder.name == LATEST:  # `portfolio.layout`
            continue
        if folder.is_dir() and table.exists():
            as_of = pq.read_table(table, columns=["as_of"]).slice(0, 1).to_pylist()
            if as_of:
                found.append((pd.Timestamp(as_of[0]["as_of"]), folder))
    return dict(sorted(found))


@dataclass
class RunHistory:
    """The runs under a root by their as_of; a run's history columns are read when asked for
    (the latest two kept), so that a service holds no more of them than it uses."""

    runs: dict[pd.Timestamp, Path] = field(default_factory=dict)
    read: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, root: Path) -> RunHistory:
        return cls(dated_runs(root))

    def before(self, day: pd.Timestamp) -> pd.DataFrame | None:
        """The clients table of the latest run strictly before `day` (None: no such run)."""
        earlier = [as_of for as_of in self.runs if as_of < day]
        if not earlier:
            return None
        as_of = max(earlier)
        with self.lock:
            table = self.read.get(as_of)
            if table is None:
                path = self.runs[as_of] / "clients.parquet"
                table = pd.read_parquet(path, columns=list(HISTORY_COLUMNS))
                while len(self.read) >= 2:
                    self.read.pop(next(iter(self.read)))
                self.read[as_of] = table
        return table

    def latest(self) -> Path | None:
        """The newest run's folder (None: no run)."""
        return self.runs[max(self.runs)] if self.runs else None
