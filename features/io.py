"""Reading and writing ledgers and tables: CSV or Parquet in, Parquet out, always atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import (
    TABLE_NAMES,
    ContractConfig,
    Ledger,
    LedgerValidationError,
    check_ledger,
)

MANIFEST = "manifest.json"


@contextmanager
def atomic_directory(target: Path | str) -> Iterator[Path]:
    """Yield a scratch folder that replaces `target` only if the block finishes without error."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    scratch.rename(target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(target: Path | str) -> Iterator[Path]:
    """Yield a scratch path that is renamed onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    scratch = Path(name)
    try:
        yield scratch
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    os.replace(scratch, target)


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV (every cell as text, for the contract to type) or a Parquet file."""
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    return arrow_to_frame(pq.read_table(path))


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as the contract reads it. Arrow dates would become object columns of
    datetime.date in pandas: they are cast to timestamps."""
    fields = [
        pa.field(f.name, pa.timestamp("us")) if pa.types.is_date(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields)).to_pandas()


def find_table(folder: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def read_manifest(folder: Path | str) -> dict[str, object]:
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def read_raw_ledger(folder: Path | str) -> dict[str, pd.DataFrame]:
    """The tables found in a ledger folder, as read, before any typing or validation."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ledger folder {folder} does not exist")
    raw = {}
    for name in TABLE_NAMES:
        path = find_table(folder, name)
        if path is not None:
            raw[name] = read_table_file(path)
    return raw


def resolve_extracted_on(
    folder: Path | str, extracted_on: str | pd.Timestamp | None
) -> pd.Timestamp:
    """The extraction date: given, else from the folder's manifest, else today."""
    if extracted_on is not None:
        return pd.Timestamp(extracted_on).normalize()
    manifest = read_manifest(folder)
    if "extracted_on" in manifest:
        return pd.Timestamp(str(manifest["extracted_on"]))
    return pd.Timestamp.today().normalize()


def inspect_ledger(
    folder: Path | str,
    *,
    extracted_on: str | pd.Timestamp | None = None,
    config: ContractConfig | None = None,
) -> tuple[Ledger, pd.DataFrame]:
    """Read and type a ledger folder; returns the ledger and every contract violation."""
    return check_ledger(
        read_raw_ledger(folder),
        extracted_on=resolve_extracted_on(folder, extracted_on),
        config=config,
        consume=True,
    )


def load_ledger(
    folder: Path | str,
    *,
    extracted_on: str | pd.Timestamp | None = None,
    config: ContractConfig | None = None,
) -> Ledger:
    """Read a ledger folder and fail with every violation if it breaks the contract."""
    ledger, violations = inspect_ledger(folder, extracted_on=extracted_on, config=config)
    if len(violations):
        raise LedgerValidationError(violations)
    return ledger


def write_ledger(
    ledger: Ledger, folder: Path | str, *, manifest: dict[str, object] | None = None
) -> None:
    """Write a ledger folder (one Parquet file per table and a manifest), atomically."""
    meta = {"extracted_on": ledger.extracted_on.date().isoformat(), **(manifest or {})}
    with atomic_directory(folder) as tmp:
        for name, frame in ledger.tables().items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
