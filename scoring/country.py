"""Country risk in decisions: the policy's limit cap by class and the transfer-risk flag, from
the class `features.country_risk` gives each client (OECD 0..7; NaN: unrated)."""

from __future__ import annotations

import numpy as np

from features.country_risk import CLASSES, UNRATED, country_risk_label
from scoring.policy import CountryPolicy

__all__ = ["UNRATED", "country_cap", "country_risk_label", "transfer_risk"]


def _index(classes: np.ndarray) -> np.ndarray:
    """0..7 by class, 8 for unrated."""
    classes = np.asarray(classes, dtype="float64")
    return np.where(
        np.isfinite(classes), np.clip(np.nan_to_num(classes), 0, CLASSES - 1), CLASSES
    ).astype(int)


def country_cap(classes: np.ndarray, policy: CountryPolicy) -> np.ndarray:
    """The most a client of each country may get."""
    return np.asarray(policy.limit_cap, dtype="float64")[_index(classes)]


def transfer_risk(classes: np.ndarray, policy: CountryPolicy) -> np.ndarray:
    """Whether the client's country is at or above the policy's transfer-risk class (an unrated
    country is flagged too: nothing says its payments can leave it)."""
    classes = np.asarray(classes, dtype="float64")
    return ~np.isfinite(classes) | (np.nan_to_num(classes) >= policy.transfer_risk_class)
