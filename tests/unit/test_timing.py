"""Payment timing: the settlement buckets, an open invoice's weeks by hand, the simulation that
gives the interval, and the timing label's censoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.labels import TIMING_NEVER, label_timing, timing_bucket
from scoring.timing import BUCKETS, WEEKS, bucket_labels, simulate, weekly_settlement
from tests.ledgers import make_ledger

AS_OF = pd.Timestamp("2025-06-02")


def _only(bucket: int, never: float = 0.0) -> np.ndarray:
    p = np.zeros((1, BUCKETS))
    p[0, bucket] = 1.0 - never
    p[0, TIMING_NEVER] += never
    return p


def test_buckets_and_their_words() -> None:
    days = np.array([-20.0, -7.0, -6.0, 0.0, 1.0, 7.0, 8.0, 30.0, 31.0, 180.0, 181.0, np.nan])
    assert timing_bucket(days).tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 5, 8, 9, 9]
    assert len(bucket_labels()) == BUCKETS
    assert (
        bucket_labels()[1] == "up to the due date" and bucket_labels()[-1] == "not within 180 days"
    )


def test_an_invoice_not_yet_due_settles_over_its_bucket_days() -> None:
    """Due in 10 days, surely paid 0-6 days before the due date: settlement days 4..10 after
    the forecast date, 3 of them in week 1 and 4 in week 2."""
    weeks = weekly_settlement(_only(1), pd.Series([AS_OF + pd.Timedelta(days=10)]), AS_OF)
    assert weeks[0, :2] == pytest.approx([3 / 7, 4 / 7])
    assert weeks[0].sum() == pytest.approx(1.0) and weeks[0, 2:].sum() == pytest.approx(0.0)


def test_an_overdue_invoice_loses_the_days_already_gone() -> None:
    """20 days late today, half 16-30 days late and half never: of 16..30 only 20..30 remain
    (11 of 15 days), so the chance it settles at all in the horizon is 0.5 x 11/15 over
    0.5 x 11/15 + 0.5."""
    weeks = weekly_settlement(
        _only(4, never=0.5), pd.Series([AS_OF - pd.Timedelta(days=20)]), AS_OF
    )
    kept = 0.5 * 11 / 15
    total = kept + 0.5
    assert weeks[0, 0] == pytest.approx(0.5 * 7 / 15 / total)
    assert weeks[0, 1] == pytest.approx(0.5 * 4 / 15 / total)
    assert weeks[0, WEEKS] == pytest.approx(0.5 / total)


def test_an_invoice_past_the_last_bucket_brings_nothing() -> None:
    weeks = weekly_settlement(_only(8), pd.Series([AS_OF - pd.Timedelta(days=200)]), AS_OF)
    assert weeks[0, :WEEKS].sum() == 0.0 and weeks[0, WEEKS] == pytest.approx(1.0)


def test_simulation_is_the_same_however_the_clients_are_split() -> None:
    """One draw per client and simulation, seeded by the client's id: chunks add up to the
    whole, and its mean approaches the expected receipts."""
    rng = np.random.default_rng(0)
    n = 60
    p = rng.dirichlet(np.ones(BUCKETS), size=n)
    due = pd.Series(AS_OF + pd.to_timedelta(rng.integers(-40, 60, n), unit="D"))
    weekly = weekly_settlement(p, due, AS_OF)
    outstanding = rng.uniform(100, 1000, n)
    clients = np.array([f"C{i % 13:03d}" for i in range(n)], dtype=object)
    whole = simulate(weekly, outstanding, clients, draws=400)
    first = np.isin(clients, clients[:5])
    parts = simulate(weekly[first], outstanding[first], clients[first], draws=400) + simulate(
        weekly[~first], outstanding[~first], clients[~first], draws=400
    )
    np.testing.assert_allclose(parts, whole)
    expected = (weekly[:, :WEEKS] * outstanding[:, None]).sum(axis=0)
    assert whole.sum(axis=1).mean() == pytest.approx(expected.sum(), rel=0.05)


def test_the_timing_label_waits_for_the_whole_window() -> None:
    """An invoice trains only once 180 days past its due date have gone by, even if it is
    already settled: keeping the early payers of recent months alone would bias the model."""
    ledger = make_ledger(
        clients=[{"client_id": "A"}],
        invoices=[
            {
                "invoice_id": "OLD",
                "client_id": "A",
                "issued_on": "2025-01-01",
                "due_on": "2025-01-31",
                "amount": 100.0,
                "paid_on": "2025-02-10",
                "paid_amount": 100.0,
            },
            {
                "invoice_id": "NEVER",
                "client_id": "A",
                "issued_on": "2025-01-01",
                "due_on": "2025-01-31",
                "amount": 100.0,
            },
            {
                "invoice_id": "RECENT",
                "client_id": "A",
                "issued_on": "2025-11-01",
                "due_on": "2025-12-01",
                "amount": 100.0,
                "paid_on": "2025-12-05",
                "paid_amount": 100.0,
            },
        ],
        extracted_on="2025-12-31",
    )
    got = label_timing(ledger).set_index("invoice_id")
    assert got.loc["OLD", "payment_bucket"] == 3  # 10 days late
    assert got.loc["NEVER", "payment_bucket"] == TIMING_NEVER
    assert not got.loc["OLD", "timing_censored"] and not got.loc["NEVER", "timing_censored"]
    assert got.loc["RECENT", "timing_censored"]
