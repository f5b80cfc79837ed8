"""The ledger the service scores against, read a client at a time, never held whole.

The service reads the ledger in its partitioned form (`features.partitioned`): a partitioned
ledger as it is, a plain folder through a partitioned copy written once into the cache (per
version of its files). At start a worker holds only the clients table (ids, names, limits: one
small row per client); a request that needs a client's history (another day than the nightly
run's, the officer page, a client onboarded since the run) reads it from the client's bucket with
filtered scans, typed and checked against the contract like its bucket, and keeps the latest few.
The nightly run's features answer the run's day (`serving.offline`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import Ledger, empty_table
from features.io import check_files, read_layout
from features.partitioned import (
    client_part,
    earliest,
    hold_copy,
    partitioned_copy,
    read_clients,
    shared_checks,
)
from features.payment_behaviour import build_client_features
from scoring.paths import REPO

DEFAULT_LEDGER = REPO / "data" / "demo" / "ledger"
DEFAULT_RUNS = REPO / "data" / "demo" / "runs"  # the nightly runs: the offline store, the history
DEFAULT_CACHE = REPO / "data" / "cache"  # partitioned copies of plain ledgers, offline stores
BUCKET_CLIENTS = 256  # clients per bucket of a partitioned copy: a client's read scans one


def cache_root() -> Path:
    """Where the service keeps partitioned copies and offline stores (`CREDITGUARD_CACHE`)."""
    return Path(os.environ.get("CREDITGUARD_CACHE", DEFAULT_CACHE))


CLIENT_COLUMNS = ["client_id", "name", "country", "industry", "onboarded_on", "credit_limit"]
CLIENT_CACHE = 256  # clients whose history a worker keeps read


class OnlineLedger:
    """The ledger the service scores against; one client's history is read per request."""

    def __init__(self, folder: Path, cache: Path = DEFAULT_CACHE) -> None:
        self.folder = folder
        self.partitioned = read_layout(folder) is not None
        self.source = partitioned_copy(folder, cache / "ledgers", bucket_clients=BUCKET_CLIENTS)
        # held while this ledger is in use: a reload elsewhere never removes the copy it reads
        self.held = hold_copy(self.source)
        self.shared, _ = shared_checks(self.source)
        self.files = check_files(folder)  # the folder configured, as a run records it
        self.table = read_clients(self.source, CLIENT_COLUMNS)
        ids = self.table["client_id"].tolist()
        # plain dicts: a lookup in a pandas index of Arrow strings converts the whole index
        # (15 ms a request at 100,000 clients)
        self.onboarded = dict(zip(ids, self.table["onboarded_on"], strict=True))
        limits = (
            self.table["credit_limit"].to_numpy(dtype="float64")
            if "credit_limit" in self.table
            else np.full(len(ids), np.nan)
        )
        self.limits = dict(zip(ids, limits.tolist(), strict=True))
        self.clients = self.limits.keys()  # `client_id in ledger.clients`
        self.extracted_on = self.shared.day
        self.default_day = self.extracted_on + pd.Timedelta(days=1)
        # The earliest day a score can be asked for: the ledger's first record
        first_invoice = earliest(self.source, "invoices", "issued_on")
        onboarded = self.table["onboarded_on"]
        self.first_day = min(
            pd.Timestamp(onboarded.min()) if len(onboarded) else self.default_day,
            first_invoice if first_invoice is not None else self.default_day,
        )
        # actions this worker recorded in a plain ledger folder (its partitioned copy predates
        # them); a partitioned ledger takes them in its buckets, read with the client
        self.recorded = empty_table("actions")

    @functools.lru_cache(maxsize=CLIENT_CACHE)  # noqa: B019  (one ledger per load, lives as long)
    def client(self, client_id: str) -> Ledger:
        """One client's whole history as a ledger (its rows that break the contract set
        aside, as a run sets them aside)."""
        part = client_part(self.source, client_id, self.shared)
        if part is None:
            raise KeyError(client_id)
        ledger = part.ledger
        mine = self.recorded[self.recorded["client_id"] == client_id]
        if len(mine):
            actions = pd.concat([ledger.actions, mine], ignore_index=True)
            ledger = ledger.with_tables({"actions": actions})
        return ledger

    def release(self) -> None:
        """Let the cache remove this ledger's partitioned copy (a newer one answers now)."""
        if self.held is not None:
            self.held.close()
            self.held = None

    def add_action(self, row: pd.DataFrame) -> None:
        """An action just recorded in the ledger's action log (`features.actions`), seen at once
        by this worker's next view of its client (other workers: at their next /reload, or at
        once for a partitioned ledger, whose buckets they read)."""
        if not self.partitioned:
            self.recorded = pd.concat([self.recorded, row], ignore_index=True)
        self.client.cache_clear()

    def onboarded_before(self, client_id: str, day: pd.Timestamp) -> bool:
        """Whether the client was onboarded before `day` (so it has a row that day)."""
        return bool(pd.Timestamp(self.onboarded.get(client_id, pd.NaT)) < day)

    def current_limits(self, client_ids: np.ndarray) -> np.ndarray:
        """Each client's limit today (NaN: none granted)."""
        return np.array([self.limits.get(c, np.nan) for c in client_ids], dtype="float64")

    def batch_features(self, client_ids: list[str], as_of: pd.Timestamp) -> pd.DataFrame:
        """These clients' feature rows on `as_of` (none for a client not yet onboarded then),
        built from their histories."""
        if len(client_ids) == 1:
            return build_client_features(self.client(client_ids[0]), as_of_dates=[as_of])
        ledgers = [self.client(c) for c in sorted(client_ids)]
        tables = {
            name: pd.concat([lg.table(name) for lg in ledgers], ignore_index=True)
            for name in ledgers[0].tables()
        }
        return build_client_features(ledgers[0].with_tables(tables), as_of_dates=[as_of])
