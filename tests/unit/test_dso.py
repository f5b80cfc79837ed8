"""DSO, countback DSO, best possible DSO and average days delinquent on a hand-made ledger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.dso import dso_measures, month_ends_before, monthly_positions
from tests.ledgers import make_ledger

AS_OF = pd.Timestamp("2025-04-01")


def _ledger(**extra: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    """A: one invoice of 100 a month from January (January's paid on 20 February, February's
    open and overdue at the end of March, March's open with 40 paid on it); B: one invoice of
    200 in March, open and not yet due."""
    invoices = [
        {
            "invoice_id": "A1",
            "client_id": "A",
            "issued_on": "2025-01-15",
            "due_on": "2025-02-14",
            "amount": 100.0,
            "paid_on": "2025-02-20",
            "paid_amount": 100.0,
        },
        {
            "invoice_id": "A2",
            "client_id": "A",
            "issued_on": "2025-02-10",
            "due_on": "2025-03-12",
            "amount": 100.0,
        },
        {
            "invoice_id": "A3",
            "client_id": "A",
            "issued_on": "2025-03-05",
            "due_on": "2025-04-04",
            "amount": 100.0,
            "paid_amount": 40.0,
        },
        {
            "invoice_id": "B1",
            "client_id": "B",
            "issued_on": "2025-03-20",
            "due_on": "2025-04-19",
            "amount": 200.0,
        },
        *extra.get("invoices", []),
    ]
    return make_ledger(
        clients=[{"client_id": "A"}, {"client_id": "B"}],
        invoices=invoices,
        payments=[
            {"invoice_id": "A3", "paid_on": "2025-03-20", "amount": 40.0},
            *extra.get("payments", []),
        ],
    )


def _at(frame: pd.DataFrame, month: str, **keys: str) -> pd.Series:
    rows = frame[frame["month"] == pd.Timestamp(month)]
    for column, value in keys.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1
    return rows.iloc[0]


def test_month_ends_are_the_complete_months_before_as_of() -> None:
    assert list(month_ends_before(AS_OF, 3).date.astype(str)) == [
        "2025-01-31",
        "2025-02-28",
        "2025-03-31",
    ]
    # a day inside a month: that month is not complete yet
    assert month_ends_before(pd.Timestamp("2025-04-15"), 1)[0] == pd.Timestamp("2025-03-31")


def test_positions_are_sales_receivables_and_current_at_each_month_end() -> None:
    positions = monthly_positions(_ledger(), AS_OF)
    a = _at(positions, "2025-03-31", client_id="A")
    # February's 100 (overdue since 12 March) and March's 100 less the 40 paid (due 4 April)
    assert (a["sales"], a["receivables"], a["current"]) == (100.0, 160.0, 60.0)
    b = _at(positions, "2025-03-31", client_id="B")
    assert (b["sales"], b["receivables"], b["current"]) == (200.0, 200.0, 200.0)
    a_feb = _at(positions, "2025-02-28", client_id="A")
    assert (a_feb["sales"], a_feb["receivables"], a_feb["current"]) == (100.0, 100.0, 100.0)


def test_portfolio_measures_by_hand() -> None:
    measures = dso_measures(monthly_positions(_ledger(), AS_OF))
    march = _at(measures, "2025-03-31")
    # receivables 360, current 260, sales January to March 100 + 100 + 300 over 31 + 28 + 31 days
    assert march["dso"] == pytest.approx(360 / 500 * 90)  # 64.8
    assert march["best_possible_dso"] == pytest.approx(260 / 500 * 90)  # 46.8
    assert march["average_days_delinquent"] == pytest.approx(64.8 - 46.8)
    # countback: March's 300 used whole (31 days), 60 of February's 100 (28 x 0.6 = 16.8 days)
    assert march["countback_dso"] == pytest.approx(31 + 16.8)
    february = _at(measures, "2025-02-28")
    # receivables 100 (all current) against December 0 + January 100 + February 100, 90 days
    assert february["dso"] == pytest.approx(45.0)
    assert february["average_days_delinquent"] == pytest.approx(0.0)
    assert february["countback_dso"] == pytest.approx(28.0)


def test_client_measures_by_hand() -> None:
    measures = dso_measures(monthly_positions(_ledger(), AS_OF), by=["client_id"])
    a = _at(measures, "2025-03-31", client_id="A")
    assert a["dso"] == pytest.approx(160 / 300 * 90)  # 48
    assert a["best_possible_dso"] == pytest.approx(60 / 300 * 90)  # 18
    assert a["average_days_delinquent"] == pytest.approx(30.0)
    assert a["countback_dso"] == pytest.approx(31 + 16.8)
    b = _at(measures, "2025-03-31", client_id="B")
    assert (b["dso"], b["best_possible_dso"], b["countback_dso"]) == pytest.approx((90, 90, 31))
    # no sales in the three months to January for B: undefined, not zero
    assert np.isnan(_at(measures, "2025-01-31", client_id="B")["dso"])


def test_countback_stops_where_the_history_ends() -> None:
    """Receivables older than the months kept: the days counted so far, a lower bound."""
    old = {
        "invoice_id": "B0",
        "client_id": "B",
        "issued_on": "2024-06-01",
        "due_on": "2024-07-01",
        "amount": 500.0,
    }
    measures = dso_measures(
        monthly_positions(_ledger(invoices=[old]), AS_OF, months=3), ["client_id"]
    )
    b = _at(measures, "2025-03-31", client_id="B")
    assert b["receivables"] == 700.0
    assert b["countback_dso"] == pytest.approx(31 + 28 + 31)


def test_nothing_on_or_after_as_of_moves_the_figures() -> None:
    """Point in time: an invoice issued, a payment made or an invoice paid on `as_of` or later
    changes no month before it."""
    before = monthly_positions(_ledger(), AS_OF)
    later = _ledger(
        invoices=[
            {
                "invoice_id": "B2",
                "client_id": "B",
                "issued_on": "2025-04-01",
                "due_on": "2025-05-01",
                "amount": 999.0,
            }
        ],
    )
    later.invoices.loc[later.invoices["invoice_id"] == "A2", ["paid_on", "paid_amount"]] = [
        pd.Timestamp("2025-04-01"),
        100.0,
    ]
    pd.testing.assert_frame_equal(monthly_positions(later, AS_OF), before)
