"""Reading and writing ledgers and tables: CSV or Parquet in, Parquet out, always atomically.

A ledger's files are checked before a row is trusted (`check_files`): each table readable (not a
broken or looping link, not a folder), a CSV UTF-8 and comma-separated with the same number of
fields on every row and no value running over a line break, a Parquet file whole, every required
column present, and the manifest valid JSON with a date. Whatever is wrong is a `LedgerFileError`
naming the file and the problem; commands answer it with exit 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import errno
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from features.contract import (
    FIRST_DAY,
    LAST_DAY,
    LEDGER_TABLES,
    RATES,
    SCHEMAS,
    ContractConfig,
    Ledger,
    LedgerValidationError,
    check_ledger,
    flag,
)
from features.errors import InputError
from features.iso import CURRENCIES

MANIFEST = "manifest.json"
LAYOUT = "layout"  # the manifest's description of a partitioned ledger (`features.partitioned`)
SOURCE_ROW = "source_row"  # a partitioned row's 0-based position in the file it came from
CSV_BLOCK_BYTES = 1 << 24  # a CSV is parsed this much at a time


class LedgerFileError(InputError):
    """A file of a ledger (or any table given to a command) cannot be used as it is."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


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
        # mkstemp makes the file 0600; it gets the mode a plain write would (a monitoring agent
        # of another user reads status.txt)
        if scratch.exists():
            scratch.chmod(0o666 & ~_umask())
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    os.replace(scratch, target)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask sets it: not thread-safe)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV (every cell as text, for the contract to type) or a Parquet file."""
    batches = list(table_batches(path))
    if not batches:
        return arrow_to_frame(_schema(path).empty_table())
    return arrow_to_frame(pa.concat_tables(batches))


def table_batches(path: Path, rows: int = 262_144) -> Iterator[pa.Table]:
    """A table file in batches as read (a CSV's cells as text, an empty one missing); a file that
    cannot be read is a `LedgerFileError` naming it."""
    _readable(path)
    if path.suffix == ".csv":
        yield from _csv_batches(path)
        return
    try:
        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=rows):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowException, OSError) as exc:
        raise LedgerFileError(path, f"is not a readable Parquet file ({exc})") from None


def read_frame(path: Path) -> pd.DataFrame:
    """A feature table (CSV with types inferred, or Parquet) for training; a file that cannot be
    read is a `LedgerFileError` naming it."""
    _readable(path)
    try:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pa.ArrowException) as exc:  # pandas' parse errors included
        kind = "CSV" if path.suffix == ".csv" else "Parquet"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LedgerFileError(path, f"cannot be read as a {kind} table ({first})") from None


def _schema(path: Path) -> pa.Schema:
    """The columns of a table file, from its header (CSV, every column text) or footer."""
    _readable(path)
    if path.suffix == ".csv":
        return pa.schema([(name, pa.string()) for name in _csv_header(path)])
    try:
        return pq.ParquetFile(path).schema_arrow
    except (pa.ArrowException, OSError) as exc:
        raise LedgerFileError(path, f"is not a readable Parquet file ({exc})") from None


def _readable(path: Path) -> None:
    """A file there that can be opened: not a folder, a broken or looping link, or locked away."""
    if path.is_symlink() and not path.exists():
        try:
            path.stat()
        except OSError as exc:
            why = "loops" if exc.errno == errno.ELOOP else "points to nothing"
            raise LedgerFileError(path, f"is a symbolic link that {why}") from None
    if path.is_dir():
        raise LedgerFileError(path, "is a folder, not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise LedgerFileError(path, f"cannot be read ({exc.strerror})") from None


def _csv_header(path: Path) -> list[str]:
    """The column names of a CSV's first line, checked: text in UTF-8, comma-separated, each
    named once."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        raise LedgerFileError(path, "is empty: a CSV table starts with a header row")
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LedgerFileError(path, _not_utf8(1, first, exc)) from None
    names = next(csv.reader(io.StringIO(line)))
    if len(names) == 1:
        for sep in (";", "\t", "|"):
            if sep in names[0]:
                shown = "tab" if sep == "\t" else repr(sep)
                raise LedgerFileError(
                    path,
                    f"its header is one column, {names[0].strip()!r}: the file seems to be "
                    f"{shown}-separated; creditguard reads comma-separated CSV",
                )
    seen: set[str] = set()
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise LedgerFileError(path, f"column {i} of the header has no name")
        if name in seen:
            raise LedgerFileError(path, f"column {name!r} appears twice in the header")
        seen.add(name)
    return names


def _not_utf8(line: int, raw: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"is not UTF-8 text: line {line} has the byte 0x{raw[exc.start]:02x} at position "
        f"{exc.start + 1} (a Latin-1 or Windows export?); save the file as UTF-8"
    )


def _csv_batches(path: Path) -> Iterator[pa.Table]:
    names = _csv_header(path)
    options = pcsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    done = 0
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=options,
        )
        for batch in reader:
            table = pa.Table.from_batches([batch])
            _one_line_values(path, table, done)
            done += len(table)
            yield table
    except pa.ArrowInvalid as exc:
        raise LedgerFileError(path, _csv_problem(path, str(exc), len(names))) from None


def _one_line_values(path: Path, table: pa.Table, done: int) -> None:
    """No value runs over a line break: the mark of an unbalanced quote, which would otherwise
    swallow every row up to the next quote."""
    for name in table.column_names:
        broken = pc.match_substring_regex(table[name], "[\r\n]")
        if pc.any(broken).as_py():
            row = done + int(pc.index(broken, True).as_py()) + 1
            raise LedgerFileError(
                path,
                f"row {row}: the value of {name!r} runs over a line break (an unbalanced quote?); "
                "ledger values are one line each",
            )


def _csv_problem(path: Path, message: str, fields: int) -> str:
    """Arrow's parse error in the file's own terms: which row, and what is wrong with it."""
    with path.open("rb") as f:
        if "UTF8" in message or "UTF-8" in message:
            for number, raw in enumerate(f, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return _not_utf8(number, raw, exc)
        f.seek(0)
        text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
        rows = csv.reader(text)
        number = 0
        try:
            next(rows, None)
            for number, row in enumerate(rows, start=1):
                if len(row) != fields:
                    shown = ",".join(row)[:80]
                    return (
                        f"row {number} has {len(row)} fields where the header has {fields} "
                        f"(a stray comma or quote?): {shown!r}"
                    )
        except csv.Error:  # a quote opened and never closed swallows the rest of the file
            return (
                f"row {number + 1}: a quote opens a value that never ends (an unbalanced quote); "
                "ledger values are one line each"
            )
    return f"cannot be parsed as CSV ({message})"


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as the contract reads it. Arrow dates would become object columns of
    datetime.date in pandas: they are cast to timestamps."""
    fields = [
        pa.field(f.name, pa.timestamp("us")) if pa.types.is_date(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields)).to_pandas()


def find_table(folder: Path, name: str) -> Path | None:
    """The file of a table in a ledger folder: NAME.parquet or NAME.csv (one of them), also when
    it is there but cannot be read (reading it then says why)."""
    found = [
        folder / f"{name}{suffix}"
        for suffix in (".parquet", ".csv")
        if os.path.lexists(folder / f"{name}{suffix}")
    ]
    if len(found) > 1:
        raise LedgerFileError(found[1], f"{found[0].name} is there too: keep one file per table")
    return found[0] if found else None


@dataclass(frozen=True)
class LedgerFiles:
    """A ledger folder's files, checked: each table's file and its rows, the extraction date."""

    folder: Path
    paths: dict[str, Path]
    rows: dict[str, int]
    extracted_on: pd.Timestamp | None  # from the manifest


def check_files(folder: Path | str) -> LedgerFiles:
    """Every file of a ledger folder checked before anything is read into the contract: the
    required tables there and non-empty, every table readable with its required columns (a CSV
    parsed once through, a Parquet file by its footer), the manifest valid."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LedgerFileError(
            folder, "is not a ledger folder" if folder.exists() else "does not exist"
        )
    manifest = read_manifest(folder)
    if LAYOUT in manifest:
        return _check_partitioned(folder, manifest)
    paths: dict[str, Path] = {}
    rows: dict[str, int] = {}
    for name in LEDGER_TABLES:
        path = find_table(folder, name)
        if path is None:
            if not SCHEMAS[name].optional:
                raise LedgerFileError(
                    folder / f"{name}.csv",
                    f"the required table {name} is missing (.csv or .parquet)",
                )
            continue
        columns = _schema(path).names
        missing = [
            c.name for c in SCHEMAS[name].columns if not c.optional and c.name not in columns
        ]
        if missing:
            raise LedgerFileError(
                path,
                f"required column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"missing (the file has: {', '.join(columns) or 'no columns'})",
            )
        if path.suffix == ".csv":
            rows[name] = sum(len(t) for t in _csv_batches(path))
        else:
            rows[name] = _parquet_rows(path)
        paths[name] = path
    if rows.get("clients") == 0:
        raise LedgerFileError(paths["clients"], "has a header and no rows: no client to score")
    day = manifest.get("extracted_on")
    return LedgerFiles(folder, paths, rows, pd.Timestamp(str(day)) if day else None)


@dataclass(frozen=True)
class Layout:
    """A partitioned ledger (`features.partitioned`): every table a folder of hive-style client
    buckets (`TABLE/bucket=K/*.parquet`), bucket K holding the clients whose ids, in sorted
    order, run from `clients[K][0]` to `clients[K][1]` with all their rows (payments and
    instalments with their invoice); bucket `buckets` holds the rows of no client; `fx_rates`
    is one file beside them, every bucket's. `duplicates`: per bucket, the source rows of
    invoices whose id an earlier row in another bucket uses (the key the contract checks)."""

    buckets: int
    clients: list[tuple[str | None, str | None]]
    tables: list[str]
    duplicates: dict[int, list[int]]

    @property
    def unowned(self) -> int:
        """The bucket of the rows that belong to no client."""
        return self.buckets

    def bucket_of(self, client_id: str) -> int | None:
        """The bucket a client's rows are in (None: no bucket's range holds it)."""
        for k, (first, last) in enumerate(self.clients):
            if first is not None and last is not None and first <= client_id <= last:
                return k
        return None

    def to_json(self) -> dict[str, object]:
        return {
            "buckets": self.buckets,
            "clients": [list(r) for r in self.clients],
            "tables": self.tables,
            "duplicates": {str(k): v for k, v in self.duplicates.items()},
        }


def read_layout(folder: Path | str) -> Layout | None:
    """A partitioned ledger's layout from its manifest (None: a folder of table files)."""
    manifest = read_manifest(folder)
    return _layout(Path(folder), manifest) if LAYOUT in manifest else None


def _layout(folder: Path, manifest: dict[str, object]) -> Layout:
    raw = manifest[LAYOUT]
    path = folder / MANIFEST
    try:
        assert isinstance(raw, dict)
        buckets = int(raw["buckets"])
        clients = [(r[0], r[1]) for r in raw["clients"]]
        tables = [str(t) for t in raw["tables"]]
        duplicates = {int(k): [int(x) for x in v] for k, v in raw.get("duplicates", {}).items()}
    except (AssertionError, KeyError, TypeError, ValueError, IndexError):
        raise LedgerFileError(
            path, f"{LAYOUT} must give buckets, clients (a first and last id per bucket) and tables"
        ) from None
    if buckets < 1 or len(clients) != buckets:
        raise LedgerFileError(path, f"{LAYOUT}: {len(clients)} client ranges for {buckets} buckets")
    unknown = [t for t in tables if t not in LEDGER_TABLES or t == RATES]
    if unknown:
        raise LedgerFileError(path, f"{LAYOUT}: unknown table {', '.join(unknown)}")
    return Layout(buckets, clients, tables, duplicates)


def bucket_folder(folder: Path, name: str, bucket: int) -> Path:
    return folder / name / f"bucket={bucket}"


def bucket_files(folder: Path, name: str, bucket: int) -> list[Path]:
    """A table's files in one bucket, in name order; a missing bucket is a `LedgerFileError`."""
    where = bucket_folder(folder, name, bucket)
    files = sorted(where.glob("*.parquet")) if where.is_dir() else []
    if not files:
        raise LedgerFileError(
            where, f"bucket {bucket} of table {name} is missing (every table has every bucket)"
        )
    return files


def read_bucket_table(folder: Path, name: str, bucket: int) -> pa.Table:
    """A table's rows in one bucket, as written (with their `SOURCE_ROW`)."""
    parts = []
    for path in bucket_files(folder, name, bucket):
        try:
            parts.append(pq.read_table(path))
        except (pa.ArrowException, OSError) as exc:
            raise LedgerFileError(path, f"is not a readable Parquet file ({exc})") from None
    return pa.concat_tables(parts, promote_options="permissive")


def _check_partitioned(folder: Path, manifest: dict[str, object]) -> LedgerFiles:
    """`check_files` for a partitioned ledger: every table's every bucket there and readable by
    its footer, with the required columns and its source rows."""
    layout = _layout(folder, manifest)
    paths: dict[str, Path] = {}
    rows: dict[str, int] = {}
    for name in LEDGER_TABLES:
        if name == RATES:
            path = find_table(folder, RATES)
            if path is not None:
                paths[name], rows[name] = path, _parquet_rows(path)
            continue
        if name not in layout.tables:
            if not SCHEMAS[name].optional:
                raise LedgerFileError(
                    folder / name, f"the required table {name} is missing (a folder of buckets)"
                )
            if (folder / name).exists():
                raise LedgerFileError(folder / name, f"is not among the manifest's {LAYOUT} tables")
            continue
        if not (folder / name).is_dir():
            raise LedgerFileError(folder / name, f"table {name} is missing (the manifest lists it)")
        declared = {f"bucket={b}" for b in range(layout.buckets + 1)}
        for entry in sorted((folder / name).iterdir()):
            if entry.name not in declared and not entry.name.startswith("."):
                raise LedgerFileError(
                    entry,
                    f"is not one of the manifest's buckets (bucket=0 to bucket={layout.buckets}): "
                    "its rows would not be read",
                )
        rows[name] = 0
        types: dict[str, tuple[pa.DataType, Path]] = {}
        for bucket in range(layout.buckets + 1):
            for path in bucket_files(folder, name, bucket):
                schema = _schema(path)
                for column in SCHEMAS[name].column_names:
                    if column not in schema.names:
                        continue
                    kind = schema.field(column).type
                    seen, where = types.setdefault(column, (kind, path))
                    if (
                        not kind.equals(seen)
                        and not pa.types.is_null(kind)
                        and not pa.types.is_null(seen)
                    ):
                        raise LedgerFileError(
                            path,
                            f"column {column} is {kind} here and {seen} in {where}: every "
                            f"bucket's files of {name} have the same column types",
                        )
                columns = schema.names
                missing = [
                    c.name
                    for c in SCHEMAS[name].columns
                    if not c.optional and c.name not in columns
                ] + ([SOURCE_ROW] if SOURCE_ROW not in columns else [])
                if missing:
                    raise LedgerFileError(
                        path,
                        f"required column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(missing)} missing (bucket {bucket} of {name})",
                    )
                rows[name] += _parquet_rows(path)
        paths[name] = folder / name
    if rows.get("clients") == 0:
        raise LedgerFileError(folder / "clients", "has no rows: no client to score")
    day = manifest.get("extracted_on")
    return LedgerFiles(folder, paths, rows, pd.Timestamp(str(day)) if day else None)


def _parquet_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowException, OSError) as exc:
        raise LedgerFileError(path, f"is not a readable Parquet file ({exc})") from None


def read_manifest(folder: Path | str) -> dict[str, object]:
    """The folder's manifest.json (none: empty), checked: a JSON object whose `extracted_on`,
    when given, is a date."""
    path = Path(folder) / MANIFEST
    if not os.path.lexists(path):
        return {}
    _readable(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LedgerFileError(path, "is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise LedgerFileError(
            path, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise LedgerFileError(path, "is nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict):
        raise LedgerFileError(path, f"must be a JSON object, not a {type(manifest).__name__}")
    currency = manifest.get("reporting_currency")
    if currency is not None and (not isinstance(currency, str) or currency not in CURRENCIES):
        raise LedgerFileError(
            path,
            "reporting_currency must be an ISO 4217 code as text (EUR, USD, ...), not "
            + _shown(currency),
        )
    day = manifest.get("extracted_on")
    if day is not None:
        manifest["extracted_on"] = _extraction_day(path, day)
    return manifest


def _shown(value: object) -> str:
    """A manifest value in a message: short, whatever it is."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _extraction_day(path: Path, day: object) -> str:
    """The manifest's extracted_on as YYYY-MM-DD: a date (or a date and time) between 1900 and
    2199, like every date of the contract."""
    try:
        if (
            not isinstance(day, str)
            or len(day) not in (10, 19)
            or (len(day) == 19 and day[10] != "T")
        ):
            raise ValueError
        parsed = dt.date.fromisoformat(day[:10])
        if len(day) == 19:
            dt.time.fromisoformat(day[11:])
    except ValueError:
        raise LedgerFileError(
            path, f"extracted_on must be a date as text (YYYY-MM-DD), not {_shown(day)}"
        ) from None
    if not FIRST_DAY.date() <= parsed <= LAST_DAY.date():
        raise LedgerFileError(
            path,
            f"extracted_on {parsed.isoformat()} is outside {FIRST_DAY.date().isoformat()} to "
            f"{LAST_DAY.date().isoformat()}",
        )
    return parsed.isoformat()


def read_raw_ledger(folder: Path | str) -> dict[str, pd.DataFrame]:
    """The tables found in a ledger folder, as read, before any typing or validation (its files
    checked first: `check_files`)."""
    return _read_raw(folder)[0]


_PLACE = "__bucket_holds_it"  # a partitioned row read: whether its bucket's range holds its client


def _read_raw(folder: Path | str) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    """`read_raw_ledger`, and for a partitioned ledger the violations of rows in a bucket whose
    client range does not hold their client (a client split across buckets, which a run
    scoring bucket by bucket rejects too)."""
    files = check_files(folder)
    layout = read_layout(folder)
    if layout is None:
        return {name: read_table_file(path) for name, path in files.paths.items()}, []
    tables = {RATES: read_table_file(files.paths[RATES])} if RATES in files.paths else {}
    misplaced: list[pd.DataFrame] = []
    for name in layout.tables:  # every bucket's rows, back in the order of the source file
        parts = [read_bucket_table(files.folder, name, b) for b in range(layout.buckets + 1)]
        if "client_id" in SCHEMAS[name].column_names:
            parts = [_placed(t, b, layout) for b, t in enumerate(parts)]
        whole = pa.concat_tables(parts, promote_options="permissive")
        whole = whole.take(pc.sort_indices(whole[SOURCE_ROW]))
        if _PLACE in whole.column_names:
            wrong = pc.invert(whole[_PLACE]).to_numpy(zero_copy_only=False)
            whole = whole.drop_columns([_PLACE])
        tables[name] = arrow_to_frame(whole.drop_columns([SOURCE_ROW]))
        if _PLACE in parts[0].column_names and wrong.any():
            misplaced.append(
                flag(
                    name,
                    tables[name],
                    wrong,
                    "client_id",
                    "is in a bucket whose client range does not hold it (a client split across "
                    "buckets)",
                )
            )
    return tables, misplaced


def _placed(table: pa.Table, bucket: int, layout: Layout) -> pa.Table:
    """A bucket's rows with whether the bucket's client range holds each row's client (the
    bucket of rows of no client holds none)."""
    ids = pc.utf8_trim_whitespace(table["client_id"].cast(pa.string()))
    first, last = layout.clients[bucket] if bucket < layout.buckets else (None, None)
    if bucket == layout.unowned:  # rows of no client: the contract names their unknown client
        holds = pa.array(np.ones(len(table), dtype=bool))
    elif first is None or last is None:  # an empty bucket holds no client's rows
        holds = pc.is_null(ids)
    else:
        inside = pc.and_(pc.greater_equal(ids, first), pc.less_equal(ids, last))
        holds = pc.or_kleene(pc.is_null(ids), inside)
    return table.append_column(_PLACE, pc.fill_null(holds, True))


def resolve_extracted_on(
    folder: Path | str, extracted_on: str | pd.Timestamp | None
) -> pd.Timestamp:
    """The extraction date: given, else from the folder's manifest, else today."""
    if extracted_on is not None:
        try:
            return pd.Timestamp(extracted_on).normalize()
        except ValueError:
            raise InputError(f"extracted_on {extracted_on!r} is not a date (YYYY-MM-DD)") from None
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
    raw, misplaced = _read_raw(folder)
    ledger, violations = check_ledger(
        raw,
        extracted_on=resolve_extracted_on(folder, extracted_on),
        reporting_currency=reporting_currency(folder),
        config=config,
        consume=True,
    )
    if misplaced:
        violations = pd.concat([violations, *misplaced], ignore_index=True)
    return ledger, violations


def reporting_currency(folder: Path | str) -> str | None:
    """The manifest's reporting currency (None: the invoices' only one, `features.fx`)."""
    currency = read_manifest(folder).get("reporting_currency")
    return str(currency) if currency else None


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
    meta: dict[str, object] = {"extracted_on": ledger.extracted_on.date().isoformat()}
    if ledger.reporting_currency:
        meta["reporting_currency"] = ledger.reporting_currency
    meta.update(manifest or {})
    with atomic_directory(folder) as tmp:
        for name, frame in ledger.all_tables().items():
            if name == RATES and not len(frame):
                continue
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
