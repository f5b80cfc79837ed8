"""The decision layer without a model: client status, the decision PD and grade, early warnings,
the collections worklist and the wording of reasons, on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_specs
from features.payment_behaviour import build_client_features
from scoring.bundle import MasterScale
from scoring.collections import avoidable_loss, client_worklist, queue_of, rank_worklist
from scoring.early_warnings import early_warnings
from scoring.grades import decision_grade, decision_pd
from scoring.policy import CreditPolicy
from scoring.reasons import reason_text
from scoring.status import client_status
from tests.ledgers import make_ledger

POLICY = CreditPolicy.load()
SCALE = MasterScale.load()
CATALOG = {s.name: s for s in feature_specs("client")}


def _ledger():  # type: ignore[no-untyped-def]
    """Five clients, one of each standing on 2025-06-30."""
    inv = {"issued_on": "2025-01-10", "due_on": "2025-02-09", "amount": 1000.0}
    return make_ledger(
        clients=[
            {"client_id": "ACTIVE", "onboarded_on": "2020-01-01"},
            {"client_id": "LATE90", "onboarded_on": "2020-01-01"},
            {"client_id": "BUST", "onboarded_on": "2020-01-01"},
            {"client_id": "IDLE", "onboarded_on": "2020-01-01"},
            {"client_id": "FRESH", "onboarded_on": "2025-05-01"},
            {"client_id": "ODD", "onboarded_on": "2020-01-01"},
            {"client_id": "CURED", "onboarded_on": "2020-01-01"},
        ],
        invoices=[
            *[
                {
                    "invoice_id": f"A{m}",
                    "client_id": "ACTIVE",
                    "issued_on": f"2025-{m:02d}-01",
                    "due_on": f"2025-{m:02d}-28",
                    "amount": 500.0,
                    "paid_on": f"2025-{m:02d}-{20 if m == 6 else 25}",
                    "paid_amount": 500.0,
                }
                for m in range(1, 7)
            ],
            # more than 90 days past due on 2025-06-30 (due 2025-02-09: 141 days)
            {"invoice_id": "L1", "client_id": "LATE90", **inv, "paid_amount": 0.0},
            {"invoice_id": "B1", "client_id": "BUST", **inv, "paid_amount": 0.0},
            # no invoice since 2024-06: dormant after 180 days
            {
                "invoice_id": "I1",
                "client_id": "IDLE",
                "issued_on": "2024-06-01",
                "due_on": "2024-07-01",
                "amount": 800.0,
                "paid_on": "2024-06-25",
                "paid_amount": 800.0,
            },
            # written off, then a payment on it
            {
                "invoice_id": "O1",
                "client_id": "ODD",
                "issued_on": "2023-01-01",
                "due_on": "2023-02-01",
                "amount": 900.0,
                "paid_amount": 300.0,
                "written_off_on": "2023-09-01",
            },
            # paid 120 days late in 2023, nothing since: cured a year later
            {
                "invoice_id": "C1",
                "client_id": "CURED",
                "issued_on": "2023-01-01",
                "due_on": "2023-02-01",
                "amount": 900.0,
                "paid_on": "2023-06-01",
                "paid_amount": 900.0,
            },
            {
                "invoice_id": "C2",
                "client_id": "CURED",
                "issued_on": "2025-05-01",
                "due_on": "2025-06-01",
                "amount": 900.0,
                "paid_on": "2025-05-30",
                "paid_amount": 900.0,
            },
        ],
        payments=[{"invoice_id": "O1", "paid_on": "2024-02-01", "amount": 300.0}],
        insolvencies=[{"client_id": "BUST", "declared_on": "2025-04-15"}],
    )


def test_status_comes_first_and_says_why() -> None:
    features = build_client_features(_ledger(), as_of_dates=["2025-06-30"])
    status, reason = client_status(features, POLICY.status)
    got = dict(zip(features["client_id"], zip(status, reason, strict=True), strict=True))
    assert got["ACTIVE"] == ("active", "")
    assert got["LATE90"] == ("in_default", "an invoice is more than 90 days past due")
    assert got["BUST"] == ("in_default", "insolvency declared on 2025-04-15")
    assert got["IDLE"][0] == "dormant" and "no invoice for" in got["IDLE"][1]
    assert got["FRESH"][0] == "new"
    assert got["ODD"][0] == "undetermined" and "already written off" in got["ODD"][1]
    assert got["CURED"][0] != "in_default"  # the 90+ days ended in 2023-06: cured a year on
    a_year_earlier = build_client_features(_ledger(), as_of_dates=["2024-01-31"])
    early = dict(
        zip(
            a_year_earlier["client_id"],
            client_status(a_year_earlier, POLICY.status)[0],
            strict=True,
        )
    )
    assert early["CURED"] == "in_default"  # then, within the cure period


def test_the_decision_pd_smooths_by_the_days_between_runs_and_hard_events_move_it() -> None:
    g = POLICY.grades
    pit, prev = np.array([0.10, 0.10, 0.10, 0.01]), np.array([0.02, 0.02, 0.02, np.nan])
    days = np.array([30.44, 2 * 30.44, 30.44, np.nan])
    hard = np.array([False, False, True, False])
    out = decision_pd(pit, prev, days, hard, g)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    w = g.smoothing
    assert logit(out[0]) == pytest.approx(w * logit(0.10) + (1 - w) * logit(0.02))
    assert out[0] < out[1] < 0.10  # two months' news moves it further
    assert out[2] == pytest.approx(0.10)  # a hard event: never below the point-in-time PD
    assert out[3] == 0.01  # no history: the point-in-time PD


def test_a_grade_keeps_its_band_moves_one_notch_at_a_time_and_jumps_on_hard_events() -> None:
    g = POLICY.grades
    # grade 4 holds PDs in (1 %, 2 %]; 2.3 % is past the edge but within the hysteresis
    pd_ = np.array([0.023, 0.08, 0.08, 0.08])
    prev = np.array([4, 4, 4, 0])
    hard = np.array([False, False, True, False])
    grades = decision_grade(pd_, prev, hard, SCALE, g)
    assert grades.tolist() == [4, 5, int(SCALE.grade([0.08])[0]), int(SCALE.grade([0.08])[0])]


def _table(**columns: object) -> pd.DataFrame:
    base = {
        "client_id": ["A", "B", "C", "D", "E"],
        "as_of": pd.Timestamp("2025-06-30"),
        "status": "active",
        "status_reason": "",
        "grade": pd.array([3, 5, 4, 8, 2], dtype="Int64"),
        "decision_pd": [0.008, 0.03, 0.02, 0.15, 0.004],
        "max_days_past_due": [0.0, 10.0, 5.0, 20.0, 0.0],
        "overdue_balance": [0.0, 1000.0, 0.0, 5000.0, 0.0],
        "over_limit_amount": [0.0, 0.0, 0.0, 0.0, 0.0],
        "current_limit": [100_000.0] * 5,
        "recommended_limit": [100_000.0] * 5,
        "open_balance": [50_000.0] * 5,
        "expected_loss": [100.0] * 5,
        "equity": [1e6] * 5,
        "revenue_growth": [0.05] * 5,
        "current_ratio": [1.5] * 5,
        "statement_age_days": [200.0] * 5,
        "reason_1": "",
    }
    return pd.DataFrame({**base, **columns})


def test_early_warnings_are_material_with_a_severity_and_an_action() -> None:
    then = _table()
    now = _table(
        status=["in_default", "active", "active", "active", "active"],
        status_reason=["insolvency declared on 2025-06-10", "", "", "", ""],
        # B: newly 75 days past due on 40,000 (40 % of its limit)
        max_days_past_due=[0.0, 75.0, 75.0, 20.0, 0.0],
        overdue_balance=[0.0, 40_000.0, 500.0, 5000.0, 0.0],
        # D: decision PD 15 % -> 40 %, grade 8 -> 9
        decision_pd=[1.0, 0.05, 0.02, 0.40, 0.004],
        grade=pd.array([None, 5, 4, 9, 2], dtype="Int64"),
        # E: a new statement with negative equity, but a decision PD of 0.4 %: not material
        equity=[1e6, 1e6, 1e6, 1e6, -5e5],
        statement_age_days=[200.0, 200.0, 200.0, 200.0, 10.0],
    )
    found = {w["client_id"]: w for w in early_warnings(now, then, POLICY.warnings)}
    assert set(found) == {"A", "B", "D"}  # C's overdue amount is small, E's PD too low
    assert found["A"]["severity"] == "critical" and "stop deliveries" in found["A"]["action"]
    assert found["B"]["severity"] == "high" and found["B"]["rules"] == ["overdue"]
    assert "newly 75 days past due" in found["B"]["flags"][0]
    assert found["D"]["rules"] == ["rating"] and "grade 8 -> 9" in found["D"]["flags"][0]
    ordered = [w["client_id"] for w in early_warnings(now, then, POLICY.warnings)]
    assert ordered[0] == "A"  # the most severe first
    assert early_warnings(now, None, POLICY.warnings) == []


def test_a_client_has_one_worklist_row_per_queue_ranked_by_avoidable_loss() -> None:
    as_of = pd.Timestamp("2025-06-30")
    invoices = pd.DataFrame(
        {
            "invoice_id": ["X1", "X2", "X3", "Y1", "Z1"],
            "client_id": ["X", "X", "X", "Y", "Z"],
            "due_on": pd.to_datetime(
                ["2025-06-10", "2025-04-20", "2025-06-25", "2025-01-01", "2025-07-30"]
            ),
            "outstanding": [1000.0, 3000.0, 500.0, 8000.0, 700.0],
            "days_past_due": [20, 71, 5, 180, 0],
            "escalation_stage": np.array([1, 3, 1, 4, 0], dtype="int8"),
            "disputed": [False, False, True, False, False],
            "late_interest": [4.5, 60.0, 0.5, 310.0, 0.0],
            "late_compensation": [40.0, 40.0, 40.0, np.nan, 0.0],
        }
    )
    status = np.array(["active", "active", "active", "in_default", "active"], dtype=object)
    queue = queue_of(
        status, np.array([False, False, False, True, False]), invoices["disputed"].to_numpy()
    )
    assert queue.tolist() == ["dunning", "dunning", "dispute", "claim", "dunning"]
    work = invoices.assign(
        collection_queue=queue,
        client_stage=np.array([3, 3, 1, 4, 0], dtype="int8"),
        avoidable_loss=avoidable_loss(
            invoices["outstanding"].to_numpy(), np.array([3, 3, 1, 4, 0]), 0.45, POLICY
        ),
    )
    rows = rank_worklist(client_worklist(work, as_of, POLICY))
    assert set(zip(rows["client_id"], rows["queue"], strict=True)) == {
        ("X", "dunning"),
        ("X", "dispute"),
        ("Y", "claim"),
    }  # Z's invoice is not yet due
    x = rows.set_index(["client_id", "queue"]).loc[("X", "dunning")]
    assert x["stage"] == 3 and x["overdue_amount"] == 4000.0 and x["invoices"] == 2
    assert (x["late_interest"], x["late_compensation"]) == (64.5, 80.0)
    assert x["action"] == "send the final notice and stop deliveries"
    assert x["next_step"] == "start legal action or claim from the insurer"
    assert pd.Timestamp(x["next_step_on"]) == pd.Timestamp("2025-04-20") + pd.Timedelta(days=91)
    r = POLICY.collections.recovery_by_stage
    assert x["avoidable_loss"] == pytest.approx(4000.0 * 0.45 * (r[2] - r[3]))
    assert rows["avoidable_loss"].is_monotonic_decreasing
    assert rows["priority_rank"].tolist() == [1, 2, 3]


def test_reasons_say_the_value_what_is_typical_and_which_way() -> None:
    growth = CATALOG["revenue_growth"]
    assert (
        reason_text("revenue_growth", -0.2, growth, 0.05)
        == "Revenue growth against the previous statement: -20%, lower than the +5% typical of grades 1-3"
    )
    late = CATALOG["late30_share_90"]
    assert reason_text("late30_share_90", 0.34, late, 0.0) == (
        "34% of invoices paid in the last 90 days were paid more than 30 days late, higher than "
        "the 0% typical of grades 1-3"
    )
    assert reason_text("country", "TR", CATALOG["country"], "DE") == (
        "Country: TR, unlike grades 1-3 (mostly DE)"
    )
    assert reason_text("tenure_days", 100.0, CATALOG["tenure_days"], 2000.0).endswith(
        "shorter than the 2,000 days typical of grades 1-3"
    )
    assert reason_text("dso", None, CATALOG["dso"], 40.0).endswith("not available")
    assert reason_text("dso", 40.0, CATALOG["dso"], None) == (
        "Days sales outstanding (open balance over the last 90 days' invoicing): 40 days"
    )
    assert reason_text("months", 13.0, None) == "months: 13.0"  # a feature outside the catalog
