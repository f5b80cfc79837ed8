"""The candidates training judges (issue 22): the scorecard as plain data, the log-odds blend and
its weight, risk directions inferred from training rows only, a table's own directions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import Risk
from features.errors import InputError
from scoring.bundle import ModelBundle
from tests.models import FAST
from training.directions import infer_direction, load_directions
from training.scorecard import fit_scorecard, plain_scorecard, predict_scorecard
from training.specs import table_spec
from training.train import _bundle, choose_blend, train_model


def _table(rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Risk rises with `rises`, falls with `falls`, is U-shaped in `u`, ignores `noise`; a
    category matters, some values are missing."""
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(
        {
            "rises": rng.normal(size=rows),
            "falls": rng.normal(size=rows),
            "u": rng.normal(size=rows),
            "noise": rng.normal(size=rows),
            "sector": rng.choice(["retail", "mining", "farming"], rows),
        }
    )
    logit = -1.5 + t["rises"] - 0.8 * t["falls"] + 0.9 * t["u"] ** 2 + (t["sector"] == "mining")
    t["bad"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    t.loc[rng.uniform(size=rows) < 0.1, "falls"] = np.nan
    t.loc[rng.uniform(size=rows) < 0.1, "sector"] = None
    return t


def test_the_plain_scorecard_scores_as_the_fitted_pipeline_and_explains_itself() -> None:
    t = _table()
    spec = table_spec(t, target="bad", time_column=None, name="t")
    y = t["bad"].to_numpy()
    pipeline = fit_scorecard(t[spec.features], y, categorical=spec.categorical, directions={})
    bundle = _bundle(spec, t)
    x = bundle.matrix(t)
    card = plain_scorecard(pipeline, spec.features, bundle.categories, x)
    p = predict_scorecard(pipeline, t[spec.features], categorical=spec.categorical)
    np.testing.assert_allclose(card.raw_score(x), np.log(p / (1 - p)), atol=1e-9)
    contributions = card.contributions(x)
    np.testing.assert_allclose(contributions.sum(axis=1), card.raw_score(x), atol=1e-9)
    # a term's contributions average zero over the training rows: one shared baseline
    np.testing.assert_allclose(contributions[:, :-1].mean(axis=0), 0, atol=1e-9)


def test_the_blend_weight_goes_to_the_better_candidate() -> None:
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=4000) < 0.3).astype(int)
    signal = y * 1.5 + rng.normal(size=4000)
    noise = rng.normal(size=4000)
    assert choose_blend(signal, noise, y)[0] == 1.0  # the booster alone
    assert choose_blend(noise, signal, y)[0] == 0.0  # the scorecard alone
    half = y * 1.0 + rng.normal(size=4000)
    other = y * 1.0 + rng.normal(size=4000)  # independent errors: the blend ranks better
    weight, aucs = choose_blend(half, other, y)
    assert 0 < weight < 1 and aucs["blend_auc"] > max(aucs["booster_auc"], aucs["scorecard_auc"])


def test_directions_are_inferred_only_where_the_rows_support_them() -> None:
    t = _table(rows=6000)
    y = t["bad"].to_numpy(float)
    assert infer_direction(t["rises"].to_numpy(float), y) == 1
    assert infer_direction(t["falls"].to_numpy(float), y) == -1
    assert infer_direction(t["u"].to_numpy(float), y) == 0  # not monotone
    assert infer_direction(t["noise"].to_numpy(float), y) == 0  # not significant
    assert infer_direction(t["rises"].to_numpy(float)[:50], y[:50]) == 0  # too few rows


def test_a_table_is_trained_with_directions_from_each_fold_s_own_rows(tmp_path: Path) -> None:
    """Each evaluation fold's training inferred its directions from that fold's training rows;
    the deployed model from every row; the winner of each fold is recorded; reasons of the
    deployed model add up to its raw score whatever it is (booster, scorecard or blend)."""
    t = _table(rows=2500)
    spec = table_spec(t, target="bad", time_column=None, name="t")
    result = train_model(t, spec, replace(FAST, cv_folds=3))
    folds = result.profile["outer_folds"]
    assert len(folds) == 3
    for fold in folds:
        assert fold["directions_inferred"].get("rises") == 1
        assert "u" not in fold["directions_inferred"] and "noise" not in fold["directions_inferred"]
        assert fold["model"] and set(fold["candidates"]) >= {"booster_auc", "scorecard_auc"}
    bundle = result.bundle
    assert bundle.scorecard is not None and bundle.metadata["directions_inferred"]["rises"] == 1
    saved = ModelBundle.load(bundle.save(tmp_path / "bundle"))
    x = saved.matrix(t.head(200))
    np.testing.assert_allclose(saved.raw_score(x), bundle.raw_score(x))
    for blend in (bundle.blend, 0.5, 0.0):
        mixed = replace(saved, blend=blend)
        np.testing.assert_allclose(
            mixed.contributions(x).sum(axis=1), mixed.raw_score(x), atol=1e-9
        )


def test_a_table_brings_its_own_directions(tmp_path: Path) -> None:
    path = tmp_path / "directions.yaml"
    path.write_text("rises: rises\nfalls: falls\nu: none\n")
    assert load_directions(path, ["rises", "falls", "u"]) == {
        "rises": Risk.RISES,
        "falls": Risk.FALLS,
        "u": Risk.UNKNOWN,
    }
    path.write_text("nothing: rises\n")
    with pytest.raises(InputError, match="'nothing' is not a feature"):
        load_directions(path, ["rises"])
    path.write_text("rises: up\n")
    with pytest.raises(InputError, match="use rises, falls or none"):
        load_directions(path, ["rises"])
