"""The scoring core: exact reasons that add up to the raw score, identical online and batch numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import Ledger, LedgerValidationError
from features.payment_behaviour import build_client_features
from features.pipeline import client_ledger
from scoring.applicant import TradeReference, applicant_ledger, apply_trade_references
from scoring.limits import LimitPolicy
from scoring.scorer import Scorer
from serving.officer import WATERFALL_STEPS, waterfall
from serving.online import OnlineLedger
from training.train import TrainResult

AS_OF = "2025-03-31"


@pytest.fixture(scope="module")
def scorer(trained_models: dict[str, TrainResult]) -> Scorer:
    return Scorer(
        default=trained_models["default"].bundle,
        late=trained_models["late"].bundle,
        policy=LimitPolicy.load(),
        versions={"creditguard-default": "test", "creditguard-late": "test"},
    )


@pytest.fixture(scope="module")
def snapshot(small_ledger: Ledger) -> pd.DataFrame:
    return build_client_features(small_ledger, as_of_dates=[AS_OF])


def test_both_models_read_one_matrix_as_if_each_had_its_own(
    scorer: Scorer, snapshot: pd.DataFrame
) -> None:
    """`prepare` builds the client columns once; the late model reads them through its column
    map and gets the numbers of the matrix it would build alone, batch and single row."""
    for frame in (snapshot, snapshot.head(1)):
        rows = scorer.prepare(frame)
        alone = scorer.late.matrix(frame, scorer.typical_invoices(frame))
        np.testing.assert_array_equal(rows.x_late[:, rows.late_columns], alone)
        np.testing.assert_array_equal(rows.x_default, scorer.default.matrix(frame))
        np.testing.assert_array_equal(
            scorer.late.raw_score(rows.x_late, columns=rows.late_columns),
            scorer.late.booster.predict(alone, raw_score=True),
        )


def test_contributions_add_up_to_the_raw_score(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    x = scorer.default.matrix(snapshot)
    contrib = scorer.default.contributions(x)
    np.testing.assert_allclose(contrib.sum(axis=1), scorer.default.raw_score(x), atol=1e-9)


def test_contributions_match_shap_tree_explainer(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    import shap

    x = scorer.default.matrix(snapshot.head(25))
    explainer = shap.TreeExplainer(scorer.default.booster)
    ours = scorer.default.contributions(x)
    np.testing.assert_allclose(explainer.shap_values(x), ours[:, :-1], atol=1e-8)
    assert float(np.ravel(explainer.expected_value)[0]) == pytest.approx(ours[0, -1], abs=1e-8)


def test_the_waterfall_adds_up_to_the_raw_score_and_the_pd(
    scorer: Scorer, snapshot: pd.DataFrame
) -> None:
    """The officer page's waterfall: expected value plus every step is the raw score exactly, and
    the calibrator maps that raw score to the PD shown."""
    scored = scorer.score(snapshot.head(20), top=WATERFALL_STEPS)
    for row in scored.to_dict("records"):
        steps = waterfall(row)
        assert sum(s["value"] for s in steps) == pytest.approx(row["raw_score"], abs=1e-6)
        pd_ = scorer.default.probability(np.array([sum(s["value"] for s in steps)]))[0]
        assert pd_ == pytest.approx(row["pd_12m"], abs=1e-6)
        assert len(steps) <= 2 * WATERFALL_STEPS + 2


def test_the_score_document(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    requested = pd.Series(np.full(len(snapshot), 50_000.0))
    scored = scorer.score(snapshot, requested_limits=requested)
    assert scored["pd_12m"].between(0, 1).all() and scored["grade"].between(1, 10).all()
    assert scored["late_payment_probability"].between(0, 1).all()
    assert (scored["expected_loss"] >= 0).all() and (scored["recommended_limit"] >= 0).all()
    first = scored.iloc[0]
    assert first["limit_decision"]["decision"] in {"approve", "approve_in_part", "refuse", "refer"}
    risky = scored.sort_values("pd_12m").iloc[-1]
    assert risky["risk_reasons"] and all(r["contribution"] > 0 for r in risky["risk_reasons"])
    assert all(isinstance(r["text"], str) and r["text"] for r in risky["risk_reasons"])
    # reasons are ordered by contribution and the pieces add up with the expected value
    contribs = [r["contribution"] for r in risky["risk_reasons"]]
    assert contribs == sorted(contribs, reverse=True)


def test_online_and_batch_scores_are_identical(
    scorer: Scorer, small_ledger: Ledger, snapshot: pd.DataFrame
) -> None:
    batch = scorer.score(snapshot).set_index("client_id")
    for client_id in snapshot["client_id"].iloc[::45]:
        one = build_client_features(client_ledger(small_ledger, [client_id]), as_of_dates=[AS_OF])
        online = scorer.score(one).set_index("client_id").loc[client_id]
        assert online["pd_12m"] == batch.loc[client_id, "pd_12m"]
        assert online["risk_reasons"] == batch.loc[client_id, "risk_reasons"]
        assert online["recommended_limit"] == batch.loc[client_id, "recommended_limit"]


APPLICANT = {
    "name": "Nordlicht Logistik GmbH",
    "country": "DE",
    "industry": "wholesale",
    "registered_capital": 250_000.0,
    "founded_on": "2012-05-01",
}
STATEMENTS = [
    {
        "period_end": "2024-12-31",
        "revenue": 4.2e6,
        "total_assets": 3.1e6,
        "total_liabilities": 1.9e6,
        "current_assets": 1.4e6,
        "current_liabilities": 0.9e6,
        "cash": 0.3e6,
        "operating_cash_flow": 0.25e6,
        "equity": 1.2e6,
    }
]


def test_an_applicant_is_scored_as_a_thin_file_from_profile_and_financials(
    scorer: Scorer,
) -> None:
    day = pd.Timestamp(AS_OF)
    features = build_client_features(
        applicant_ledger(APPLICANT, STATEMENTS, day), as_of_dates=[day]
    )
    assert len(features) == 1 and features["thin_file"].iloc[0] == 1
    assert np.isfinite(features["log_revenue"].iloc[0])  # the statement is read
    doc = scorer.score(features, requested_limits=pd.Series([5e5])).iloc[0]
    assert 0 < doc["pd_12m"] < 1 and doc["thin_file"]
    assert doc["data_sufficiency"].startswith("thin file")
    # a new client starts capped: a large request is never approved in full
    assert doc["limit_decision"]["decision"] in {"approve_in_part", "refer", "refuse"}
    # contributions still add up, with every payment feature missing
    contrib = scorer.default.contributions(scorer.default.matrix(features))
    assert contrib.sum(axis=1)[0] == pytest.approx(doc["raw_score"], abs=1e-9)


def test_applicant_violations_name_the_field_and_row() -> None:
    bad = [{**STATEMENTS[0], "period_end": "2025-06-30", "published_on": "2025-03-01"}]
    with pytest.raises(LedgerValidationError) as err:
        applicant_ledger({**APPLICANT, "country": "UK"}, bad, pd.Timestamp(AS_OF))
    found = set(zip(err.value.violations["table"], err.value.violations["column"], strict=True))
    assert ("clients", "country") in found and ("financials", "published_on") in found


def test_an_adverse_trade_reference_turns_an_approval_into_a_referral() -> None:
    approved = {"decision": "approve", "approved_amount": 10_000.0, "rules": ["within"]}
    good = TradeReference("Acme", average_days_beyond_terms=3, max_days_beyond_terms=12)
    bad = TradeReference("Bolt", average_days_beyond_terms=20, max_days_beyond_terms=95)
    same, findings = apply_trade_references(approved, [good])
    assert same == approved and "Acme" in findings[0]
    referred, findings = apply_trade_references(approved, [good, bad])
    assert referred is not None and referred["decision"] == "refer"
    assert "adverse trade reference" in referred["rules"][-1] and "95 days" in findings[1]
    refused = {"decision": "refuse", "approved_amount": 0.0, "rules": []}
    assert apply_trade_references(refused, [bad])[0] == refused  # never upgrades a refusal


def test_the_services_default_day_rows_equal_the_online_path(small_ledger_dir: Path) -> None:
    """The service builds every client's features for the default day once (batch path) and
    serves requests from them: each row equals what the online path builds for that client."""
    ledger = OnlineLedger(small_ledger_dir)
    clients = sorted(ledger.clients)
    for client_id in clients[::37]:
        online = build_client_features(ledger.client(client_id), as_of_dates=[ledger.default_day])
        served = ledger.batch_features([client_id], ledger.default_day)
        pd.testing.assert_frame_equal(served, online)
    batch = ledger.batch_features(clients[:30], ledger.default_day)
    rebuilt = build_client_features(
        client_ledger(ledger.ledger, clients[:30]),
        as_of_dates=[ledger.default_day],
    )
    pd.testing.assert_frame_equal(batch, rebuilt)


def test_a_few_rows_make_the_same_matrix_as_a_large_frame(
    scorer: Scorer, snapshot: pd.DataFrame
) -> None:
    """A request's rows take a value-by-value path to the model matrix; batches take pandas'
    column path. Both give the same numbers, missing values, category codes and unseen levels."""
    frame = snapshot.head(40).copy()
    frame.loc[frame.index[1], "industry"] = "an industry never seen"
    frame.loc[frame.index[2], "industry"] = None
    for bundle, overrides in (
        (scorer.default, None),
        (scorer.late, scorer.typical_invoices(frame)),
    ):
        whole = bundle.matrix(frame, overrides)
        for start in (0, 1, 2, 3, 20):
            part = frame.iloc[start : start + 2]
            small = bundle.matrix(
                part, {k: v[start : start + 2] for k, v in (overrides or {}).items()}
            )
            np.testing.assert_array_equal(small, whole[start : start + 2])
