"""Recording what was done about a client or an invoice in a ledger's action log (`actions`).

One row is checked against the contract with its client (and invoice) before it is appended:
an unknown client or action, an invoice of another client, a date after the ledger's extraction
date or before 1900, a negative or impossibly large amount, a note with a line break or over
2,000 characters is an `InputError` naming the field, and nothing is written. The table is
rewritten whole, atomically, under a lock, so that two writers never lose a row. A replay (the
same row again: client, invoice, action, day, amount and note) is recorded once: the answer says
it was there already (`replayed`).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from features.contract import LedgerValidationError, check_ledger, coerce_table
from features.errors import InputError
from features.io import (
    atomic_file,
    find_table,
    read_layout,
    read_table_file,
    reporting_currency,
    resolve_extracted_on,
)
from features.partitioned import append_action, client_rows


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".actions.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _rows_of(path: Path | None, column: str, value: str) -> pd.DataFrame:
    """The rows of a table file whose `column` equals `value` (read with a filter for Parquet)."""
    if path is None:
        return pd.DataFrame()
    if path.suffix == ".parquet":
        return pq.read_table(path, filters=[(column, "=", value)]).to_pandas()
    frame = read_table_file(path)
    return frame[frame[column].astype(str).str.strip() == value]


def record_action(
    folder: Path | str,
    *,
    client_id: str,
    action: str,
    on: str,
    invoice_id: str | None = None,
    amount: float | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Check one action and append it to the ledger folder's action log; returns the row."""
    folder = Path(folder)
    row = {
        "client_id": client_id,
        "invoice_id": invoice_id or "",
        "action": action,
        "on": on,
        "amount": "" if amount is None else str(amount),
        "note": note or "",
    }
    layout = read_layout(folder)
    if layout is not None:  # a partitioned ledger: the client's bucket, read with a filter
        bucket = layout.bucket_of(client_id)
        clients, invoices = (
            (pd.DataFrame(), pd.DataFrame())
            if bucket is None
            else (
                client_rows(folder, "clients", bucket, client_id),
                client_rows(folder, "invoices", bucket, client_id),
            )
        )
    else:
        clients = _rows_of(find_table(folder, "clients"), "client_id", client_id)
        invoices = _rows_of(find_table(folder, "invoices"), "client_id", client_id)
    if clients.empty:
        raise InputError(f"client_id: {client_id!r} is not a client of the ledger {folder}")
    raw = {
        "clients": clients.astype(str).replace({"NaT": "", "nan": "", "None": "", "<NA>": ""}),
        "invoices": invoices.astype(str).replace({"NaT": "", "nan": "", "None": "", "<NA>": ""}),
        "actions": pd.DataFrame([row]),
    }
    ledger, violations = check_ledger(
        raw,
        extracted_on=resolve_extracted_on(folder, None),
        reporting_currency=reporting_currency(folder),
    )
    mine = violations[violations["table"] == "actions"]
    if len(mine):
        raise LedgerValidationError(mine.assign(row=1))
    typed = ledger.actions
    with _locked(folder):
        if layout is not None:
            known = (
                client_rows(folder, "actions", bucket, client_id)  # type: ignore[arg-type]
                if "actions" in layout.tables
                else pd.DataFrame()
            )
        else:
            known = _rows_of(find_table(folder, "actions"), "client_id", client_id)
        replayed = _already(known, typed)
        if not replayed and layout is not None:
            append_action(folder, typed)
        elif not replayed:
            _append(folder, row, typed)
    written = typed.iloc[0].to_dict()
    written["on"] = str(pd.Timestamp(written["on"]).date())
    written["replayed"] = replayed
    return written


def _already(known: pd.DataFrame, typed: pd.DataFrame) -> bool:
    """Whether the log holds this very row already (every column equal, empty equal to empty)."""
    if known.empty:
        return False
    before, _ = coerce_table("actions", known)
    columns = list(typed.columns)
    same = before[columns].astype(object).where(before[columns].notna(), None)
    new = tuple(typed[columns].astype(object).where(typed[columns].notna(), None).iloc[0])
    return any(tuple(r) == new for r in same.itertuples(index=False))


def _append(folder: Path, row: dict[str, str], typed: pd.DataFrame) -> None:
    """The action appended to a plain ledger folder's action log, rewritten whole (the caller
    holds the lock)."""
    path = find_table(folder, "actions") or folder / "actions.parquet"
    before = read_table_file(path) if path.exists() else None
    if before is not None and path.suffix == ".csv":
        out = pd.concat([before, pd.DataFrame([row])], ignore_index=True)
        with atomic_file(path) as tmp:
            out.to_csv(tmp, index=False)
    else:
        if before is not None:
            before, _ = coerce_table("actions", before)
        out = typed if before is None else pd.concat([before, typed], ignore_index=True)
        with atomic_file(path) as tmp:
            out.to_parquet(tmp, index=False)
