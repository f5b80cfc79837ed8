"""The canonical ledger data contract: table schemas, type coercion and every validation rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from features.arrays import index_in, isin, no_repeats, take
from features.iso import COUNTRIES, CURRENCIES

Kind = Literal["str", "date", "float", "bool"]
DATE_DTYPE = "datetime64[us]"
TABLE_NAMES = ("clients", "invoices", "payments", "financials", "insolvencies")
VIOLATION_COLUMNS = ["table", "row", "key", "column", "rule", "value"]


@dataclass(frozen=True)
class Column:
    """One column of a table: its type, whether it may be missing, and its range."""

    name: str
    kind: Kind
    nullable: bool = False
    optional: bool = False  # the column itself may be absent from the file
    minimum: float | None = None
    strictly_positive: bool = False
    future_allowed: bool = False  # a date that may lie after the extraction date (a due date)
    description: str = ""


@dataclass(frozen=True)
class TableSchema:
    """A table of the ledger: its columns and the columns that identify a row."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    optional: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _c(name: str, kind: Kind, description: str, **kw: object) -> Column:
    return Column(name=name, kind=kind, description=description, **kw)  # type: ignore[arg-type]


SCHEMAS: dict[str, TableSchema] = {
    "clients": TableSchema(
        "clients",
        key=("client_id",),
        columns=(
            _c("client_id", "str", "Unique client identifier."),
            _c("name", "str", "Legal name."),
            _c("country", "str", "ISO 3166-1 alpha-2 country of registration."),
            _c("industry", "str", "Industry sector."),
            _c("registered_capital", "float", "Registered capital.", nullable=True, minimum=0.0),
            _c("founded_on", "date", "Date of incorporation.", nullable=True),
            _c("onboarded_on", "date", "Date the client was onboarded for credit."),
            _c("external_rating", "str", "Agency rating.", nullable=True, optional=True),
            _c(
                "credit_limit",
                "float",
                "Credit limit currently granted (batch scoring decides on it).",
                nullable=True,
                optional=True,
                minimum=0.0,
            ),
        ),
    ),
    "invoices": TableSchema(
        "invoices",
        key=("invoice_id",),
        columns=(
            _c("invoice_id", "str", "Unique invoice identifier."),
            _c("client_id", "str", "The buying client."),
            _c("issued_on", "date", "Issue date."),
            _c("due_on", "date", "Due date (issue date plus terms).", future_allowed=True),
            _c("amount", "float", "Invoiced amount.", strictly_positive=True),
            _c("currency", "str", "ISO 4217 currency of the amount."),
            _c("paid_on", "date", "Date settled in full; empty while open.", nullable=True),
            _c("paid_amount", "float", "Amount received so far.", nullable=True, minimum=0.0),
            _c("disputed", "bool", "Whether the client disputed the invoice."),
            _c(
                "written_off_on",
                "date",
                "Date the remainder was written off.",
                nullable=True,
                optional=True,
            ),
        ),
    ),
    "payments": TableSchema(
        "payments",
        key=("invoice_id", "paid_on"),
        optional=True,
        columns=(
            _c("invoice_id", "str", "The invoice paid."),
            _c("paid_on", "date", "Date of the payment."),
            _c("amount", "float", "Amount received.", strictly_positive=True),
        ),
    ),
    "financials": TableSchema(
        "financials",
        key=("client_id", "period_end"),
        optional=True,
        columns=(
            _c("client_id", "str", "The reporting client."),
            _c("period_end", "date", "End of the reporting period."),
            _c("published_on", "date", "Date the statement became available."),
            _c("revenue", "float", "Revenue of the period.", nullable=True, minimum=0.0),
            _c("total_assets", "float", "Total assets.", nullable=True, minimum=0.0),
            _c("total_liabilities", "float", "Total liabilities.", nullable=True, minimum=0.0),
            _c("current_assets", "float", "Current assets.", nullable=True, minimum=0.0),
            _c("current_liabilities", "float", "Current liabilities.", nullable=True, minimum=0.0),
            _c("cash", "float", "Cash and equivalents.", nullable=True, minimum=0.0),
            _c("operating_cash_flow", "float", "Operating cash flow.", nullable=True),
            _c("equity", "float", "Book equity (may be negative).", nullable=True),
        ),
    ),
    "insolvencies": TableSchema(
        "insolvencies",
        key=("client_id",),
        optional=True,
        columns=(
            _c("client_id", "str", "The insolvent client."),
            _c("declared_on", "date", "Date insolvency was declared."),
        ),
    ),
}


@dataclass(frozen=True)
class ContractConfig:
    """Tolerances of the contract."""

    overpayment_tolerance: float = 0.01  # a client may pay up to 1 % over the invoiced amount
    payment_sum_tolerance: float = 0.01  # payments add up to the invoice's paid_amount within 1 %


@dataclass(frozen=True)
class Ledger:
    """A validated receivables ledger: the five tables and the date it was extracted."""

    clients: pd.DataFrame
    invoices: pd.DataFrame
    extracted_on: pd.Timestamp
    payments: pd.DataFrame = field(default_factory=lambda: empty_table("payments"))
    financials: pd.DataFrame = field(default_factory=lambda: empty_table("financials"))
    insolvencies: pd.DataFrame = field(default_factory=lambda: empty_table("insolvencies"))

    def table(self, name: str) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: self.table(name) for name in TABLE_NAMES}

    def with_tables(self, tables: dict[str, pd.DataFrame]) -> Ledger:
        return replace(self, **tables)


class LedgerValidationError(ValueError):
    """Raised when a ledger breaks the contract; carries every violation."""

    def __init__(self, violations: pd.DataFrame) -> None:
        self.violations = violations
        shown = violations.head(5).to_dict("records")
        lines = [
            f"{v['table']} row {v['row']} ({v['key']}): {v['column']} {v['rule']} "
            f"(value: {v['value']!r})"
            for v in shown
        ]
        more = len(violations) - len(shown)
        if more > 0:
            lines.append(f"... and {more} more")
        super().__init__(f"{len(violations)} contract violation(s):\n" + "\n".join(lines))


# The amounts of a financial statement (revenue ... equity), in contract order.
STATEMENT_AMOUNTS: tuple[str, ...] = tuple(
    c.name for c in SCHEMAS["financials"].columns if c.kind == "float"
)


def empty_table(name: str) -> pd.DataFrame:
    """An empty table of the right columns and dtypes."""
    schema = SCHEMAS[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=_dtype(c.kind)) for c in schema.columns})


def _dtype(kind: Kind) -> str:
    return {"str": "str", "date": DATE_DTYPE, "float": "float64", "bool": "bool"}[kind]


# --------------------------------------------------------------------------------------------
# Violations


def _row_keys(table: str, frame: pd.DataFrame) -> pd.Series:
    key = SCHEMAS[table].key
    parts = [
        frame[k].astype("string").fillna("") if k in frame else pd.Series("", frame.index)
        for k in key
    ]
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out.astype(object)


def _flag(
    table: str,
    frame: pd.DataFrame,
    mask: pd.Series | np.ndarray,
    column: str,
    rule: str,
    values: pd.Series | None = None,
) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return pd.DataFrame(columns=VIOLATION_COLUMNS)
    hit = frame.loc[mask]
    if values is None:
        values = hit[column] if column in hit else pd.Series("", index=hit.index)
    else:
        values = values.loc[hit.index]
    return pd.DataFrame(
        {
            "table": table,
            "row": hit.index.to_numpy() + 1,  # 1-based position of the row in its file
            "key": _row_keys(table, hit).to_numpy(),
            "column": column,
            "rule": rule,
            "value": values.astype(object).map(_show).to_numpy(),
        }
    )


def _show(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return str(value)


def _concat(parts: Iterable[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            {c: pd.Series([], dtype="int64" if c == "row" else object) for c in VIOLATION_COLUMNS}
        )
    out = pd.concat(parts, ignore_index=True)
    out["row"] = out["row"].astype("int64")
    return out


# --------------------------------------------------------------------------------------------
# Coercion: raw text or loosely typed columns -> canonical dtypes, with a violation per bad cell

_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def coerce_table(name: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cast a raw table to the contract's dtypes; cells that cannot be read become violations."""
    schema = SCHEMAS[name]
    frame = raw.reset_index(drop=True).copy()
    found: list[pd.DataFrame] = []
    for col in schema.columns:
        if col.name not in frame:
            if col.optional:
                frame[col.name] = pd.Series(None, index=frame.index, dtype=_dtype(col.kind))
                continue
            found.append(
                pd.DataFrame(
                    [
                        {
                            "table": name,
                            "row": 0,
                            "key": "*",
                            "column": col.name,
                            "rule": "required column is missing",
                            "value": "",
                        }
                    ]
                )
            )
            frame[col.name] = pd.Series(pd.NA, index=frame.index, dtype=object)
        before = frame[col.name]
        present = before.notna()
        if before.dtype == object or pd.api.types.is_string_dtype(before):
            present &= before.astype("str").str.strip() != ""
        if col.kind == "str":
            after = before.where(present).astype("str")
            if not _already_stripped(after):
                after = after.str.strip()
        elif col.kind == "float":
            after = pd.to_numeric(before.where(present), errors="coerce").astype("float64")
            found.append(_flag(name, frame, present & after.isna(), col.name, "is not a number"))
        elif col.kind == "date":
            after = _to_dates(before.where(present))
            found.append(
                _flag(name, frame, present & after.isna(), col.name, "is not a date (YYYY-MM-DD)")
            )
        else:  # bool
            text = before.astype("string").str.strip().str.lower()
            after = pd.Series(np.where(text.isin(list(_TRUE)), True, False), index=frame.index)
            bad = present & ~text.isin(list(_TRUE | _FALSE))
            found.append(_flag(name, frame, bad, col.name, "is not true/false"))
        if not col.nullable:
            found.append(_flag(name, frame, ~present, col.name, "must not be empty"))
        frame[col.name] = after
    ordered = schema.column_names + [c for c in frame.columns if c not in schema.column_names]
    return frame[ordered], _concat(found)


def _already_stripped(values: pd.Series) -> bool:
    # Parquet input is typed and clean; stripping 20 million ids would cost seconds for nothing.
    sample = values.dropna().head(1000)
    return bool((sample.str.strip() == sample).all())


def _to_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype(DATE_DTYPE)
    # Accept ISO dates and datetimes only: a day-first/month-first guess could silently swap fields.
    text = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype(DATE_DTYPE)


# --------------------------------------------------------------------------------------------
# Rules on typed tables


def validate_ledger(ledger: Ledger, *, config: ContractConfig | None = None) -> pd.DataFrame:
    """Every violation of the contract's rules in a typed ledger, one row per (cell, rule)."""
    cfg = config or ContractConfig()
    t = ledger.tables()
    asof = ledger.extracted_on
    found: list[pd.DataFrame] = []

    for name, schema in SCHEMAS.items():
        frame = t[name]
        found += _unique_key(name, frame, schema.key)
        for col in schema.columns:
            values = frame[col.name]
            if col.kind == "float":
                if col.strictly_positive:
                    found.append(_flag(name, frame, values <= 0, col.name, "must be > 0"))
                if col.minimum is not None:
                    found.append(
                        _flag(
                            name,
                            frame,
                            values < col.minimum,
                            col.name,
                            f"must be >= {col.minimum:g}",
                        )
                    )
            if col.kind == "date" and not col.future_allowed:
                found.append(
                    _flag(
                        name,
                        frame,
                        values > asof,
                        col.name,
                        f"is after the extraction date {asof.date().isoformat()}",
                    )
                )

    clients, invoices = t["clients"], t["invoices"]
    payments, financials = t["payments"], t["financials"]

    found.append(
        _flag(
            "clients",
            clients,
            clients["country"].notna() & ~isin(clients["country"], COUNTRIES),
            "country",
            "is not an ISO 3166-1 alpha-2 code",
        )
    )
    found.append(
        _flag(
            "clients",
            clients,
            clients["onboarded_on"] < clients["founded_on"],
            "onboarded_on",
            "is before founded_on",
        )
    )

    known_clients = set(clients["client_id"].dropna())
    for name in ("invoices", "financials", "insolvencies"):
        frame = t[name]
        found.append(
            _flag(
                name,
                frame,
                frame["client_id"].notna() & ~isin(frame["client_id"], known_clients),
                "client_id",
                "refers to no client in clients",
            )
        )

    found.append(
        _flag(
            "invoices",
            invoices,
            invoices["currency"].notna() & ~isin(invoices["currency"], CURRENCIES),
            "currency",
            "is not an ISO 4217 code",
        )
    )
    found.append(
        _flag(
            "invoices",
            invoices,
            invoices["due_on"] < invoices["issued_on"],
            "due_on",
            "is before issued_on",
        )
    )
    found.append(
        _flag(
            "invoices",
            invoices,
            invoices["paid_on"] < invoices["issued_on"],
            "paid_on",
            "is before issued_on",
        )
    )
    found.append(
        _flag(
            "invoices",
            invoices,
            invoices["written_off_on"] < invoices["issued_on"],
            "written_off_on",
            "is before issued_on",
        )
    )
    over = invoices["paid_amount"] > invoices["amount"] * (1 + cfg.overpayment_tolerance)
    found.append(
        _flag(
            "invoices",
            invoices,
            over,
            "paid_amount",
            f"exceeds amount beyond the {cfg.overpayment_tolerance:.0%} overpayment tolerance",
        )
    )
    found.append(
        _flag(
            "invoices",
            invoices,
            invoices["paid_on"].notna() & invoices["paid_amount"].isna(),
            "paid_amount",
            "must be set when paid_on is set",
        )
    )

    if len(payments):
        inv = (
            invoices
            if no_repeats(invoices["invoice_id"])
            else invoices.drop_duplicates("invoice_id")
        )
        ids = inv["invoice_id"]
        at = index_in(payments["invoice_id"], ids)  # -1: no such invoice
        found.append(
            _flag(
                "payments",
                payments,
                payments["invoice_id"].notna() & (at < 0),
                "invoice_id",
                "refers to no invoice in invoices",
            )
        )
        issued = pd.Series(
            take(inv["issued_on"].to_numpy(), at, np.datetime64("NaT")), index=payments.index
        )
        found.append(
            _flag(
                "payments",
                payments,
                payments["paid_on"] < issued,
                "paid_on",
                "is before the invoice's issued_on",
            )
        )
        totals = payments.groupby("invoice_id")["amount"].sum()
        known = index_in(totals.index, ids)
        recorded = take(inv["paid_amount"].to_numpy("float64", na_value=np.nan), known, np.nan)
        amount = take(inv["amount"].to_numpy("float64", na_value=np.nan), known, np.nan)
        with np.errstate(invalid="ignore"):
            gap = np.abs(totals.to_numpy() - np.nan_to_num(recorded, nan=0.0)) > (
                cfg.payment_sum_tolerance * amount + 0.01
            )
        bad_ids = set(totals.index[gap & (known >= 0)])
        if bad_ids:
            mask = isin(invoices["invoice_id"], bad_ids)
            shown = invoices["invoice_id"].map(totals).map(lambda v: f"payments sum to {v:.2f}")
            found.append(
                _flag(
                    "invoices",
                    invoices,
                    mask,
                    "paid_amount",
                    "differs from the sum of its payments",
                    shown,
                )
            )

    found.append(
        _flag(
            "financials",
            financials,
            financials["published_on"] < financials["period_end"],
            "published_on",
            "is before period_end",
        )
    )
    found.append(
        _flag(
            "financials",
            financials,
            financials["current_assets"] > financials["total_assets"] * 1.0001,
            "current_assets",
            "exceeds total_assets",
        )
    )
    return _concat(found)


def _unique_key(name: str, frame: pd.DataFrame, key: tuple[str, ...]) -> list[pd.DataFrame]:
    if name == "payments":  # an invoice may be paid twice on one day
        return []
    if len(key) == 1 and no_repeats(frame[key[0]]):  # the usual case, without pandas' factorize
        return []
    dup = frame.duplicated(list(key), keep="first") & frame[list(key)].notna().all(axis=1)
    return [
        _flag(
            name,
            frame,
            dup,
            key[-1] if len(key) > 1 else key[0],
            f"duplicates the key ({', '.join(key)})",
        )
    ]


# --------------------------------------------------------------------------------------------
# Putting it together


def check_ledger(
    raw: dict[str, pd.DataFrame],
    *,
    extracted_on: pd.Timestamp,
    config: ContractConfig | None = None,
    consume: bool = False,
) -> tuple[Ledger, pd.DataFrame]:
    """Coerce raw tables and validate them; returns the typed ledger and all violations.
    `consume` takes each raw table out of `raw` once typed, so that a large ledger is not held
    twice while it is validated."""
    typed: dict[str, pd.DataFrame] = {}
    found: list[pd.DataFrame] = []
    for name in TABLE_NAMES:
        if name not in raw:
            if not SCHEMAS[name].optional:
                found.append(
                    pd.DataFrame(
                        [
                            {
                                "table": name,
                                "row": 0,
                                "key": "*",
                                "column": "*",
                                "rule": "required table is missing",
                                "value": "",
                            }
                        ]
                    )
                )
            typed[name] = empty_table(name)
            continue
        typed[name], bad = coerce_table(name, raw.pop(name) if consume else raw[name])
        found.append(bad)
    ledger = Ledger(extracted_on=pd.Timestamp(extracted_on), **typed)
    found.append(validate_ledger(ledger, config=config))
    return ledger, _concat(found)


def split_quarantine(
    ledger: Ledger,
    violations: pd.DataFrame,
    *,
    config: ContractConfig | None = None,
) -> tuple[Ledger, dict[str, pd.DataFrame]]:
    """Remove the offending rows (and rows that then lose their parent) and keep the rest.

    Returns the clean ledger and, per table, the removed rows with a `reasons` column.
    """
    tables = {n: f.copy() for n, f in ledger.tables().items()}
    rejected: dict[str, list[pd.DataFrame]] = {n: [] for n in TABLE_NAMES}
    current = violations
    while len(current):
        rowwise = current[current["row"] > 0]
        for name, group in rowwise.groupby("table"):
            frame = tables[str(name)]
            reasons = (
                group.assign(
                    text=group["column"] + " " + group["rule"] + " (" + group["value"] + ")"
                )
                .groupby("row")["text"]
                .agg("; ".join)
            )
            positions = frame.index.isin(reasons.index - 1)
            out = frame.loc[positions].copy()
            out["reasons"] = (out.index + 1).map(reasons)
            rejected[str(name)].append(out)
            tables[str(name)] = frame.loc[~positions]
        # Row numbers refer to the original files, so keep indexes and re-check what is left:
        # removing a client orphans its invoices, which are then quarantined in the next round.
        clean = ledger.with_tables(tables)
        current = validate_ledger(clean, config=config)
    out_rejected = {
        n: pd.concat(parts) if parts else empty_table(n).assign(reasons=pd.Series([], dtype=object))
        for n, parts in rejected.items()
    }
    return ledger.with_tables(tables), out_rejected
