"""Credit insurance: the policy file, the insurer's limit in force, each invoice's deadlines and
cover, a client's insured exposure and net expected loss, the warning on a cut limit."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring.early_warnings import early_warnings
from scoring.insurance import (
    InsurancePolicy,
    client_insurance,
    insurance_worklist,
    insurer_limits_at,
    invoice_cover,
)
from scoring.policy import CreditPolicy, PolicyError
from scoring.receivables import open_invoices, with_stage
from tests.ledgers import make_ledger

POLICY = InsurancePolicy.load()
AS_OF = pd.Timestamp("2026-01-01")


def _ledger():  # type: ignore[no-untyped-def]
    """Client A (insured, USD limit reduced in December), B (limit cancelled), C (no limit)."""
    clients = [
        {"client_id": c, "country": "DE", "onboarded_on": "2024-01-01"} for c in ("A", "B", "C")
    ]

    def inv(i: str, c: str, issued: str, due: str, amount: float) -> dict[str, object]:
        return {
            "invoice_id": i,
            "client_id": c,
            "issued_on": issued,
            "due_on": due,
            "amount": amount,
        }

    invoices = [
        inv("A1", "A", "2025-12-01", "2026-01-30", 4000.0),  # not due: covered
        inv("A2", "A", "2025-10-01", "2025-12-20", 3000.0),  # overdue 12 days: covered
        inv("A3", "A", "2025-09-01", "2025-11-10", 2000.0),  # deadline 9 Jan: notify soon
        inv("A4", "A", "2025-08-01", "2025-10-15", 1500.0),  # deadline 14 Dec passed: at risk
        inv("A5", "A", "2025-05-01", "2025-07-10", 1000.0),  # notified; claim from 7 Dec: due
        inv("A6", "A", "2025-06-01", "2025-11-25", 800.0),  # 177-day terms: outside cover
        inv("A7", "A", "2025-05-01", "2025-07-01", 700.0),  # claim filed
        inv("B1", "B", "2025-11-01", "2025-12-01", 5000.0),  # limit cancelled: not insured
        inv("C1", "C", "2025-11-01", "2025-12-01", 5000.0),  # no limit: not insured
    ]
    limits = [
        {
            "client_id": "A",
            "limit": 20000,
            "currency": "USD",
            "decided_on": "2025-01-10",
            "status": "granted",
        },
        {
            "client_id": "A",
            "limit": 10000,
            "currency": "USD",
            "decided_on": "2025-12-15",
            "status": "reduced",
        },
        {
            "client_id": "A",
            "limit": 90000,
            "currency": "USD",
            "decided_on": "2026-02-01",
            "status": "granted",
        },
        {
            "client_id": "B",
            "limit": 30000,
            "currency": "EUR",
            "decided_on": "2025-01-10",
            "status": "granted",
        },
        {
            "client_id": "B",
            "limit": 0,
            "currency": "EUR",
            "decided_on": "2025-12-20",
            "status": "cancelled",
        },
    ]
    actions = [
        {"client_id": "A", "invoice_id": "A5", "action": "insurer_notified", "on": "2025-08-01"},
        {"client_id": "A", "invoice_id": "A7", "action": "insurer_notified", "on": "2025-08-01"},
        {"client_id": "A", "invoice_id": "A7", "action": "claim_filed", "on": "2025-12-01"},
        {"client_id": "A", "invoice_id": "A3", "action": "insurer_notified", "on": "2026-01-01"},
    ]
    return make_ledger(
        clients=clients,
        invoices=invoices,
        insurer_limits=limits,
        actions=actions,
        fx_rates=[{"date": "2025-01-02", "currency": "USD", "rate": 0.9}],
        reporting_currency="EUR",
        extracted_on="2026-02-28",
    )


def test_the_insurer_limit_in_force_is_the_latest_decision_before_as_of() -> None:
    ledger = _ledger()
    limits = insurer_limits_at(
        ledger.insurer_limits, pd.Series(["A", "B", "C"]), AS_OF, ledger.rates
    )
    # A: the December reduction (February's increase is not known yet), in EUR at 0.9
    assert limits.limit["A"] == pytest.approx(9000.0) and limits.status["A"] == "reduced"
    assert limits.limit["B"] == 0.0 and limits.status["B"] == "cancelled"
    assert np.isnan(limits.limit["C"]) and limits.status["C"] == ""


def _covered():  # type: ignore[no-untyped-def]
    ledger = _ledger()
    inv = with_stage(open_invoices(ledger, AS_OF), AS_OF)
    limits = insurer_limits_at(
        ledger.insurer_limits, pd.Series(["A", "B", "C"]), AS_OF, ledger.rates
    )
    cover = invoice_cover(
        inv,
        POLICY,
        (inv["client_id"].map(limits.limit).fillna(0) > 0).to_numpy(),
        np.full(len(inv), np.datetime64("NaT"), dtype="datetime64[us]"),
        ledger.actions,
        AS_OF,
    )
    inv = inv.assign(
        insurance_cover=cover["cover"].to_numpy(),
        insurer_notify_by=cover["notify_by"].to_numpy(),
        insurer_claim_from=cover["claim_from"].to_numpy(),
    )
    return ledger, inv, limits


def test_each_invoice_has_its_deadlines_and_cover() -> None:
    _, inv, _ = _covered()
    got = dict(zip(inv["invoice_id"], inv["insurance_cover"], strict=True))
    assert got == {
        "A1": "covered",
        "A2": "covered",
        "A3": "notify soon",  # notified on as_of itself: not known before it
        "A4": "cover at risk",
        "A5": "claim due",
        "A6": "outside cover",
        "A7": "claim filed",
        "B1": "not insured",
        "C1": "not insured",
    }
    a3 = inv.set_index("invoice_id").loc["A3"]
    assert a3["insurer_notify_by"] == pd.Timestamp("2026-01-09")  # due + 60 days
    assert a3["insurer_claim_from"] == pd.Timestamp("2026-04-09")  # due + 150 days


def test_a_client_has_insured_and_uninsured_exposure_and_a_net_expected_loss() -> None:
    _, inv, limits = _covered()
    balance = inv.groupby("client_id")["outstanding"].sum()
    clients = pd.DataFrame(
        {
            "client_id": ["A", "B", "C"],
            "open_balance": balance.reindex(["A", "B", "C"]).to_numpy(),
            "pd_12m": [0.05, 0.2, 0.02],
            "expected_loss": [0.05 * 0.45 * 13000, 0.2 * 0.45 * 5000, 0.02 * 0.45 * 5000],
            "grade": [3, 8, 2],
            "recommended_limit": [30000.0, 5000.0, 20000.0],
        }
    )
    out = client_insurance(
        clients, inv.rename(columns={"insurance_cover": "cover"}), limits, POLICY, 0.45
    ).set_index("client_id")
    # A owes 4,000 + 3,000 + 2,000 + 1,000 + 700 on insured invoices: 10,700, capped at the
    # insurer's 9,000; the at-risk and outside-cover invoices are uninsured
    assert out.at["A", "insured_exposure"] == pytest.approx(9000.0)
    assert out.at["A", "uninsured_exposure"] == pytest.approx(13000.0 - 9000.0)
    assert out.at["A", "expected_loss_net"] == pytest.approx(0.05 * 0.45 * (13000 - 0.9 * 9000))
    assert out.at["A", "insurance_note"] == "exposure above cover"
    assert (
        out.at["B", "insured_exposure"] == 0.0
        and out.at["B", "insurance_note"] == "exposure above cover"
    )
    assert out.at["C", "insurance_note"] == "request an insurer limit"


def test_the_worklist_lists_the_insurers_deadlines() -> None:
    _, inv, _ = _covered()
    rows = insurance_worklist(inv.assign(pd_12m=0.05), AS_OF, POLICY)
    assert rows["client_id"].tolist() == ["A"] and rows["queue"].tolist() == ["insurer"]
    action = rows["action"].iloc[0]
    assert "cover at risk: 1 invoice(s)" in action and "file the claim" in action
    assert "notify Example Trade Credit Insurance of 1 overdue invoice(s) by 2026-01-09" in action


def test_a_cut_insurer_limit_is_an_early_warning() -> None:
    base = {
        "client_id": ["A", "B"],
        "status": ["active", "active"],
        "status_reason": ["", ""],
        "grade": [3, 3],
        "decision_pd": [0.02, 0.02],
        "max_days_past_due": [0, 0],
        "overdue_balance": [0.0, 0.0],
        "current_limit": [10000.0, 10000.0],
        "recommended_limit": [10000.0, 10000.0],
        "over_limit_amount": [0.0, 0.0],
        "statement_age_days": [400.0, 400.0],
        "equity": [1.0, 1.0],
        "revenue_growth": [0.0, 0.0],
        "current_ratio": [2.0, 2.0],
        "open_balance": [5000.0, 5000.0],
        "expected_loss": [10.0, 10.0],
        "reason_1": ["", ""],
        "name": ["A", "B"],
    }
    then = pd.DataFrame(
        {**base, "as_of": pd.Timestamp("2025-12-01"), "insurer_limit": [20000.0, 8000.0]}
    )
    now = pd.DataFrame({**base, "as_of": AS_OF, "insurer_limit": [0.0, 8000.0]})
    found = early_warnings(now, then, CreditPolicy.load().warnings)
    assert [w["client_id"] for w in found] == ["A"]
    assert "the insurer cancelled its limit of 20,000" in found[0]["flags"][0]
    assert (
        early_warnings(now, then.drop(columns=["insurer_limit"]), CreditPolicy.load().warnings)
        == []
    )


def _raw() -> dict[str, Any]:
    return copy.deepcopy(POLICY.to_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"indemnity": 1.5}, r"indemnity must be between 0 and 1"),
        ({"notify_overdue_days": 10.5}, r"notify_overdue_days must be a whole number"),
        ({"colour": "red"}, r"colour is not a known key"),
        ({"insurer": ""}, r"insurer must be the insurer's name"),
        ({"excluded_buyers": "C1"}, r"excluded_buyers must be a list"),
    ],
)
def test_a_bad_insurance_policy_is_refused_naming_the_key(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        InsurancePolicy.from_dict({**_raw(), **change}, "insurance_policy.yaml")
    missing = _raw()
    del missing["waiting_period_days"]
    with pytest.raises(PolicyError, match="waiting_period_days is missing"):
        InsurancePolicy.from_dict(missing, "insurance_policy.yaml")
