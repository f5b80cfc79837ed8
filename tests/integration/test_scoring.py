"""The scoring core: exact reasons that add up to the raw score, identical online and batch numbers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import Ledger, LedgerValidationError
from features.io import load_ledger
from features.payment_behaviour import build_client_features
from features.pipeline import client_ledger
from scoring.applicant import TradeReference, applicant_ledger, apply_trade_references
from scoring.bundle import ModelBundle
from scoring.limits import LimitDecision
from scoring.policy import CreditPolicy
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
        policy=CreditPolicy.load(),
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
            scorer.late.raw_score(alone),
        )


def test_contributions_add_up_to_the_raw_score(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    x = scorer.default.matrix(snapshot)
    contrib = scorer.default.contributions(x)
    np.testing.assert_allclose(contrib.sum(axis=1), scorer.default.raw_score(x), atol=1e-9)


def test_contributions_match_shap_tree_explainer(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    import shap

    x = scorer.default.matrix(snapshot.head(25))
    explainer = shap.TreeExplainer(scorer.default.booster)
    ours = scorer.default.trees.contributions(x)  # the booster's part (a blend adds the card's)
    np.testing.assert_allclose(explainer.shap_values(x), ours[:, :-1], atol=1e-8)
    assert float(np.ravel(explainer.expected_value)[0]) == pytest.approx(ours[0, -1], abs=1e-8)


def test_the_waterfall_adds_up_to_the_raw_score_and_the_pd(
    scorer: Scorer, snapshot: pd.DataFrame
) -> None:
    """The officer page's waterfall: expected value plus every step is the raw score exactly, and
    the calibrator maps that raw score to the PD shown."""
    scores = scorer.score(snapshot.head(40), top=len(scorer.default.features))
    live = np.flatnonzero(scores.status != "in_default")
    assert len(live) > 20
    families = {s.family for s in scorer.default.catalog.values()}
    for i in live:
        steps = waterfall(scores, i, scorer.default.catalog)
        assert sum(s["value"] for s in steps) == pytest.approx(scores.raw_score[i], abs=1e-6)
        pd_ = scorer.default.probability(np.array([sum(s["value"] for s in steps)]))[0]
        assert pd_ == pytest.approx(scores.pd_12m[i], abs=1e-6)
        assert len(steps) <= 1 + 2 * WATERFALL_STEPS + len(families)
        assert not any(s["label"] == "all other features" for s in steps)  # all accounted for


def test_the_score_document(scorer: Scorer, snapshot: pd.DataFrame) -> None:
    requested = np.full(len(snapshot), 50_000.0)
    scores = scorer.score(snapshot, requested_limits=requested)
    assert np.all((scores.pd_12m >= 0) & (scores.pd_12m <= 1))
    live = scores.status != "in_default"
    assert np.all((scores.grade[live] >= 1) & (scores.grade[live] <= 10))
    assert np.all(scores.grade[~live] == 0) and np.all(scores.pd_12m[~live] == 1)
    assert np.all((scores.late_payment_probability >= 0) & (scores.late_payment_probability <= 1))
    assert np.all(scores.expected_loss >= 0) and np.all(scores.recommended_limit >= 0)
    for d in scores.limit_decision:
        assert isinstance(d, LimitDecision)
        assert d.decision in {"approve", "approve_in_part", "reduce", "hold", "refuse", "refer"}
    risky = int(np.argmax(np.where(live, scores.pd_12m, -1)))
    reasons = scores.risk_reasons[risky]
    assert reasons and all(r.contribution > 0 for r in reasons)
    assert all(isinstance(r.text, str) and r.text for r in reasons)
    # reasons are ordered by contribution, and say how the value compares with good grades
    contribs = [r.contribution for r in reasons]
    assert contribs == sorted(contribs, reverse=True)
    assert any("typical of grades 1-3" in r.text or "grades 1-3" in r.text for r in reasons)


def _truth(bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    """The deployed model's contributions computed apart from `ModelBundle.contributions`:
    LightGBM's own pred_contrib for the booster, each scorecard term by hand, weighted by the
    blend."""
    trees = bundle.booster.predict(x, pred_contrib=True)
    if bundle.scorecard is None or bundle.blend >= 1:
        return np.asarray(trees)
    card = np.zeros_like(trees)
    for term in bundle.scorecard.terms:
        card[:, term.column] = term.coefficient * term.evidence(x[:, term.column]) - term.mean
    card[:, -1] = bundle.scorecard.intercept + sum(t.mean for t in bundle.scorecard.terms)
    return bundle.blend * trees + (1 - bundle.blend) * card


@pytest.mark.parametrize("blend", ["trained", 0.5, 0.0])
def test_reasons_are_exact_contributions_of_the_deployed_model(
    scorer: Scorer, snapshot: pd.DataFrame, blend: object
) -> None:
    """Every reason's contribution is the deployed model's exact contribution of that feature for
    that client (a booster: LightGBM's own TreeSHAP; a blend: its weight times that plus the other
    weight times the scorecard's term; a scorecard alone: its terms), and all of them with the
    expected value add up to the raw score: the trained model, a blend and the scorecard alone."""
    default = scorer.default
    if blend != "trained":
        assert default.scorecard is not None  # training keeps the candidate it judged
        default = replace(default, blend=float(blend))  # type: ignore[arg-type]
    deployed = replace(scorer, default=default)
    scores = deployed.score(snapshot.head(30), top=200)
    x = default.matrix(snapshot.head(30))
    truth = _truth(default, x)
    np.testing.assert_allclose(truth.sum(axis=1), default.raw_score(x), atol=1e-9)
    names = default.features
    for i in np.flatnonzero(scores.status != "in_default"):
        shown = scores.risk_reasons[i] + scores.strengths[i]
        for r in shown:
            assert r.contribution == pytest.approx(truth[i, names.index(r.feature)], abs=1e-6)
        total = sum(r.contribution for r in shown) + scores.expected_value[i]
        assert total == pytest.approx(scores.raw_score[i], abs=1e-5)


def test_online_and_batch_scores_are_identical(
    scorer: Scorer, small_ledger: Ledger, snapshot: pd.DataFrame
) -> None:
    batch = scorer.score(snapshot)
    at = {c: i for i, c in enumerate(batch.client_id)}
    for client_id in snapshot["client_id"].iloc[::45]:
        one = build_client_features(client_ledger(small_ledger, [client_id]), as_of_dates=[AS_OF])
        online = scorer.score(one)
        i = at[client_id]
        assert online.pd_12m[0] == batch.pd_12m[i] and online.status[0] == batch.status[i]
        # the single-row and batch TreeSHAP kernels agree to the last bits (~1e-16)
        for a, b in zip(online.risk_reasons[0], batch.risk_reasons[i], strict=True):
            assert (a.feature, a.text, a.value) == (b.feature, b.text, b.value)
            assert a.contribution == pytest.approx(b.contribution, abs=1e-12)
        assert online.recommended_limit[0] == batch.recommended_limit[i]


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
    scores = scorer.score(features, requested_limits=np.array([5e5]))
    assert 0 < scores.pd_12m[0] < 1 and scores.thin_file[0] and scores.status[0] == "new"
    assert scores.data_sufficiency[0].startswith("thin file")
    # a new client starts capped: a large request is never approved in full
    decision = scores.limit_decision[0]
    assert decision is not None and decision.decision in {"approve_in_part", "refer", "refuse"}
    # contributions still add up, with every payment feature missing
    contrib = scorer.default.contributions(scorer.default.matrix(features))
    assert contrib.sum(axis=1)[0] == pytest.approx(scores.raw_score[0], abs=1e-9)


def test_applicant_violations_name_the_field_and_row() -> None:
    bad = [{**STATEMENTS[0], "period_end": "2025-06-30", "published_on": "2025-03-01"}]
    with pytest.raises(LedgerValidationError) as err:
        applicant_ledger({**APPLICANT, "country": "UK"}, bad, pd.Timestamp(AS_OF))
    found = set(zip(err.value.violations["table"], err.value.violations["column"], strict=True))
    assert ("clients", "country") in found and ("financials", "published_on") in found


def test_an_adverse_trade_reference_turns_an_approval_into_a_referral() -> None:
    approved = LimitDecision(10_000.0, "approve", 10_000.0, 20_000.0, ["within"])
    good = TradeReference("Acme", average_days_beyond_terms=3, max_days_beyond_terms=12)
    bad = TradeReference("Bolt", average_days_beyond_terms=20, max_days_beyond_terms=95)
    same, findings = apply_trade_references(approved, [good])
    assert same == approved and "Acme" in findings[0]
    referred, findings = apply_trade_references(approved, [good, bad])
    assert referred is not None and referred.decision == "refer"
    assert "adverse trade reference" in referred.rules[-1] and "95 days" in findings[1]
    refused = LimitDecision(10_000.0, "refuse", 0.0, 0.0, [])
    assert apply_trade_references(refused, [bad])[0] == refused  # never upgrades a refusal


def test_the_online_path_reads_a_client_as_the_whole_ledger_has_it(
    small_ledger_dir: Path, tmp_path: Path
) -> None:
    """The service reads a client's history from its bucket (a plain folder is partitioned into
    its cache) instead of holding the ledger: the features it builds equal those of the client's
    slice of the whole ledger, for one client and for many."""
    ledger = OnlineLedger(small_ledger_dir, tmp_path / "cache")
    whole = load_ledger(small_ledger_dir)
    day = ledger.default_day
    clients = sorted(ledger.clients)
    for client_id in clients[::37]:
        online = ledger.batch_features([client_id], day)
        rebuilt = build_client_features(client_ledger(whole, [client_id]), as_of_dates=[day])
        pd.testing.assert_frame_equal(online, rebuilt)
    batch = ledger.batch_features(clients[:30], day)
    rebuilt = build_client_features(client_ledger(whole, clients[:30]), as_of_dates=[day])
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


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.integers(0, 10_000), min_size=1, max_size=8),
    cause=st.sampled_from(["insolvency_days", "writeoff_days", "dpd90_days"]),
    days=st.floats(0, 364),
    scale=st.floats(0, 5),
    requested=st.floats(1, 1e9),
)
def test_a_client_in_default_never_gets_a_limit_or_an_approval_whatever_its_features(
    scorer: Scorer,
    snapshot: pd.DataFrame,
    rows: list[int],
    cause: str,
    days: float,
    scale: float,
    requested: float,
) -> None:
    frame = snapshot.iloc[[r % len(snapshot) for r in rows]].reset_index(drop=True)
    numeric = [c for c in frame.columns if frame[c].dtype == "float64"]
    frame[numeric] = frame[numeric] * scale  # any payment record, any size
    frame[cause] = days  # ...and a default condition within the cure period
    scores = scorer.score(frame, requested_limits=np.full(len(frame), requested))
    assert (scores.status == "in_default").all() and (scores.grade == 0).all()
    assert (scores.recommended_limit == 0).all() and (scores.pd_12m == 1).all()
    for d in scores.limit_decision:
        assert d is not None and d.decision == "refuse" and d.approved_amount == 0
