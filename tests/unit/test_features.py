"""Point-in-time features: hand-computed values per family, catalog, online/batch and partition identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import catalog_frame, feature_specs
from features.contract import Ledger
from features.payment_behaviour import build_client_features, build_invoice_features
from features.pipeline import build_feature_table, client_ledger, client_ledgers
from tests.ledgers import make_ledger

AS_OF = "2024-05-01"


@pytest.fixture(scope="module")
def hand() -> Ledger:
    return make_ledger(
        clients=[
            {"client_id": "C1", "external_rating": "BBB"},
            {"client_id": "C2", "onboarded_on": "2024-06-01"},
        ],
        invoices=[
            # paid 10 days late, disputed
            {
                "invoice_id": "I1",
                "client_id": "C1",
                "issued_on": "2024-01-01",
                "due_on": "2024-01-31",
                "amount": 100,
                "paid_on": "2024-02-10",
                "paid_amount": 100,
                "disputed": True,
            },
            # paid 6 days early
            {
                "invoice_id": "I2",
                "client_id": "C1",
                "issued_on": "2024-02-01",
                "due_on": "2024-03-02",
                "amount": 300,
                "paid_on": "2024-02-25",
                "paid_amount": 300,
            },
            # open, 50 paid on account, 31 days past due on the as_of date
            {
                "invoice_id": "I3",
                "client_id": "C1",
                "issued_on": "2024-03-01",
                "due_on": "2024-03-31",
                "amount": 200,
                "paid_amount": 50,
            },
            # open, not yet due
            {
                "invoice_id": "I4",
                "client_id": "C1",
                "issued_on": "2024-04-15",
                "due_on": "2024-05-15",
                "amount": 400,
                "paid_amount": 0,
            },
            # paid after the as_of date: still open then
            {
                "invoice_id": "I5",
                "client_id": "C1",
                "issued_on": "2024-04-20",
                "due_on": "2024-05-20",
                "amount": 50,
                "paid_on": "2024-05-05",
                "paid_amount": 50,
                "disputed": True,
            },
        ],
        payments=[{"invoice_id": "I3", "paid_on": "2024-04-10", "amount": 50}],
        financials=[
            {
                "client_id": "C1",
                "period_end": "2022-12-31",
                "published_on": "2023-04-01",
                "revenue": 800,
                "total_assets": 700,
                "total_liabilities": 400,
                "current_assets": 250,
                "current_liabilities": 200,
                "cash": 40,
                "operating_cash_flow": 20,
                "equity": 300,
            },
            {
                "client_id": "C1",
                "period_end": "2023-12-31",
                "published_on": "2024-04-15",
                "revenue": 1000,
                "total_assets": 800,
                "total_liabilities": 500,
                "current_assets": 300,
                "current_liabilities": 200,
                "cash": 50,
                "operating_cash_flow": -10,
                "equity": 300,
            },
            # published on the as_of date itself: not yet known
            {
                "client_id": "C1",
                "period_end": "2024-03-31",
                "published_on": "2024-05-01",
                "revenue": 5,
                "total_assets": 5,
                "total_liabilities": 5,
                "current_assets": 1,
                "current_liabilities": 1,
                "cash": 1,
                "operating_cash_flow": 1,
                "equity": 0,
            },
        ],
    )


@pytest.fixture(scope="module")
def row(hand: Ledger) -> pd.Series:
    x = build_client_features(hand, as_of_dates=[AS_OF])
    assert x["client_id"].tolist() == ["C1"]  # C2 is onboarded after the as_of date
    return x.iloc[0]


def test_payment_behaviour_by_hand(row: pd.Series) -> None:
    assert row["paid_count_90"] == 2 and row["paid_count_30"] == 0
    assert np.isnan(row["late_share_30"])  # no paid invoice: missing, never a made-up zero
    assert row["late_share_90"] == 0.5
    assert row["late30_share_90"] == 0.0
    assert row["dpd_mean_90"] == 5.0 and row["dpd_max_90"] == 10.0 and row["dpd_std_90"] == 5.0
    assert row["dpd_last_90"] == 0.0 and row["dbd_last_90"] == 6.0  # I2 was paid last
    assert row["dbd_mean_90"] == 3.0 and row["dbd_max_90"] == 6.0
    assert row["dbt_weighted_90"] == pytest.approx((100 * 10 + 300 * 0) / 400)
    assert row["paydex_90"] == pytest.approx(82.0)  # weighted -2 days: between 90 (-10) and 80 (0)
    assert row["dispute_rate_90"] == 0.5  # I5's dispute is not known before it is settled
    assert row["short_paid_share_90"] == 0.0 and row["instalment_share_90"] == 0.0


def test_trend_by_hand(row: pd.Series) -> None:
    assert np.isnan(row["late_share_trend_90"])  # nothing was paid in the 90 days before
    assert np.isnan(row["dpd_slope_180"])  # fewer than three payments


def test_exposure_by_hand(row: pd.Series) -> None:
    assert row["open_count"] == 3
    assert row["open_balance"] == 150 + 400 + 50
    assert row["overdue_balance"] == 150
    assert row["aging_current"] == 450 and row["aging_31_60"] == 150 and row["aging_90p"] == 0
    assert row["aging_current_share"] == 0.75
    assert row["oldest_open_age_days"] == 61
    assert row["max_open_dpd"] == 31
    months = 121 / 30.44
    assert row["open_to_monthly_volume"] == pytest.approx(600 / (1050 / months))
    assert row["dso"] == pytest.approx(600 * 90 / 950)


def test_volume_and_relationship_by_hand(row: pd.Series) -> None:
    assert row["invoice_count_90"] == 4 and row["invoice_amount_90"] == 950
    assert row["invoice_count_365"] == 5 and row["invoice_amount_365"] == 1050
    assert row["days_since_first_invoice"] == 121
    assert row["days_since_last_invoice"] == 11
    assert row["days_since_last_payment"] == 21  # the instalment on I3
    assert row["paid_invoices_total"] == 2
    assert row["thin_file"] == 1.0
    assert row["tenure_days"] == (pd.Timestamp(AS_OF) - pd.Timestamp("2023-01-01")).days


def test_financials_use_the_latest_published_statement(row: pd.Series) -> None:
    assert row["leverage"] == pytest.approx(500 / 800)
    assert row["current_ratio"] == pytest.approx(1.5)
    assert row["cash_ratio"] == pytest.approx(0.25)
    assert row["ocf_margin"] == pytest.approx(-0.01)
    assert row["equity_ratio"] == pytest.approx(0.375)
    assert row["revenue_growth"] == pytest.approx(0.25)
    assert row["statement_staleness_days"] == 122


def test_standing_by_hand(row: pd.Series) -> None:
    """What the decision rules read: no default condition, the latest statement, usual terms."""
    assert np.isnan(row["insolvency_days"]) and np.isnan(row["writeoff_days"])
    assert np.isnan(row["dpd90_days"]) and row["paid_after_writeoff"] == 0
    assert row["equity"] == 300 and row["revenue"] == 1000
    assert row["statement_age_days"] == 16  # published 2024-04-15
    # invoices of the last year, amount-weighted: 30-day terms on every one but I2 (30 too)
    assert row["usual_terms_days"] == pytest.approx(30.0)


def test_active_months_count_at_most_twelve(hand: Ledger) -> None:
    """The last year in twelve periods: invoices in 13 calendar months read 12."""
    inv = hand.invoices
    monthly = pd.DataFrame(
        {
            "invoice_id": [f"M{m}" for m in range(13)],
            "client_id": "C1",
            "issued_on": pd.date_range("2023-05-02", periods=13, freq="MS") + pd.Timedelta(days=1),
        }
    ).assign(
        due_on=lambda f: f["issued_on"] + pd.Timedelta(days=30),
        amount=10.0,
        currency="EUR",
        paid_on=pd.NaT,
        paid_amount=0.0,
        disputed=False,
        written_off_on=pd.NaT,
    )
    ledger = hand.with_tables({"invoices": pd.concat([inv, monthly], ignore_index=True)})
    x = build_client_features(ledger, as_of_dates=["2024-05-31"])
    assert x["active_months_365"].iloc[0] == 12


def test_firmographics_by_hand(row: pd.Series) -> None:
    assert row["industry"] == "Retail" and row["country"] == "DE"
    assert row["company_age_years"] == pytest.approx(
        (pd.Timestamp(AS_OF) - pd.Timestamp("2010-05-01")).days / 365.25
    )
    assert row["log_registered_capital"] == pytest.approx(np.log1p(50_000))
    assert row["external_rating_score"] == 4  # BBB


def test_invoice_features_are_the_client_history_at_issue_plus_the_invoice(hand: Ledger) -> None:
    x = build_invoice_features(hand)
    assert x["invoice_id"].tolist() == ["I1", "I2", "I3", "I4", "I5"]
    i3 = x.set_index("invoice_id").loc["I3"]
    assert i3["as_of"] == pd.Timestamp("2024-03-01")
    assert i3["paid_count_90"] == 2  # I1 and I2 were paid before I3 was issued
    assert (
        i3["invoice_amount"] == 200
        and i3["invoice_terms_days"] == 30
        and i3["invoice_issue_month"] == 3
    )
    assert i3["invoice_amount_to_usual"] == pytest.approx(200 / 200)  # usual: (100 + 300) / 2
    i1 = x.set_index("invoice_id").loc["I1"]
    assert i1["paid_invoices_total"] == 0 and np.isnan(i1["invoice_amount_to_usual"])


def test_the_catalog_lists_exactly_the_built_columns(small_ledger: Ledger) -> None:
    x = build_client_features(small_ledger, as_of_dates=["2024-06-30"])
    assert list(x.columns[2:]) == [s.name for s in feature_specs("client")]
    inv = build_invoice_features(
        small_ledger, invoices=small_ledger.invoices["invoice_id"].head(50)
    )
    assert list(inv.columns[3:]) == [s.name for s in feature_specs("invoice")]
    catalog = catalog_frame(feature_specs("invoice"))
    assert catalog["name"].is_unique
    assert set(catalog["direction"]) <= {-1, 0, 1}


def test_one_clients_online_features_equal_its_batch_row(small_ledger: Ledger) -> None:
    batch = build_client_features(small_ledger, as_of_dates=["2024-09-30"]).set_index("client_id")
    for client_id in batch.index[::37]:
        online = build_client_features(
            client_ledger(small_ledger, [client_id]), as_of_dates=["2024-09-30"]
        )
        pd.testing.assert_series_equal(
            online.set_index("client_id").loc[client_id], batch.loc[client_id]
        )


def test_partitions_give_the_same_table(small_ledger: Ledger) -> None:
    dates = ["2024-03-31", "2024-09-30"]
    whole = build_feature_table(small_ledger, unit="client", as_of_dates=dates, partitions=1)
    parts = build_feature_table(small_ledger, unit="client", as_of_dates=dates, partitions=4)
    pd.testing.assert_frame_equal(whole, parts)


def test_thin_file_clients_are_scored_not_dropped(small_ledger: Ledger) -> None:
    x = build_client_features(small_ledger, as_of_dates=["2025-06-30"])
    onboarded = small_ledger.clients.set_index("client_id")["onboarded_on"]
    assert set(x["client_id"]) == set(onboarded[onboarded < "2025-06-30"].index)
    assert (x["thin_file"] == 1).sum() > 0


def test_splitting_by_client_in_one_pass_gives_each_groups_own_ledger(small_ledger: Ledger) -> None:
    ids = np.sort(small_ledger.clients["client_id"].to_numpy(dtype=object))
    # uneven groups, some clients in none, and a group whose ids are not in the ledger at all
    groups = [ids[5:9], ids[40:41], np.array(["NOBODY"], dtype=object), ids[100:160], ids[:3]]
    pieces = list(client_ledgers(small_ledger, groups))
    assert len(pieces) == len(groups)
    for group, piece in zip(groups, pieces, strict=True):
        expected = client_ledger(small_ledger, group)
        for name, table in expected.tables().items():
            pd.testing.assert_frame_equal(piece.table(name), table)
    assert len(pieces[1].invoices) and len(pieces[3].payments)
