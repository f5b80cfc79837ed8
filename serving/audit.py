"""The audit log: every decision the service makes, appended to SQLite."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.paths import MODELS_DIR


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
                "model_versions text, pd real, grade text, decision text, reasons text)"
            )
            self.db.execute(
                "create table if not exists actions (at text, key_id text, client_id text, "
                "invoice_id text, action text, on_date text, amount real, note text)"
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
            str(doc["grade"]),
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

    def append_action(self, *, key_id: str, row: dict[str, Any]) -> None:
        """An action recorded through the service, with who recorded it (the key's id)."""
        amount = row.get("amount")
        values = (
            datetime.now(UTC).isoformat(timespec="seconds"),
            key_id,
            str(row["client_id"]),
            None if pd.isna(row.get("invoice_id")) else str(row["invoice_id"]),
            str(row["action"]),
            str(row["on"]),
            None if amount is None or pd.isna(amount) else float(amount),
            None if pd.isna(row.get("note")) else str(row["note"]),
        )
        with self.lock:
            fcntl.flock(self.writers, fcntl.LOCK_EX)
            try:
                with self.db:
                    self.db.execute("insert into actions values (?, ?, ?, ?, ?, ?, ?, ?)", values)
            finally:
                fcntl.flock(self.writers, fcntl.LOCK_UN)

    def history(self, client_id: str) -> pd.DataFrame:
        with sqlite3.connect(self.path) as db:
            return pd.read_sql_query(
                "select * from decisions where client_id = ? order by at", db, params=(client_id,)
            )


def audit_path() -> Path:
    return Path(os.environ.get("CREDITGUARD_AUDIT_DB", MODELS_DIR / "audit" / "audit.db"))
