"""Calibration that keeps the ranking: no plateau ties clients, the tails are fitted, every
calibrator survives plain data, and the blend prefers a raw score that splits the best clients."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.calibration import calibrator_from_dict
from training.calibrate import FITTERS, MAX_TIE_SHARE, fit_calibrator, tie_share
from training.train import choose_blend


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    """Raw scores whose true log-odds bend at the low end (the best clients default far less
    than a straight line in the raw score says), as a shallow booster's do."""
    rng = np.random.default_rng(3)
    raw = rng.normal(-3.0, 1.0, 40_000)
    truth = np.where(raw < -3.0, -3.0 + 2.5 * (raw + 3.0), -3.0 + 0.8 * (raw + 3.0))
    y = (rng.random(len(raw)) < 1 / (1 + np.exp(-truth))).astype(int)
    return raw, y


@pytest.mark.parametrize("method", sorted(FITTERS))
def test_every_calibrator_survives_plain_data_to_the_bit(
    scores: tuple[np.ndarray, np.ndarray], method: str
) -> None:
    raw, y = scores
    fitted = FITTERS[method](raw, y)
    again = calibrator_from_dict(fitted.to_dict())
    assert np.array_equal(again.predict(raw), fitted.predict(raw))


@pytest.mark.parametrize("method", ["platt", "beta", "isotonic_interpolated"])
def test_a_ranking_calibrator_never_ties_distinct_scores(
    scores: tuple[np.ndarray, np.ndarray], method: str
) -> None:
    raw, y = scores
    grid = np.linspace(-8, 4, 2001)
    pd_ = FITTERS[method](raw, y).predict(grid)
    inside = pd_[(pd_ > 1e-9) & (pd_ < 1 - 1e-9)]  # beyond, floating point saturates
    assert len(inside) > 1000 and np.all(np.diff(inside) > 0)
    assert tie_share(FITTERS[method](raw, y).predict(raw)) <= MAX_TIE_SHARE


def test_isotonic_steps_tie_clients_and_are_not_chosen(
    scores: tuple[np.ndarray, np.ndarray],
) -> None:
    raw, y = scores
    assert tie_share(FITTERS["isotonic"](raw, y).predict(raw)) > MAX_TIE_SHARE
    chosen, info = fit_calibrator(raw, y)
    assert chosen.method != "isotonic"
    assert info["calibration_tie_share_isotonic"] > MAX_TIE_SHARE


def test_the_chosen_calibrator_fits_the_best_clients(scores: tuple[np.ndarray, np.ndarray]) -> None:
    """Where the raw score bends, a straight line (Platt) floors the best clients' PDs; the
    choice fits the tail: the best tenth's mean PD is within a factor 2 of its default rate."""
    raw, y = scores
    chosen, _ = fit_calibrator(raw, y)
    best = raw <= np.quantile(raw, 0.10)
    rate, mean_pd = y[best].mean(), chosen.predict(raw[best]).mean()
    assert rate / 2 <= mean_pd <= rate * 2, (chosen.method, rate, mean_pd)
    platt = FITTERS["platt"](raw, y).predict(raw[best]).mean()
    assert platt > 2 * rate  # the floor the issue saw


def test_the_blend_prefers_a_raw_score_that_does_not_tie_the_best_clients() -> None:
    rng = np.random.default_rng(5)
    n = 5_000
    card = rng.normal(0, 1, n)
    booster = np.where(card < -0.5, -2.0, card)  # every tree's best leaf: a third of the rows
    y = (rng.random(n) < 1 / (1 + np.exp(-(card - 2)))).astype(int)
    weight, candidates = choose_blend(booster, card, y)
    assert weight < 1.0 and candidates["booster_auc"] > 0
    assert tie_share(weight * booster + (1 - weight) * card, digits=9) <= MAX_TIE_SHARE
