"""What the service holds: the scorer, the ledger for the online feature path, keys and the audit log."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import Ledger
from features.io import load_ledger
from features.payment_behaviour import build_client_features
from features.pipeline import client_ledger
from serving.bundle import MODELS_DIR

ROLES = {
    "officer": {"score"},
    "batch": {"score", "score_batch"},
    "admin": {"score", "score_batch", "reload"},
}
DEFAULT_LEDGER = MODELS_DIR.parent / "data" / "demo" / "ledger"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeys:
    """Keys stored only as SHA-256 hashes, each with a role, a short id for the audit log and an
    optional last day of validity."""

    by_hash: dict[str, tuple[str, str, date | None]]  # hash -> (role, key id, valid through)

    @classmethod
    def from_env(cls) -> ApiKeys:
        """`CREDITGUARD_API_KEYS` = 'role:key,role:key:2026-12-31' or `CREDITGUARD_API_KEYS_FILE`
        (one per line); a key with a date is valid through that day (UTC)."""
        text = os.environ.get("CREDITGUARD_API_KEYS", "")
        path = os.environ.get("CREDITGUARD_API_KEYS_FILE")
        if path:
            text += "," + Path(path).read_text().replace("\n", ",")
        by_hash = {}
        for item in filter(None, (t.strip() for t in text.split(","))):
            role, _, rest = item.partition(":")
            key, _, until = rest.partition(":")
            if role not in ROLES or not key:
                raise ValueError(
                    f"API key entries are 'role:key[:YYYY-MM-DD]' with role in {sorted(ROLES)}; "
                    f"got role {role!r}"
                )
            try:
                valid_through = date.fromisoformat(until) if until else None
            except ValueError:
                raise ValueError(
                    f"API key of role {role!r}: expiry {until!r} is not a date (YYYY-MM-DD)"
                ) from None
            digest = hash_key(key)
            by_hash[digest] = (role, digest[:12], valid_through)
        return cls(by_hash)

    def check(self, authorization: str | None, action: str) -> tuple[int, str]:
        """(0, key id) when allowed, else (401 or 403, message)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return 401, "missing bearer token (Authorization: Bearer <key>)"
        found = self.by_hash.get(hash_key(authorization[7:].strip()))
        if found is None:
            return 401, "unknown or revoked API key"
        role, key_id, valid_through = found
        if valid_through is not None and datetime.now(UTC).date() > valid_through:
            return 401, f"API key expired on {valid_through.isoformat()}"
        if action not in ROLES[role]:
            return 403, f"role {role!r} may not {action}"
        return 0, key_id


class AuditLog:
    """Append-only SQLite log of every decision."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = threading.Lock()
        # Writers in other worker processes queue on an flock, which wakes the next one as soon as
        # the lock is free; SQLite's own busy handler, on a locked database, sleeps 1, 2, 5 ... up
        # to 100 ms between retries, which would land on requests.
        self.writers = (path.parent / f"{path.name}.lock").open("a")
        # One connection for the service's life; write-ahead log: a decision costs one fsync
        # (synchronous=FULL keeps every committed decision through a power cut), and readers
        # such as `creditguard audit` never block the service.
        self.db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self.db.execute("pragma journal_mode=wal")
        self.db.execute("pragma synchronous=full")
        with self.db:
            self.db.execute(
                "create table if not exists decisions (at text, key_id text, endpoint text, client_id text, "
                "model_versions text, pd real, grade integer, decision text, reasons text)"
            )

    def append(self, *, key_id: str, endpoint: str, doc: dict[str, Any]) -> None:
        decision = doc.get("limit_decision") or {}
        row = (
            datetime.now(UTC).isoformat(timespec="seconds"),
            key_id,
            endpoint,
            str(doc.get("client_id")),
            json.dumps(doc.get("model_versions")),
            float(doc["pd_12m"]),
            int(doc["grade"]),
            json.dumps(decision),
            json.dumps([r["text"] for r in doc.get("risk_reasons", [])]),
        )
        with self.lock:
            fcntl.flock(self.writers, fcntl.LOCK_EX)
            try:
                with self.db:
                    self.db.execute("insert into decisions values (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
            finally:
                fcntl.flock(self.writers, fcntl.LOCK_UN)

    def history(self, client_id: str) -> pd.DataFrame:
        with sqlite3.connect(self.path) as db:
            return pd.read_sql_query(
                "select * from decisions where client_id = ? order by at", db, params=(client_id,)
            )


def audit_path() -> Path:
    return Path(os.environ.get("CREDITGUARD_AUDIT_DB", MODELS_DIR / "audit" / "audit.db"))


class OnlineLedger:
    """The ledger the service scores against; one client's history is cut out per request."""

    def __init__(self, folder: Path) -> None:
        self.ledger: Ledger = load_ledger(folder)
        self.clients = set(self.ledger.clients["client_id"])
        inv = self.ledger.invoices
        # Row positions of every client's history in every table, found once: a request then
        # takes its client's rows by position instead of scanning millions of rows.
        client_of_invoice = pd.Series(
            inv["client_id"].to_numpy(), index=inv["invoice_id"].to_numpy()
        )
        self.rows: dict[str, dict[str, np.ndarray]] = {}
        for name, frame in self.ledger.tables().items():
            owner = (
                frame["invoice_id"].map(client_of_invoice)
                if name == "payments"
                else frame["client_id"]
            )
            self.rows[name] = (
                pd.Series(np.arange(len(frame))).groupby(owner.to_numpy()).indices
                if len(frame)
                else {}
            )
        self.names = self.ledger.clients.set_index("client_id")["name"]
        # Every client's features on the default day (the day after the extraction), built once by
        # the batch path of the same feature code: a request for that day takes its row instead
        # of rebuilding the client's history (~12 ms). Other days go through the online path.
        self.default_day = self.ledger.extracted_on + pd.Timedelta(days=1)
        self.snapshot = build_client_features(self.ledger, as_of_dates=[self.default_day])
        self.snapshot_row = {c: i for i, c in enumerate(self.snapshot["client_id"])}

    @functools.lru_cache(maxsize=4096)  # noqa: B019  (one ledger per service, lives as long)
    def client(self, client_id: str) -> Ledger:
        """One client's whole history as a ledger."""
        empty = np.array([], dtype=int)
        return self.ledger.with_tables(
            {
                name: frame.iloc[self.rows[name].get(client_id, empty)]
                for name, frame in self.ledger.tables().items()
            }
        )

    def snapshot_rows(self, client_ids: list[str], as_of: pd.Timestamp) -> list[int] | None:
        """Positions in `snapshot` of these clients' rows (those onboarded by then, in table
        order) when `as_of` is the default day; None for any other day."""
        if as_of != self.default_day:
            return None
        return sorted(self.snapshot_row[c] for c in client_ids if c in self.snapshot_row)

    def features(self, client_id: str, as_of: pd.Timestamp) -> pd.DataFrame:
        """The client's feature row on `as_of` (empty when it was not yet onboarded)."""
        return self.batch_features([client_id], as_of)

    def batch_features(self, client_ids: list[str], as_of: pd.Timestamp) -> pd.DataFrame:
        rows = self.snapshot_rows(client_ids, as_of)
        if rows is not None:
            return self.snapshot.iloc[rows].reset_index(drop=True)
        if len(client_ids) == 1:  # one client's history is cut out once and kept
            return build_client_features(self.client(client_ids[0]), as_of_dates=[as_of])
        return build_client_features(client_ledger(self.ledger, client_ids), as_of_dates=[as_of])
