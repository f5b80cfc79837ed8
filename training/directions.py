"""Risk directions inferred from the rows a model learns from, for features nobody gave one.

A direction (+1: risk rises with the feature, -1: it falls) becomes a LightGBM monotone
constraint and a monotone trend of the scorecard's bins: capacity the model does not spend on
wiggles a monotone effect never has. Ledger features carry theirs in the catalog; a table a data
scientist brings has none, or a few in a YAML file. For the rest, a feature gets a direction only
when its training rows support it on two counts:

- its rank correlation with the outcome is significant (|Spearman rho| * sqrt(n - 1) >= 3.3,
  about p < 0.001 two-sided), and
- the outcome rate across its (up to ten) quantile bins moves that way: the bins' rank correlation
  with their order is at least 0.8 in the same direction.

Anything else (U-shapes, noise, categories) stays unconstrained. Only training rows are read: the
caller infers inside each training fold, never from the rows a model is evaluated on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import rankdata

from features.catalog import Risk
from features.errors import InputError

MIN_ROWS = 100
Z_SIGNIFICANT = 3.3
BIN_TREND = 0.8
BINS = 10
WORDS = {"rises": Risk.RISES, "falls": Risk.FALLS, "none": Risk.UNKNOWN}


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def infer_direction(values: np.ndarray, y: np.ndarray) -> int:
    """+1, -1 or 0 for one numeric feature (see the module's docstring)."""
    known = ~np.isnan(values)
    v, t = values[known], y[known]
    if len(v) < MIN_ROWS or len(np.unique(v)) < 2 or len(np.unique(t)) < 2:
        return 0
    rho = _spearman(v, t)
    if abs(rho) * np.sqrt(len(v) - 1) < Z_SIGNIFICANT:
        return 0
    distinct = np.unique(v)
    if len(distinct) <= BINS:
        bins = np.searchsorted(distinct, v)
    else:
        edges = np.unique(np.quantile(v, np.linspace(0, 1, BINS + 1)[1:-1]))
        bins = np.searchsorted(edges, v, side="right")
    rates = pd.Series(t).groupby(bins).mean()
    if len(rates) < 2:
        return 0
    trend = _spearman(rates.index.to_numpy(dtype=float), rates.to_numpy())
    if abs(trend) < BIN_TREND or np.sign(trend) != np.sign(rho):
        return 0
    return int(np.sign(rho))


def infer_directions(
    frame: pd.DataFrame,
    y: np.ndarray,
    features: list[str],
    *,
    categorical: list[str],
    given: Mapping[str, int],
) -> dict[str, int]:
    """The inferred direction of every numeric feature without a given one (0: none)."""
    out = {}
    for name in features:
        if name in categorical or name in given:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype="float64")
        out[name] = infer_direction(values, np.asarray(y, dtype="float64"))
    return out


def load_directions(path: Path, features: list[str]) -> dict[str, Risk]:
    """A table's own directions from YAML, `feature: rises | falls | none` per line; an unknown
    feature or word is refused, naming it."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: directions are a mapping, feature: rises | falls | none")
    out = {}
    for name, word in raw.items():
        if name not in features:
            raise InputError(f"{path}: {name!r} is not a feature of the table")
        if str(word).lower() not in WORDS:
            raise InputError(
                f"{path}: the direction of {name!r} is {word!r}; use rises, falls or none"
            )
        out[str(name)] = WORDS[str(word).lower()]
    return out
