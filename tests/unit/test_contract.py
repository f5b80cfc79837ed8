"""The data contract accepts good ledgers and names table, row, column and rule of each bad cell."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    Ledger,
    LedgerValidationError,
    check_ledger,
    split_quarantine,
)

EXTRACTED = pd.Timestamp("2024-06-30")


def raw_tables() -> dict[str, pd.DataFrame]:
    """A tiny valid ledger as text, as it would come from CSV files."""
    return {
        "clients": pd.DataFrame(
            {
                "client_id": ["C1", "C2"],
                "name": ["Alpha GmbH", "Beta SAS"],
                "country": ["DE", "FR"],
                "industry": ["Retail", "Wholesale"],
                "registered_capital": ["25000", ""],
                "founded_on": ["2010-03-01", ""],
                "onboarded_on": ["2020-01-15", "2023-02-01"],
            }
        ),
        "invoices": pd.DataFrame(
            {
                "invoice_id": ["I1", "I2", "I3"],
                "client_id": ["C1", "C1", "C2"],
                "issued_on": ["2024-01-10", "2024-02-10", "2024-03-01"],
                "due_on": ["2024-02-09", "2024-03-11", "2024-07-30"],
                "amount": ["100.00", "250.50", "80"],
                "currency": ["EUR", "EUR", "USD"],
                "paid_on": ["2024-02-20", "", ""],
                "paid_amount": ["100.00", "100.00", "0"],
                "disputed": ["false", "true", "no"],
            }
        ),
        "payments": pd.DataFrame(
            {"invoice_id": ["I2"], "paid_on": ["2024-03-01"], "amount": ["100.00"]}
        ),
        "financials": pd.DataFrame(
            {
                "client_id": ["C1"],
                "period_end": ["2023-12-31"],
                "published_on": ["2024-04-15"],
                "revenue": ["1000000"],
                "total_assets": ["800000"],
                "total_liabilities": ["500000"],
                "current_assets": ["300000"],
                "current_liabilities": ["200000"],
                "cash": ["50000"],
                "operating_cash_flow": ["-10000"],
                "equity": ["300000"],
            }
        ),
        "insolvencies": pd.DataFrame({"client_id": ["C2"], "declared_on": ["2024-05-01"]}),
        "insurer_limits": pd.DataFrame(
            {
                "client_id": ["C1", "C1"],
                "limit": ["50000", "20000"],
                "currency": ["EUR", "EUR"],
                "decided_on": ["2023-01-10", "2024-05-02"],
                "valid_until": ["", "2025-05-01"],
                "status": ["granted", "reduced"],
            }
        ),
        "actions": pd.DataFrame(
            {
                "client_id": ["C1", "C1"],
                "invoice_id": ["I2", ""],
                "action": ["letter_sent", "promise_to_pay"],
                "on": ["2024-03-20", "2024-04-02"],
                "amount": ["", "150.5"],
                "note": ["reminder", ""],
            }
        ),
        "fx_rates": pd.DataFrame(
            {
                "date": ["2024-02-29", "2024-03-01", "2024-06-28"],
                "currency": ["USD", "USD", "USD"],
                "rate": ["0.9251", "0.9238", "0.9340"],
            }
        ),
    }


def check(raw: dict[str, pd.DataFrame]) -> tuple[Ledger, pd.DataFrame]:
    return check_ledger(raw, extracted_on=EXTRACTED, reporting_currency="EUR")


def test_it_accepts_a_valid_ledger_and_types_every_column() -> None:
    ledger, violations = check(raw_tables())
    assert violations.empty
    assert str(ledger.invoices["issued_on"].dtype) == "datetime64[us]"
    assert ledger.invoices["amount"].tolist() == [100.0, 250.5, 80.0]
    assert ledger.invoices["disputed"].tolist() == [False, True, False]
    assert pd.isna(ledger.clients.loc[1, "registered_capital"])  # missing stays missing


def test_a_due_date_may_lie_after_the_extraction_date() -> None:
    _, violations = check(raw_tables())
    assert not (violations["column"] == "due_on").any()


Mutation = Callable[[dict[str, pd.DataFrame]], None]


def _set(table: str, row: int, column: str, value: str) -> Mutation:
    def mutate(raw: dict[str, pd.DataFrame]) -> None:
        raw[table].loc[row, column] = value

    return mutate


def _duplicate_client(raw: dict[str, pd.DataFrame]) -> None:
    raw["clients"] = pd.concat([raw["clients"], raw["clients"].iloc[[0]]], ignore_index=True)


def _drop_column(raw: dict[str, pd.DataFrame]) -> None:
    raw["invoices"] = raw["invoices"].drop(columns=["currency"])


RULES: list[tuple[str, Mutation, str, str, int, str]] = [
    # (case, mutation, table, column, row, message fragment)
    ("unique client id", _duplicate_client, "clients", "client_id", 3, "duplicates the key"),
    (
        "client of an invoice exists",
        _set("invoices", 1, "client_id", "C9"),
        "invoices",
        "client_id",
        2,
        "refers to no client",
    ),
    (
        "due on or after issue",
        _set("invoices", 0, "due_on", "2024-01-01"),
        "invoices",
        "due_on",
        1,
        "is before issued_on",
    ),
    (
        "paid on or after issue",
        _set("invoices", 0, "paid_on", "2024-01-01"),
        "invoices",
        "paid_on",
        1,
        "is before issued_on",
    ),
    ("amount positive", _set("invoices", 2, "amount", "0"), "invoices", "amount", 3, "must be > 0"),
    (
        "paid amount not negative",
        _set("invoices", 2, "paid_amount", "-5"),
        "invoices",
        "paid_amount",
        3,
        "must be >= 0",
    ),
    (
        "overpayment",
        _set("invoices", 0, "paid_amount", "102"),
        "invoices",
        "paid_amount",
        1,
        "overpayment",
    ),
    (
        "ISO 4217 currency",
        _set("invoices", 0, "currency", "EURO"),
        "invoices",
        "currency",
        1,
        "ISO 4217",
    ),
    (
        "ISO 3166 country",
        _set("clients", 0, "country", "Germany"),
        "clients",
        "country",
        1,
        "ISO 3166-1 alpha-2",
    ),
    (
        "no date after extraction",
        _set("invoices", 1, "issued_on", "2024-08-01"),
        "invoices",
        "issued_on",
        2,
        "after the extraction date",
    ),
    (
        "readable date",
        _set("invoices", 0, "issued_on", "10/01/2024"),
        "invoices",
        "issued_on",
        1,
        "is not a date",
    ),
    (
        "readable number",
        _set("invoices", 0, "amount", "12,5"),
        "invoices",
        "amount",
        1,
        "is not a number",
    ),
    (
        "readable flag",
        _set("invoices", 0, "disputed", "maybe"),
        "invoices",
        "disputed",
        1,
        "is not true/false",
    ),
    (
        "required value",
        _set("clients", 1, "industry", ""),
        "clients",
        "industry",
        2,
        "must not be empty",
    ),
    ("required column", _drop_column, "invoices", "currency", 0, "required column is missing"),
    (
        "onboarded after founded",
        _set("clients", 0, "onboarded_on", "2009-01-01"),
        "clients",
        "onboarded_on",
        1,
        "before founded_on",
    ),
    (
        "payment after issue",
        _set("payments", 0, "paid_on", "2024-01-01"),
        "payments",
        "paid_on",
        1,
        "before the invoice's issued_on",
    ),
    (
        "payment of a known invoice",
        _set("payments", 0, "invoice_id", "I7"),
        "payments",
        "invoice_id",
        1,
        "refers to no invoice",
    ),
    (
        "payments add up",
        _set("payments", 0, "amount", "60"),
        "invoices",
        "paid_amount",
        2,
        "sum of its payments",
    ),
    (
        "paid amount with paid date",
        _set("invoices", 0, "paid_amount", ""),
        "invoices",
        "paid_amount",
        1,
        "must be set when paid_on",
    ),
    (
        "statement published after period",
        _set("financials", 0, "published_on", "2023-12-01"),
        "financials",
        "published_on",
        1,
        "before period_end",
    ),
    (
        "statement of a known client",
        _set("financials", 0, "client_id", "C5"),
        "financials",
        "client_id",
        1,
        "refers to no client",
    ),
    (
        "non-negative assets",
        _set("financials", 0, "cash", "-1"),
        "financials",
        "cash",
        1,
        "must be >= 0",
    ),
    (
        "insolvency of a known client",
        _set("insolvencies", 0, "client_id", "C5"),
        "insolvencies",
        "client_id",
        1,
        "refers to no client",
    ),
    (
        "insolvency not in the future",
        _set("insolvencies", 0, "declared_on", "2025-01-01"),
        "insolvencies",
        "declared_on",
        1,
        "after the extraction date",
    ),
    (
        "a rate for the invoice's currency",
        _set("invoices", 2, "currency", "GBP"),
        "invoices",
        "currency",
        3,
        "has no rate to the reporting currency on or before issued_on",
    ),
    ("rate positive", _set("fx_rates", 0, "rate", "0"), "fx_rates", "rate", 1, "must be > 0"),
    (
        "insurer limit of a known client",
        _set("insurer_limits", 0, "client_id", "C8"),
        "insurer_limits",
        "client_id",
        1,
        "refers to no client",
    ),
    (
        "insurer decision",
        _set("insurer_limits", 1, "status", "approved"),
        "insurer_limits",
        "status",
        2,
        "is not one of granted, reduced, cancelled",
    ),
    (
        "insurer limit not negative",
        _set("insurer_limits", 0, "limit", "-1"),
        "insurer_limits",
        "limit",
        1,
        "must be >= 0",
    ),
    (
        "insurer limit currency",
        _set("insurer_limits", 0, "currency", "EURO"),
        "insurer_limits",
        "currency",
        1,
        "ISO 4217",
    ),
    (
        "valid after decided",
        _set("insurer_limits", 1, "valid_until", "2024-01-01"),
        "insurer_limits",
        "valid_until",
        2,
        "is before decided_on",
    ),
    (
        "a known action",
        _set("actions", 0, "action", "shouted"),
        "actions",
        "action",
        1,
        "is not one of letter_sent",
    ),
    (
        "an action on its client's invoice",
        _set("actions", 0, "invoice_id", "I3"),
        "actions",
        "invoice_id",
        1,
        "refers to no invoice of its client",
    ),
    (
        "an action of a known client",
        _set("actions", 1, "client_id", "C7"),
        "actions",
        "client_id",
        2,
        "refers to no client",
    ),
    (
        "no action after extraction",
        _set("actions", 1, "on", "2024-07-02"),
        "actions",
        "on",
        2,
        "after the extraction date",
    ),
    ("rate readable", _set("fx_rates", 1, "rate", "n/a"), "fx_rates", "rate", 2, "not a number"),
    (
        "rate of an ISO 4217 currency",
        _set("fx_rates", 0, "currency", "DOLLAR"),
        "fx_rates",
        "currency",
        1,
        "ISO 4217",
    ),
    (
        "one rate per currency and day",
        _set("fx_rates", 1, "date", "2024-02-29"),
        "fx_rates",
        "date",
        2,
        "duplicates the key (currency, date)",
    ),
    (
        "no rate after extraction",
        _set("fx_rates", 2, "date", "2024-07-05"),
        "fx_rates",
        "date",
        3,
        "after the extraction date",
    ),
    (
        "the reporting currency at 1",
        _set("fx_rates", 0, "currency", "EUR"),
        "fx_rates",
        "rate",
        1,
        "must be 1",
    ),
]


@pytest.mark.parametrize(
    ("case", "mutate", "table", "column", "row", "fragment"), RULES, ids=[r[0] for r in RULES]
)
def test_it_names_table_row_column_and_rule_of_each_violation(
    case: str, mutate: Mutation, table: str, column: str, row: int, fragment: str
) -> None:
    raw = raw_tables()
    mutate(raw)
    _, violations = check(raw)
    hit = violations[(violations["table"] == table) & (violations["column"] == column)]
    assert len(hit) >= 1, violations
    assert hit["rule"].str.contains(fragment, regex=False).any(), hit
    assert row in hit["row"].tolist()


def test_it_reports_every_violation_not_just_the_first() -> None:
    raw = raw_tables()
    raw["invoices"].loc[0, "amount"] = "-1"
    raw["invoices"].loc[1, "currency"] = "XXX1"
    raw["clients"].loc[1, "country"] = "F"
    _, violations = check(raw)
    assert {("invoices", "amount"), ("invoices", "currency"), ("clients", "country")} <= set(
        zip(violations["table"], violations["column"], strict=True)
    )


def test_the_error_message_names_field_row_and_rule() -> None:
    raw = raw_tables()
    raw["invoices"].loc[2, "amount"] = "-3"
    _, violations = check(raw)
    with pytest.raises(LedgerValidationError, match=r"invoices row 3 \(I3\): amount must be > 0"):
        raise LedgerValidationError(violations)


def test_an_invoice_without_a_rate_known_at_issue_names_row_currency_and_date() -> None:
    """I3 (USD) is issued on 2024-03-01; with the first USD rate dated a day later it has none
    on or before its issue date: rejected, and the rates after it never stand in."""
    raw = raw_tables()
    raw["fx_rates"].loc[[0, 1], "date"] = ["2024-03-02", "2024-03-04"]
    ledger, violations = check(raw)
    hit = violations[violations["rule"].str.contains("no rate", regex=False)]
    assert hit[["table", "row", "key", "column"]].values.tolist() == [
        ["invoices", 3, "I3", "currency"]
    ]
    assert hit["value"].iloc[0] == "USD on 2024-03-01 (reporting in EUR)"
    clean, rejected = split_quarantine(ledger, violations)
    assert rejected["invoices"]["invoice_id"].tolist() == ["I3"]
    assert clean.reporting_currency == "EUR"


def test_a_bad_rate_row_takes_the_invoices_that_needed_it_along() -> None:
    raw = raw_tables()
    raw["fx_rates"].loc[0, "rate"] = "-0.9"  # the only USD rate known when I3 was issued
    raw["fx_rates"].loc[1, "date"] = "2024-03-05"
    ledger, violations = check(raw)
    clean, rejected = split_quarantine(ledger, violations)
    assert rejected["fx_rates"]["reasons"].iloc[0].startswith("rate must be > 0")
    assert rejected["invoices"]["invoice_id"].tolist() == ["I3"]
    assert "has no rate to the reporting currency" in rejected["invoices"]["reasons"].iloc[0]
    assert len(clean.fx_rates) == 2


def test_several_currencies_need_a_reporting_currency_and_one_currency_needs_no_rates() -> None:
    from features.errors import InputError

    raw = raw_tables()
    with pytest.raises(InputError, match=r"2 currencies \(EUR, USD\).*reporting_currency"):
        check_ledger(raw, extracted_on=EXTRACTED)
    raw = raw_tables()
    raw["invoices"]["currency"] = "EUR"
    del raw["fx_rates"]
    ledger, violations = check_ledger(raw, extracted_on=EXTRACTED)
    assert violations.empty and ledger.reporting_currency == "EUR"
    assert ledger.rates.on(ledger.invoices["currency"], EXTRACTED).tolist() == [1.0, 1.0, 1.0]


def test_the_rate_known_on_a_day_is_the_latest_on_or_before_it() -> None:
    ledger, _ = check(raw_tables())
    days = pd.Series(pd.to_datetime(["2024-02-28", "2024-02-29", "2024-03-01", "2024-06-27"]))
    rates = ledger.rates.on(pd.Series(["USD"] * 4), days)
    assert np.isnan(rates[0]) and rates[1:].tolist() == [0.9251, 0.9238, 0.9238]
    assert ledger.rates.on(pd.Series(["EUR", "JPY"]), pd.Timestamp("2024-06-30"))[0] == 1.0
    assert np.isnan(ledger.rates.on(pd.Series(["JPY"]), pd.Timestamp("2024-06-30"))[0])


def test_quarantine_keeps_valid_rows_and_cascades_to_orphans() -> None:
    raw = raw_tables()
    raw["clients"].loc[0, "country"] = "Germany"  # C1 is bad, so are its invoices and statement
    ledger, violations = check(raw)
    clean, rejected = split_quarantine(ledger, violations)
    assert clean.clients["client_id"].tolist() == ["C2"]
    assert clean.invoices["invoice_id"].tolist() == ["I3"]
    assert clean.payments.empty  # its invoice went with the client
    assert (
        rejected["clients"]["reasons"]
        .iloc[0]
        .startswith("country is not an ISO 3166-1 alpha-2 code")
    )
    assert set(rejected["invoices"]["invoice_id"]) == {"I1", "I2"}
    total = {n: len(f) for n, f in ledger.tables().items()}
    assert all(len(clean.table(n)) + len(rejected[n]) == total[n] for n in total)  # nothing lost
    _, again = check_ledger(
        {n: f.astype(str).replace({"NaT": "", "nan": ""}) for n, f in clean.tables().items()},
        extracted_on=EXTRACTED,
    )
    assert again.empty


def test_a_csv_ledger_read_in_parts_keeps_and_rejects_what_the_whole_check_does(
    small_ledger_dir: Path, tmp_path: Path
) -> None:
    """`ledger_parts` on a CSV ledger (text cells, padded ids, an unreadable number, a bad date,
    an empty client id, an invoice id reused far away in the file) against validating it whole."""
    from features.io import inspect_ledger
    from features.stream import ledger_parts

    folder = tmp_path / "csv"
    folder.mkdir()
    shutil.copy(small_ledger_dir / "manifest.json", folder)
    for path in small_ledger_dir.glob("*.parquet"):
        table = pd.read_parquet(path).astype(object)
        if path.stem == "invoices":
            table.loc[3, "client_id"] = f"  {table.loc[3, 'client_id']} "  # padded: flagged
            table.loc[7, "amount"] = "abc"
            table.loc[9, "issued_on"] = "2020-13-45"
            table.loc[11, "client_id"] = ""
            table.loc[12, "invoice_id"] = table.loc[2000, "invoice_id"]
        if path.stem == "fx_rates":
            table.loc[5, "rate"] = "abc"  # checked once, rejected once, in no part's ledger
        table.to_csv(folder / f"{path.stem}.csv", index=False)

    whole, violations = inspect_ledger(folder)
    clean, rejected = split_quarantine(whole, violations)
    parts = list(ledger_parts(folder, part_clients=30))
    assert len(parts) > 3
    assert all(p.ledger.reporting_currency == "EUR" for p in parts)
    pd.testing.assert_frame_equal(parts[0].ledger.fx_rates, clean.fx_rates)
    assert "rate is not a number (abc)" in rejected["fx_rates"]["reasons"].iloc[0]
    for name, frame in clean.all_tables().items():
        if name == "fx_rates":
            got = pd.concat([p.rejected[name] for p in parts if name in p.rejected])
            pd.testing.assert_frame_equal(
                rejected[name], got, check_index_type=False, check_dtype=False
            )
            continue
        pieces = pd.concat([getattr(p.ledger, name) for p in parts])
        pd.testing.assert_frame_equal(
            frame.sort_values(list(frame.columns[:3]), kind="stable", ignore_index=True),
            pieces.sort_values(list(frame.columns[:3]), kind="stable", ignore_index=True),
        )
        got = pd.concat([p.rejected[name] for p in parts]).sort_index()
        pd.testing.assert_frame_equal(
            rejected[name].sort_index(), got, check_index_type=False, check_dtype=False
        )
    reasons = rejected["invoices"].set_index(rejected["invoices"].index + 1)["reasons"]
    assert "amount is not a number (abc)" in reasons[8]
    assert "is not a date" in reasons[10] and "must not be empty" in reasons[12]
    assert "duplicates the key (invoice_id)" in reasons[2001]
    assert "client_id has spaces before or after it" in reasons[4]  # an id is exact
