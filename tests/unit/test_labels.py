"""Labels: default within 12 months and late payment, with censoring."""

from __future__ import annotations

import pandas as pd

from features.labels import default_dates, label_default, label_late
from tests.ledgers import make_ledger


def ledger_with_default():
    return make_ledger(
        clients=[{"client_id": "C1"}, {"client_id": "C2"}, {"client_id": "C3"}],
        invoices=[
            # C1: unpaid, reaches 90 days past due on 2024-05-01
            {
                "invoice_id": "A",
                "client_id": "C1",
                "issued_on": "2024-01-01",
                "due_on": "2024-02-01",
                "amount": 10,
                "paid_amount": 0,
            },
            # C2: paid 20 days late, no default
            {
                "invoice_id": "B",
                "client_id": "C2",
                "issued_on": "2024-01-01",
                "due_on": "2024-02-01",
                "amount": 10,
                "paid_on": "2024-02-21",
                "paid_amount": 10,
            },
            # C3: written off
            {
                "invoice_id": "C",
                "client_id": "C3",
                "issued_on": "2024-01-01",
                "due_on": "2024-02-01",
                "amount": 10,
                "paid_amount": 0,
                "written_off_on": "2024-03-15",
            },
            # C2: open, not yet due at extraction
            {
                "invoice_id": "D",
                "client_id": "C2",
                "issued_on": "2025-12-20",
                "due_on": "2026-01-19",
                "amount": 10,
                "paid_amount": 0,
            },
        ],
        insolvencies=[{"client_id": "C3", "declared_on": "2024-06-01"}],
    )


def test_the_first_default_event_is_90_dpd_write_off_or_insolvency() -> None:
    first = default_dates(ledger_with_default())
    assert first.to_dict() == {"C1": pd.Timestamp("2024-05-01"), "C3": pd.Timestamp("2024-03-15")}


def test_default_12m_looks_forward_and_flags_censoring_and_prior_default() -> None:
    snaps = pd.DataFrame(
        {
            "client_id": ["C1", "C1", "C2", "C3", "C1"],
            "as_of": pd.to_datetime(
                ["2023-06-30", "2024-06-30", "2024-01-31", "2024-01-31", "2025-06-30"]
            ),
        }
    )
    y = label_default(ledger_with_default(), snaps)
    assert y["default_12m"].tolist() == [1, 0, 0, 1, 0]
    assert y["defaulted_before"].tolist() == [False, True, False, False, True]
    assert y["censored"].tolist() == [False, False, False, False, True]


def test_late_means_paid_after_due_plus_grace_or_still_unpaid() -> None:
    ledger = ledger_with_default()
    y = label_late(ledger).set_index("invoice_id")
    assert y.loc[["A", "B", "C"], "late"].tolist() == [1, 1, 1]
    assert bool(y.loc["D", "censored"]) and y.loc["D", "late"] == 0
    graced = label_late(ledger, grace_days=30).set_index("invoice_id")
    assert graced.loc["B", "late"] == 0  # 20 days late is within 30 days of grace


def test_an_event_on_the_as_of_day_is_in_the_window_and_not_yet_known() -> None:
    """Nothing dated on or after `as_of` is known then: an event that day is a future default,
    and the day after it the client is in default."""
    ledger = ledger_with_default()
    day = pd.Timestamp("2024-03-15")  # C3's write-off
    snaps = pd.DataFrame({"client_id": ["C3", "C3"], "as_of": [day, day + pd.Timedelta(days=1)]})
    y = label_default(ledger, snaps)
    assert y["default_12m"].iloc[0] == 1  # (the row after is in default: no target)
    assert y["defaulted_before"].tolist() == [False, True]


def test_a_default_is_cured_a_year_after_its_cause_and_a_new_event_counts_again() -> None:
    ledger = make_ledger(
        clients=[{"client_id": "C1"}],
        invoices=[
            # paid 120 days late in 2023: in default from 2023-05-02 until a year after 2023-06-01
            {
                "invoice_id": "A",
                "client_id": "C1",
                "issued_on": "2023-01-01",
                "due_on": "2023-02-01",
                "amount": 10,
                "paid_on": "2023-06-01",
                "paid_amount": 10,
            },
            # unpaid since 2025-01-01: a new event on 2025-04-01
            {
                "invoice_id": "B",
                "client_id": "C1",
                "issued_on": "2024-12-01",
                "due_on": "2025-01-01",
                "amount": 10,
                "paid_amount": 0,
            },
        ],
    )
    snaps = pd.DataFrame(
        {
            "client_id": ["C1"] * 3,
            "as_of": pd.to_datetime(["2023-12-31", "2024-06-30", "2024-07-31"]),
        }
    )
    y = label_default(ledger, snaps)
    assert y["defaulted_before"].tolist() == [True, False, False]  # cured from 2024-06-01
    assert y["default_12m"].tolist() == [0, 1, 1]  # the new event, 2025-04-01
