"""The compiled trees give LightGBM's own numbers: raw scores equal `predict(raw_score=True)` and
contributions equal `predict(pred_contrib=True)`, on every kind of split LightGBM makes."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import treeshap
from scoring.treeshap import CompiledTrees


def _data(seed: int, rows: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Numeric columns with NaN, a column that is mostly zero, and two categorical columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 20))
    x[rng.random(rows) < 0.15, 1] = np.nan
    x[rng.random(rows) < 0.6, 2] = 0.0
    x[:, 3] = rng.integers(0, 12, rows)  # categorical
    x[:, 4] = rng.integers(0, 40, rows)  # categorical with many levels
    x[rng.random(rows) < 0.1, 4] = np.nan
    logit = x[:, 0] - np.nan_to_num(x[:, 1]) + (x[:, 3] % 3 == 0) + 0.5 * (x[:, 4] > 20)
    logit += 0.7 * np.sin(3 * x[:, 5]) * x[:, 6] + 0.3 * np.cos(2 * x[:, 8:]).sum(axis=1)
    y = (logit + rng.logistic(size=rows) > 0).astype(int)
    return x, y


def _train(seed: int, **params: object) -> tuple[lgb.Booster, np.ndarray]:
    x, y = _data(seed)
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": seed}
    booster = lgb.train(
        {**base, **params}, lgb.Dataset(x, y, categorical_feature=[3, 4]), num_boost_round=40
    )
    return booster, x


def _rows(x: np.ndarray, seed: int) -> np.ndarray:
    """Training rows plus rows LightGBM never saw: NaN everywhere, exact zeros, negative and
    unseen categories, huge values."""
    rng = np.random.default_rng(seed + 1)
    odd = rng.normal(size=(60, x.shape[1])) * 5
    odd[::3] = np.nan
    odd[1::5] = 0.0
    odd[:, 3] = rng.choice([-1.0, -0.5, 0.0, 5.0, 11.0, 57.0, np.nan, 2.7], size=60)
    odd[:, 4] = rng.choice([-3.0, -0.7, 1.0, 39.0, 1000.0, np.nan], size=60)
    return np.vstack([x[:700], odd])


def _check(booster: lgb.Booster, x: np.ndarray, threads: int = 0) -> None:
    trees = CompiledTrees.from_booster(booster)
    theirs_raw = booster.predict(x, raw_score=True)
    np.testing.assert_array_equal(trees.raw_score(x, threads=threads), theirs_raw)
    # both raw-score kernels, whichever `raw_score` picks for this many rows
    np.testing.assert_array_equal(trees._raw_walk(x, threads), theirs_raw)
    if trees.vectorised:
        np.testing.assert_array_equal(trees._raw_vector(x, threads), theirs_raw)
    theirs = booster.predict(x, pred_contrib=True)
    ours = trees.contributions(x, threads=threads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.sum(axis=1), booster.predict(x, raw_score=True), atol=1e-9)


@pytest.mark.parametrize(
    "params",
    [
        {"num_leaves": 15},
        {"num_leaves": 63, "min_data_in_leaf": 5},  # long paths: past the table depth
        {"num_leaves": 31, "zero_as_missing": True},  # missing type "Zero"
        {"num_leaves": 31, "use_missing": False},  # missing type "None": NaN counts as zero
        {"num_leaves": 7, "max_cat_to_onehot": 64},  # one-hot categorical splits
        {"num_leaves": 31, "monotone_constraints": [1, -1] + [0] * 18},
        {"num_leaves": 2, "min_data_in_leaf": 2000},  # no split possible: one-leaf trees
    ],
    ids=["small", "deep", "zero-missing", "no-missing", "onehot", "monotone", "one-leaf"],
)
def test_raw_scores_and_contributions_equal_lightgbms(params: dict[str, object]) -> None:
    booster, x = _train(0, **params)
    _check(booster, _rows(x, 0))


def test_deep_trees_use_both_the_tables_and_the_row_by_row_path() -> None:
    booster, x = _train(1, num_leaves=255, min_data_in_leaf=3, max_depth=-1)
    trees = CompiledTrees.from_booster(booster)
    depths = np.diff(trees.leaf_unique)
    assert depths.max() > treeshap.TABLE_DEPTH >= depths.min()
    assert not trees.vectorised  # trees of over 64 leaves: batches walk the trees
    _check(booster, _rows(x, 1))


@pytest.mark.parametrize("leaves", [2, 63, 64])
def test_batches_of_trees_up_to_64_leaves_take_the_vectorised_kernel(leaves: int) -> None:
    booster, x = _train(5, num_leaves=leaves, min_data_in_leaf=2)
    trees = CompiledTrees.from_booster(booster)
    assert trees.vectorised
    assert np.diff(trees.tree_leaf).max() == leaves
    _check(booster, _rows(x, 5))


@pytest.mark.parametrize(
    "rows",
    [
        0,
        1,
        treeshap.TABLE_ROWS - 1,
        treeshap.VECTOR_ROWS,
        treeshap.VECTOR_BLOCK + 3,
        treeshap.BLOCK + 3,
    ],
)
def test_any_number_of_rows_on_one_or_two_threads(rows: int) -> None:
    booster, x = _train(2, num_leaves=31)
    for threads in (1, 2):
        if rows:
            _check(booster, _rows(x, 2)[:rows], threads=threads)
        else:
            trees = CompiledTrees.from_booster(booster)
            assert trees.contributions(x[:0], threads=threads).shape == (0, x.shape[1] + 1)
            assert trees.raw_score(x[:0], threads=threads).shape == (0,)


def test_a_row_gets_the_same_numbers_alone_as_in_any_batch() -> None:
    """A request scores one row (no tables: polynomial division), a batch uses the tables: the
    same contributions to the last bits (relative 1e-12; measured ~1e-15), ranked the same, and
    bit for bit the same raw score."""
    booster, x = _train(4, num_leaves=255, min_data_in_leaf=3)
    trees = CompiledTrees.from_booster(booster)
    rows = _rows(x, 4)[: treeshap.BLOCK + 40]
    batch = trees.contributions(rows)
    raw = trees.raw_score(rows)
    for i in range(0, len(rows), 7):
        alone = trees.contributions(rows[i : i + 1], threads=1)[0]
        np.testing.assert_allclose(alone, batch[i], rtol=1e-12, atol=1e-14)
        np.testing.assert_array_equal(
            np.argsort(-alone[:-1], kind="stable"), np.argsort(-batch[i, :-1], kind="stable")
        )
        assert trees.raw_score(rows[i : i + 1], threads=1)[0] == raw[i]


@pytest.mark.parametrize("rows", [3, treeshap.VECTOR_BLOCK + 5])
def test_features_read_through_a_column_map_of_a_wider_matrix(rows: int) -> None:
    booster, x = _train(6, num_leaves=31)
    x = _rows(x, 6)[:rows]
    trees = CompiledTrees.from_booster(booster)
    rng = np.random.default_rng(6)
    columns = rng.permutation(x.shape[1] + 7)[: x.shape[1]]  # features scattered, extra columns
    wide = np.asfortranarray(rng.normal(size=(rows, x.shape[1] + 7)))
    wide[:, columns] = x
    np.testing.assert_array_equal(
        trees.raw_score(wide, columns=columns), booster.predict(x, raw_score=True)
    )
    with pytest.raises(ValueError, match="column indices"):
        trees.raw_score(wide, columns=np.append(columns[:-1], x.shape[1] + 7))


def test_rows_of_the_wrong_width_are_refused() -> None:
    booster, x = _train(3, num_leaves=7)
    with pytest.raises(ValueError, match="expected rows of 20 features"):
        CompiledTrees.from_booster(booster).contributions(x[:, :5])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    seed=st.integers(0, 10_000),
    leaves=st.integers(2, 48),
    min_leaf=st.integers(1, 60),
    zero_as_missing=st.booleans(),
)
def test_any_model_any_row(seed: int, leaves: int, min_leaf: int, zero_as_missing: bool) -> None:
    booster, x = _train(
        seed, num_leaves=leaves, min_data_in_leaf=min_leaf, zero_as_missing=zero_as_missing
    )
    _check(booster, _rows(x, seed)[::3])
