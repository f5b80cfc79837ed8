"""Reading the nightly runs back: what each run said of each client, for the next decision.

The decision PD of a client is the previous run's, moved towards today's point-in-time PD
(`scoring.grades`); the service and a run that was not given `--previous` read that history from
the runs under a runs root (one folder per run, each with its `clients.parquet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from portfolio.layout import LATEST
from scoring.scorer import HISTORY_COLUMNS


def run_folders(root: Path) -> list[Path]:
    """The run folders under `root` (those with a clients table), oldest first by their as_of."""
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        table = folder / "clients.parquet"
        if folder.name.startswith(".") or folder.name == LATEST:  # `portfolio.layout`
            continue
        if folder.is_dir() and table.exists():
            as_of = pq.read_table(table, columns=["as_of"]).slice(0, 1).to_pylist()
            if as_of:
                found.append((pd.Timestamp(as_of[0]["as_of"]), folder))
    return [folder for _, folder in sorted(found)]


@dataclass
class RunHistory:
    """The history columns of every run under a root, by the run's as_of."""

    runs: dict[pd.Timestamp, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> RunHistory:
        runs = {}
        for folder in run_folders(root):
            table = pd.read_parquet(folder / "clients.parquet", columns=list(HISTORY_COLUMNS))
            if len(table):
                runs[pd.Timestamp(table["as_of"].iloc[0])] = table
        return cls(runs)

    def before(self, day: pd.Timestamp) -> pd.DataFrame | None:
        """The clients table of the latest run strictly before `day` (None: no such run)."""
        earlier = [as_of for as_of in self.runs if as_of < day]
        return self.runs[max(earlier)] if earlier else None
