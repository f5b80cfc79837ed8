"""The canonical ledger data contract: table schemas, type coercion and every validation rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal, TypeVar

import numpy as np
import pandas as pd

from features.arrays import index_in, isin, no_repeats, take
from features.errors import InputError
from features.fx import Rates, resolve_reporting
from features.iso import COUNTRIES, CURRENCIES

Kind = Literal["str", "date", "float", "bool"]
DATE_DTYPE = "datetime64[us]"
TABLE_NAMES = (
    "clients",
    "invoices",
    "payments",
    "instalments",
    "financials",
    "insolvencies",
    "insurer_limits",
    "actions",
)  # per client
# what the action log records (`actions.action`)
ACTIONS = (
    "letter_sent",
    "call",
    "promise_to_pay",
    "payment_plan",
    "dispute_opened",
    "dispute_resolved",
    "deliveries_stopped",
    "deliveries_resumed",
    "due_date_extended",  # amount: the days the due date moved
    "insurer_notified",
    "claim_filed",
    "legal_action",
)
INSURER_DECISIONS = ("granted", "reduced", "cancelled")
BY_INVOICE = ("payments", "instalments")  # tables whose rows belong to an invoice (its client's)
RATES = "fx_rates"  # not a client's: every part of a ledger holds all of it
LEDGER_TABLES = (*TABLE_NAMES, RATES)
VIOLATION_COLUMNS = ["table", "row", "key", "column", "rule", "value"]

# Bounds of what a ledger's values can be, so that every sum and product of them stays a finite
# number (1e15 units is 10,000 times the largest invoice any company issues; a rate between 1e-9
# and 1e9 covers every currency pair, hyperinflations included), and no id can become a path.
MAX_AMOUNT = 1e15
MIN_RATE, MAX_RATE = 1e-9, 1e9
FIRST_DAY, LAST_DAY = pd.Timestamp("1900-01-01"), pd.Timestamp("2199-12-31")
MAX_ID = 100  # characters of an id
MAX_TEXT = 500  # characters of a name, an industry, a code
MAX_NOTE = 2_000  # characters of an action's note
# An id names files (a client's letter) and folders: it holds no control character, no path
# separator, and is not "." or "..". Other text holds no control character (a line break in a
# CSV value is the mark of a broken quote).
_CONTROL = r"[\x00-\x1f\x7f]"
_NOT_IN_IDS = r"[\x00-\x1f\x7f/\\]|^\.{1,2}$"


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
    # the largest magnitude a number may have (None: `MAX_AMOUNT`, the bound of money)
    maximum: float | None = None
    max_length: int | None = None  # text: at most this many characters (None: `MAX_TEXT`)
    earliest: str | None = None  # a date: none before this day (None: `FIRST_DAY`)


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
            # some trading houses are centuries old
            _c(
                "founded_on", "date", "Date of incorporation.", nullable=True, earliest="1000-01-01"
            ),
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
            _c("amount", "float", "Invoiced amount, in its currency.", strictly_positive=True),
            _c(
                "currency",
                "str",
                "ISO 4217 currency of the amount, of its payments and of paid_amount.",
            ),
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
    "instalments": TableSchema(
        "instalments",
        key=("invoice_id", "due_on"),
        optional=True,
        columns=(
            _c("invoice_id", "str", "The invoice payable in instalments."),
            _c("due_on", "date", "When this instalment is due.", future_allowed=True),
            _c(
                "amount",
                "float",
                "The instalment, in the invoice's currency.",
                strictly_positive=True,
            ),
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
    "insurer_limits": TableSchema(
        "insurer_limits",
        key=("client_id", "decided_on"),
        optional=True,
        columns=(
            _c("client_id", "str", "The insured buyer."),
            _c("limit", "float", "The insurer's limit for the buyer.", minimum=0.0),
            _c("currency", "str", "ISO 4217 currency of the limit."),
            _c("decided_on", "date", "Date of the insurer's decision (it counts from then)."),
            _c(
                "valid_until",
                "date",
                "Last day the decision holds; empty: until the next one.",
                nullable=True,
                future_allowed=True,
            ),
            _c("status", "str", "granted, reduced or cancelled."),
        ),
    ),
    "actions": TableSchema(
        "actions",
        key=("client_id", "invoice_id", "action", "on"),
        optional=True,
        columns=(
            _c("client_id", "str", "The client acted on."),
            _c("invoice_id", "str", "The invoice, when the action is about one.", nullable=True),
            _c("action", "str", "What was done: " + ", ".join(ACTIONS) + "."),
            _c("on", "date", "When."),
            _c(
                "amount",
                "float",
                "An amount it names (promised, claimed; days for an extension).",
                nullable=True,
                minimum=0.0,
            ),
            _c("note", "str", "Free text.", nullable=True, max_length=MAX_NOTE),
        ),
    ),
    RATES: TableSchema(
        RATES,
        key=("currency", "date"),
        optional=True,
        columns=(
            _c("date", "date", "Date of the rate."),
            _c("currency", "str", "ISO 4217 currency."),
            _c(
                "rate",
                "float",
                "Units of the reporting currency one unit of the currency was worth that day.",
                strictly_positive=True,
                maximum=MAX_RATE,
            ),
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
    """A validated receivables ledger: the five client tables, the exchange rates, the date it
    was extracted and the currency it reports in (None: no invoices)."""

    clients: pd.DataFrame
    invoices: pd.DataFrame
    extracted_on: pd.Timestamp
    payments: pd.DataFrame = field(default_factory=lambda: empty_table("payments"))
    instalments: pd.DataFrame = field(default_factory=lambda: empty_table("instalments"))
    financials: pd.DataFrame = field(default_factory=lambda: empty_table("financials"))
    insolvencies: pd.DataFrame = field(default_factory=lambda: empty_table("insolvencies"))
    insurer_limits: pd.DataFrame = field(default_factory=lambda: empty_table("insurer_limits"))
    actions: pd.DataFrame = field(default_factory=lambda: empty_table("actions"))
    fx_rates: pd.DataFrame = field(default_factory=lambda: empty_table(RATES))
    reporting_currency: str | None = None

    def table(self, name: str) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, name)
        return frame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The client tables (each row belongs to one client)."""
        return {name: self.table(name) for name in TABLE_NAMES}

    def all_tables(self) -> dict[str, pd.DataFrame]:
        """The client tables and the rates."""
        return {name: self.table(name) for name in LEDGER_TABLES}

    @cached_property
    def rates(self) -> Rates:
        """The exchange rates indexed for `features.fx` lookups."""
        return Rates.of(self.fx_rates, self.reporting_currency)

    def with_tables(self, tables: dict[str, pd.DataFrame]) -> Ledger:
        out = replace(self, **tables)
        if RATES not in tables and "rates" in self.__dict__:  # the same rates: keep their index
            out.__dict__["rates"] = self.__dict__["rates"]
        return out


ArrayOrSeries = TypeVar("ArrayOrSeries", np.ndarray, pd.Series)


def is_open(
    issued_on: ArrayOrSeries, paid_on: ArrayOrSeries, written_off_on: ArrayOrSeries, as_of: object
) -> ArrayOrSeries:
    """What "open" means at `as_of`, the one definition every consumer uses: issued before it,
    neither settled nor written off before it. Dates as datetimes, or as days (NaN missing)."""
    return (issued_on < as_of) & ~(paid_on < as_of) & ~(written_off_on < as_of)


class LedgerValidationError(InputError):
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


def flag(
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
            text = before.where(present).astype("str")
            after = text.str.strip()
            if col.name.endswith("_id"):  # an id is exact: " C1" is not "C1", wherever it is
                padded = (after != text).to_numpy(dtype=bool, na_value=False) & present.to_numpy(
                    dtype=bool
                )
                found.append(flag(name, frame, padded, col.name, "has spaces before or after it"))
        elif col.kind == "float":
            after = pd.to_numeric(before.where(present), errors="coerce").astype("float64")
            found.append(flag(name, frame, present & after.isna(), col.name, "is not a number"))
        elif col.kind == "date":
            after = _to_dates(before.where(present))
            found.append(
                flag(name, frame, present & after.isna(), col.name, "is not a date (YYYY-MM-DD)")
            )
        else:  # bool
            text = before.astype("string").str.strip().str.lower()
            after = pd.Series(np.where(text.isin(list(_TRUE)), True, False), index=frame.index)
            bad = present & ~text.isin(list(_TRUE | _FALSE))
            found.append(flag(name, frame, bad, col.name, "is not true/false"))
        if not col.nullable:
            found.append(flag(name, frame, ~present, col.name, "must not be empty"))
        frame[col.name] = after
    ordered = schema.column_names + [c for c in frame.columns if c not in schema.column_names]
    return frame[ordered], _concat(found)


def _to_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype(DATE_DTYPE)
    # Accept ISO dates and datetimes only: a day-first/month-first guess could silently swap fields.
    text = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype(DATE_DTYPE)


# --------------------------------------------------------------------------------------------
# Rules on typed tables


@dataclass(frozen=True)
class Rule:
    """A rule across columns or tables: the rows of `table` that break it, named by `column` and
    the rule's words (`{cfg}` in them is the contract's tolerances). `shown`, when given, is the
    value the violation shows instead of the cell's own."""

    table: str
    column: str
    rule: str
    broken: Callable[[Ledger, ContractConfig], np.ndarray | pd.Series]
    shown: Callable[[Ledger], pd.Series] | None = None


def _before(table: str, column: str, other: str) -> Rule:
    return Rule(
        table,
        column,
        f"is before {other}",
        lambda t, _: t.table(table)[column] < t.table(table)[other],
    )


def _unknown_client(table: str) -> Rule:
    def broken(t: Ledger, _: ContractConfig) -> np.ndarray:
        frame = t.table(table)
        return frame["client_id"].notna().to_numpy() & ~isin(
            frame["client_id"], t.clients["client_id"].dropna()
        )

    return Rule(table, "client_id", "refers to no client in clients", broken)


def _invoices_once(t: Ledger) -> pd.DataFrame:
    """The invoices with one row per id (a repeated id is its own violation)."""
    inv = t.invoices
    return inv if no_repeats(inv["invoice_id"]) else inv.drop_duplicates("invoice_id")


def _paid_invoice(t: Ledger) -> np.ndarray:
    """Each payment's row in `_invoices_once`, -1 for none."""
    return index_in(t.payments["invoice_id"], _invoices_once(t)["invoice_id"])


def _payment_totals(t: Ledger) -> pd.Series:
    return t.payments.groupby("invoice_id")["amount"].sum()


def _payments_disagree(t: Ledger, cfg: ContractConfig) -> np.ndarray:
    """Invoices whose payments do not add up to their paid_amount."""
    if not len(t.payments):
        return np.zeros(len(t.invoices), dtype=bool)
    inv, totals = _invoices_once(t), _payment_totals(t)
    known = index_in(totals.index, inv["invoice_id"])
    recorded = take(inv["paid_amount"].to_numpy("float64", na_value=np.nan), known, np.nan)
    amount = take(inv["amount"].to_numpy("float64", na_value=np.nan), known, np.nan)
    with np.errstate(invalid="ignore"):
        gap = np.abs(totals.to_numpy() - np.nan_to_num(recorded, nan=0.0)) > (
            cfg.payment_sum_tolerance * amount + 0.01
        )
    bad = totals.index[gap & (known >= 0)]
    if not len(bad):
        return np.zeros(len(t.invoices), dtype=bool)
    return isin(t.invoices["invoice_id"], bad)


def _action_invoice(t: Ledger, _: ContractConfig) -> np.ndarray:
    """Actions naming an invoice that is not one of their client's."""
    act = t.actions
    inv = _invoices_once(t)
    at = index_in(act["invoice_id"], inv["invoice_id"])
    owner = take(inv["client_id"].to_numpy(dtype=object), at, None)
    named = act["invoice_id"].notna().to_numpy()
    return named & ((at < 0) | (owner != act["client_id"].to_numpy(dtype=object)))


def _needs_rate(table: str, day: str) -> Rule:
    """Rows of `table` in a currency with no rate to the reporting currency on or before their
    `day` (an invoice's issue, an insurer's decision; and so none on any later date it is scored
    at), shown as "USD on 2024-03-01 (reporting in EUR)"."""

    def broken(t: Ledger, _: ContractConfig) -> np.ndarray:
        frame = t.table(table)
        known = frame["currency"].notna().to_numpy() & isin(frame["currency"], CURRENCIES)
        return known & np.isnan(t.rates.on(frame["currency"], frame[day]))

    def shown(t: Ledger) -> pd.Series:
        frame = t.table(table)
        return (
            frame["currency"].astype(str)
            + " on "
            + frame[day].dt.strftime("%Y-%m-%d")
            + f" (reporting in {t.reporting_currency})"
        )

    return Rule(
        table,
        "currency",
        f"has no rate to the reporting currency on or before {day}",
        broken,
        shown,
    )


def _scheduled_invoice(t: Ledger) -> np.ndarray:
    """Each instalment's row in `_invoices_once`, -1 for none."""
    return index_in(t.instalments["invoice_id"], _invoices_once(t)["invoice_id"])


def _instalments_disagree(t: Ledger, cfg: ContractConfig) -> np.ndarray:
    """Invoices whose instalments do not add up to their amount, or whose last instalment does
    not fall on their due date."""
    if not len(t.instalments):
        return np.zeros(len(t.invoices), dtype=bool)
    by_invoice = t.instalments.groupby("invoice_id").agg(
        total=("amount", "sum"), last=("due_on", "max")
    )
    inv = t.invoices
    total = inv["invoice_id"].map(by_invoice["total"]).to_numpy(dtype="float64")
    last = inv["invoice_id"].map(by_invoice["last"])
    amount = inv["amount"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        off = np.abs(total - amount) > cfg.payment_sum_tolerance * amount + 0.01
    moved = last.notna().to_numpy() & (last != inv["due_on"]).to_numpy()
    return np.isfinite(total) & (off | moved)


def _payment_issued(t: Ledger) -> pd.Series:
    inv = _invoices_once(t)
    issued = take(inv["issued_on"].to_numpy(), _paid_invoice(t), np.datetime64("NaT"))
    return pd.Series(issued, index=t.payments.index)


# The rules across columns and tables, in the order their violations are listed.
RULES: tuple[Rule, ...] = (
    Rule(
        "clients",
        "country",
        "is not an ISO 3166-1 alpha-2 code",
        lambda t, _: t.clients["country"].notna() & ~isin(t.clients["country"], COUNTRIES),
    ),
    _before("clients", "onboarded_on", "founded_on"),
    *(
        _unknown_client(name)
        for name in ("invoices", "financials", "insolvencies", "insurer_limits", "actions")
    ),
    Rule(
        "insurer_limits",
        "status",
        "is not one of " + ", ".join(INSURER_DECISIONS),
        lambda t, _: ~t.insurer_limits["status"].isin(INSURER_DECISIONS).to_numpy(),
    ),
    Rule(
        "insurer_limits",
        "currency",
        "is not an ISO 4217 code",
        lambda t, _: (
            t.insurer_limits["currency"].notna() & ~isin(t.insurer_limits["currency"], CURRENCIES)
        ),
    ),
    _before("insurer_limits", "valid_until", "decided_on"),
    _needs_rate("insurer_limits", "decided_on"),
    Rule(
        "actions",
        "action",
        "is not one of " + ", ".join(ACTIONS),
        lambda t, _: ~t.actions["action"].isin(ACTIONS).to_numpy(),
    ),
    Rule("actions", "invoice_id", "refers to no invoice of its client", _action_invoice),
    Rule(
        "invoices",
        "currency",
        "is not an ISO 4217 code",
        lambda t, _: t.invoices["currency"].notna() & ~isin(t.invoices["currency"], CURRENCIES),
    ),
    Rule(
        RATES,
        "currency",
        "is not an ISO 4217 code",
        lambda t, _: t.fx_rates["currency"].notna() & ~isin(t.fx_rates["currency"], CURRENCIES),
    ),
    Rule(
        RATES,
        "rate",
        "is the reporting currency's, which must be 1",
        lambda t, _: (t.fx_rates["currency"] == t.reporting_currency) & (t.fx_rates["rate"] != 1.0),
    ),
    _needs_rate("invoices", "issued_on"),
    _before("invoices", "due_on", "issued_on"),
    _before("invoices", "paid_on", "issued_on"),
    _before("invoices", "written_off_on", "issued_on"),
    Rule(
        "invoices",
        "paid_amount",
        "exceeds amount beyond the {cfg.overpayment_tolerance:.0%} overpayment tolerance",
        lambda t, cfg: (
            t.invoices["paid_amount"] > t.invoices["amount"] * (1 + cfg.overpayment_tolerance)
        ),
    ),
    Rule(
        "invoices",
        "paid_amount",
        "must be set when paid_on is set",
        lambda t, _: t.invoices["paid_on"].notna() & t.invoices["paid_amount"].isna(),
    ),
    Rule(
        "payments",
        "invoice_id",
        "refers to no invoice in invoices",
        lambda t, _: t.payments["invoice_id"].notna().to_numpy() & (_paid_invoice(t) < 0),
    ),
    Rule(
        "payments",
        "paid_on",
        "is before the invoice's issued_on",
        lambda t, _: t.payments["paid_on"] < _payment_issued(t),
    ),
    Rule(
        "invoices",
        "paid_amount",
        "differs from the sum of its payments",
        _payments_disagree,
        shown=lambda t: (
            t.invoices["invoice_id"]
            .map(_payment_totals(t))
            .map(lambda v: f"payments sum to {v:.2f}")
        ),
    ),
    Rule(
        "instalments",
        "invoice_id",
        "refers to no invoice in invoices",
        lambda t, _: t.instalments["invoice_id"].notna().to_numpy() & (_scheduled_invoice(t) < 0),
    ),
    Rule(
        "instalments",
        "due_on",
        "is before the invoice's issued_on",
        lambda t, _: (
            t.instalments["due_on"]
            < pd.Series(
                take(
                    _invoices_once(t)["issued_on"].to_numpy(),
                    _scheduled_invoice(t),
                    np.datetime64("NaT"),
                ),
                index=t.instalments.index,
            )
        ),
    ),
    Rule(
        "invoices",
        "amount",
        "differs from the sum of its instalments, or due_on from the last one's",
        _instalments_disagree,
        shown=lambda t: (
            t.invoices["invoice_id"]
            .map(t.instalments.groupby("invoice_id")["amount"].sum())
            .map(lambda v: f"instalments sum to {v:.2f}")
        ),
    ),
    _before("financials", "published_on", "period_end"),
    Rule(
        "financials",
        "current_assets",
        "exceeds total_assets",
        lambda t, _: t.financials["current_assets"] > t.financials["total_assets"] * 1.0001,
    ),
)


def _column_rules(name: str, frame: pd.DataFrame, extracted_on: pd.Timestamp) -> list[pd.DataFrame]:
    """The rules each column declares in its schema: a unique key, ranges, no future dates."""
    found = _unique_key(name, frame, SCHEMAS[name].key)
    for col in SCHEMAS[name].columns:
        values = frame[col.name]
        if col.kind == "float":
            found.append(flag(name, frame, np.isinf(values), col.name, "must be a finite number"))
            bound = col.maximum if col.maximum is not None else MAX_AMOUNT
            huge = np.isfinite(values) & (values.abs() > bound)
            found.append(flag(name, frame, huge, col.name, f"must be at most {bound:g} in size"))
            if col.strictly_positive:
                found.append(flag(name, frame, values <= 0, col.name, "must be > 0"))
            if col.name == "rate":
                tiny = (values > 0) & (values < MIN_RATE)
                found.append(flag(name, frame, tiny, col.name, f"must be at least {MIN_RATE:g}"))
            if col.minimum is not None:
                found.append(
                    flag(name, frame, values < col.minimum, col.name, f"must be >= {col.minimum:g}")
                )
        elif col.kind == "date":
            first = pd.Timestamp(col.earliest) if col.earliest else FIRST_DAY
            early = f"is before {first.date().isoformat()}"
            found.append(flag(name, frame, values < first, col.name, early))
            if not col.future_allowed:
                after = f"is after the extraction date {extracted_on.date().isoformat()}"
                found.append(flag(name, frame, values > extracted_on, col.name, after))
            else:
                late = f"is after {LAST_DAY.date().isoformat()}"
                found.append(flag(name, frame, values > LAST_DAY, col.name, late))
        elif col.kind == "str" and len(frame):
            found += _text_rules(name, frame, col)
    return found


def _text_rules(name: str, frame: pd.DataFrame, col: Column) -> list[pd.DataFrame]:
    """An id holds no control character or path separator, is not "." or "..", and is at most
    `MAX_ID` long; other text holds no control character and is at most its column's length."""
    text = frame[col.name].astype("str")
    is_id = col.name.endswith("_id")
    longest = MAX_ID if is_id else (col.max_length or MAX_TEXT)
    pattern = _NOT_IN_IDS if is_id else _CONTROL
    bad = text.str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
    long = (text.str.len() > longest).fillna(False).to_numpy(dtype=bool)
    rule = (
        "holds a control character, a path separator (/ or \\) or is . or .."
        if is_id
        else "holds a control character (a line break, a tab, ...)"
    )
    shown = text.map(lambda v: repr(v)[1:-1][:80], na_action="ignore")
    return [
        flag(name, frame, bad, col.name, rule, shown),
        flag(name, frame, long, col.name, f"is longer than {longest:,} characters", shown),
    ]


def validate_ledger(ledger: Ledger, *, config: ContractConfig | None = None) -> pd.DataFrame:
    """Every violation of the contract's rules in a typed ledger, one row per (cell, rule)."""
    cfg = config or ContractConfig()
    found: list[pd.DataFrame] = []
    for name, frame in ledger.all_tables().items():
        found += _column_rules(name, frame, ledger.extracted_on)
    for rule in RULES:
        frame = ledger.table(rule.table)
        if not len(frame):
            continue
        broken = np.asarray(rule.broken(ledger, cfg), dtype=bool)
        if broken.any():
            shown = rule.shown(ledger) if rule.shown is not None else None
            words = rule.rule.format(cfg=cfg)
            found.append(flag(rule.table, frame, broken, rule.column, words, shown))
    return _concat(found)


def _unique_key(name: str, frame: pd.DataFrame, key: tuple[str, ...]) -> list[pd.DataFrame]:
    if name == "payments":  # an invoice may be paid twice on one day
        return []
    if len(key) == 1 and no_repeats(frame[key[0]]):  # the usual case, without pandas' factorize
        return []
    dup = frame.duplicated(list(key), keep="first") & frame[list(key)].notna().all(axis=1)
    return [
        flag(
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
    reporting_currency: str | None = None,
    rates: pd.DataFrame | None = None,
    config: ContractConfig | None = None,
    consume: bool = False,
) -> tuple[Ledger, pd.DataFrame]:
    """Coerce raw tables and validate them; returns the typed ledger and all violations.
    `reporting_currency`: the manifest's (None: the invoices' only currency, `features.fx`).
    `rates`: an fx_rates table typed and checked already (a part of a ledger read in parts),
    used as it is instead of `raw`'s. `consume` takes each raw table out of `raw` once typed, so
    that a large ledger is not held twice while it is validated."""
    typed: dict[str, pd.DataFrame] = {}
    found: list[pd.DataFrame] = []
    for name in LEDGER_TABLES:
        if name == RATES and rates is not None:
            typed[name] = rates
            continue
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
    currencies = set(invoice_currencies(typed["invoices"]["currency"]))
    reporting = resolve_reporting(reporting_currency, currencies)
    ledger = Ledger(extracted_on=pd.Timestamp(extracted_on), reporting_currency=reporting, **typed)
    violations = validate_ledger(ledger, config=config)
    if rates is not None:  # checked once for the whole ledger, not again in every part
        violations = violations[violations["table"] != RATES]
    found.append(violations)
    return ledger, _concat(found)


def check_rates(
    raw: pd.DataFrame | None,
    *,
    extracted_on: pd.Timestamp,
    reporting_currency: str | None,
    config: ContractConfig | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A ledger's fx_rates table typed and checked alone (a ledger read in parts checks it once):
    its clean rows, and the rejected ones with their `reasons`."""
    if raw is None:
        return empty_table(RATES), empty_table(RATES).assign(reasons=pd.Series([], dtype=object))
    typed, found = coerce_table(RATES, raw)
    ledger = Ledger(
        clients=empty_table("clients"),
        invoices=empty_table("invoices"),
        extracted_on=pd.Timestamp(extracted_on),
        fx_rates=typed,
        reporting_currency=reporting_currency,
    )
    violations = _concat([found, validate_ledger(ledger, config=config)])
    clean, rejected = split_quarantine(ledger, violations, config=config)
    return clean.fx_rates, rejected[RATES]


def invoice_currencies(values: pd.Series) -> list[str]:
    """The distinct valid ISO 4217 codes among invoice currencies (for the reporting default)."""
    codes = pd.unique(values.dropna().astype(object))
    return sorted(str(c) for c in codes if c in CURRENCIES)


def split_quarantine(
    ledger: Ledger,
    violations: pd.DataFrame,
    *,
    config: ContractConfig | None = None,
) -> tuple[Ledger, dict[str, pd.DataFrame]]:
    """Remove the offending rows (and rows that then lose their parent) and keep the rest.

    Returns the clean ledger and, per table, the removed rows with a `reasons` column.
    """
    tables = {n: f.copy() for n, f in ledger.all_tables().items()}
    rejected: dict[str, list[pd.DataFrame]] = {n: [] for n in LEDGER_TABLES}
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
