"""Amounts in another currency, converted at the rate known on the day, computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from features.payment_behaviour import build_client_features, build_invoice_features
from scoring.dso import monthly_positions
from scoring.receivables import open_invoices
from tests.ledgers import make_ledger

# One client in the US invoiced in USD, one in Germany in EUR; the book reports in EUR.
# USD is worth 0.90 EUR from 2 January, 0.80 from 3 June.
RATES = [
    {"date": "2024-01-02", "currency": "USD", "rate": 0.90},
    {"date": "2024-06-03", "currency": "USD", "rate": 0.80},
]


@pytest.fixture
def ledger():  # type: ignore[no-untyped-def]
    return make_ledger(
        clients=[
            {"client_id": "US1", "country": "US", "onboarded_on": "2023-12-01"},
            {"client_id": "DE1", "country": "DE", "onboarded_on": "2023-12-01"},
        ],
        invoices=[
            # USD 1,000 paid in full on 20 February; USD 1,000 open, USD 400 of it paid in May
            {
                "invoice_id": "U1",
                "client_id": "US1",
                "issued_on": "2024-01-10",
                "due_on": "2024-02-09",
                "amount": 1000.0,
                "currency": "USD",
                "paid_on": "2024-02-20",
                "paid_amount": 1000.0,
            },
            {
                "invoice_id": "U2",
                "client_id": "US1",
                "issued_on": "2024-03-15",
                "due_on": "2024-04-14",
                "amount": 1000.0,
                "currency": "USD",
                "paid_amount": 400.0,
            },
            {
                "invoice_id": "E1",
                "client_id": "DE1",
                "issued_on": "2024-03-15",
                "due_on": "2024-04-14",
                "amount": 500.0,
            },
        ],
        payments=[{"invoice_id": "U2", "paid_on": "2024-05-10", "amount": 400.0}],
        fx_rates=RATES,
        reporting_currency="EUR",
        extracted_on="2024-06-30",
    )


def test_client_features_convert_at_the_rate_known_on_as_of(ledger) -> None:  # type: ignore[no-untyped-def]
    f = build_client_features(
        ledger, as_of_dates=["2024-04-01", "2024-06-03", "2024-07-01"]
    ).set_index(["as_of", "client_id"])
    # 1 April: U2 open, USD 1,000 at 0.90
    assert f.loc[(pd.Timestamp("2024-04-01"), "US1"), "open_balance"] == pytest.approx(900.0)
    # 3 June: the rate dated that day is known that day: USD 600 left at 0.80
    assert f.loc[(pd.Timestamp("2024-06-03"), "US1"), "open_balance"] == pytest.approx(480.0)
    june = f.loc[(pd.Timestamp("2024-07-01"), "US1")]
    assert june["open_balance"] == pytest.approx(480.0)
    assert june["invoice_amount_365"] == pytest.approx(2000 * 0.80)  # both at today's rate
    assert f.loc[(pd.Timestamp("2024-07-01"), "DE1"), "open_balance"] == pytest.approx(500.0)


def test_an_invoice_at_issue_converts_at_its_issue_dates_rate(ledger) -> None:  # type: ignore[no-untyped-def]
    f = build_invoice_features(ledger).set_index("invoice_id")
    assert f.loc["U2", "invoice_amount"] == pytest.approx(900.0)
    assert f.loc["U2", "invoice_amount_365"] == pytest.approx(900.0)  # U1 at 15 March's rate
    assert f.loc["U2", "invoice_currency"] == "USD"


def test_open_invoices_keep_their_currency_beside_the_converted_amount(ledger) -> None:  # type: ignore[no-untyped-def]
    inv = open_invoices(ledger, pd.Timestamp("2024-07-01")).set_index("invoice_id")
    u2 = inv.loc["U2"]
    assert (u2["currency"], u2["outstanding_in_currency"]) == ("USD", 600.0)
    assert u2["fx_rate"] == 0.80 and u2["outstanding"] == pytest.approx(480.0)
    assert u2["fx_change"] == pytest.approx(600 * (0.80 - 0.90))  # lost 60 EUR since issue
    assert inv.loc["E1", ["outstanding", "fx_change"]].tolist() == [500.0, 0.0]


def test_dso_positions_convert_at_each_month_ends_rate(ledger) -> None:  # type: ignore[no-untyped-def]
    p = monthly_positions(ledger, pd.Timestamp("2024-07-01"), months=4)
    us = p[p["client_id"] == "US1"].set_index("month")
    assert us.loc[pd.Timestamp("2024-03-31"), "sales"] == pytest.approx(900.0)
    assert us.loc[pd.Timestamp("2024-04-30"), "receivables"] == pytest.approx(900.0)
    assert us.loc[pd.Timestamp("2024-05-31"), "receivables"] == pytest.approx(600 * 0.90)
    assert us.loc[pd.Timestamp("2024-06-30"), "receivables"] == pytest.approx(600 * 0.80)
