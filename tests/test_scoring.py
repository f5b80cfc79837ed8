"""The scoring core: exact reasons that add up to the raw score, identical online and batch numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import Ledger
from features.payment_behaviour import build_client_features
from features.pipeline import build_feature_table, client_ledger, month_ends
from serving.limits import LimitPolicy
from serving.scoring import Scorer
from training.config import TrainConfig
from training.train import ledger_spec, train_model

FAST = TrainConfig(n_trials=2, max_rounds=150, early_stopping_rounds=20)
AS_OF = "2025-03-31"


@pytest.fixture(scope="module")
def scorer(small_ledger: Ledger) -> Scorer:
    clients = build_feature_table(
        small_ledger, unit="client", as_of_dates=month_ends("2023-03-31", "2024-06-30")
    )
    recent = small_ledger.invoices.loc[
        small_ledger.invoices["issued_on"] >= "2024-06-01", "invoice_id"
    ]
    invoices = build_feature_table(small_ledger, unit="invoice", invoices=recent)
    return Scorer(
        default=train_model(clients, ledger_spec("default"), FAST).bundle,
        late=train_model(invoices, ledger_spec("late"), FAST).bundle,
        policy=LimitPolicy.load(),
        versions={"creditguard-default": "test", "creditguard-late": "test"},
    )


@pytest.fixture(scope="module")
def snapshot(small_ledger: Ledger) -> pd.DataFrame:
    return build_client_features(small_ledger, as_of_dates=[AS_OF])


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
