"""The scorecard benchmark: optimal binning with monotone trends, WoE, and logistic regression."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline


def fit_scorecard(
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    categorical: list[str],
    directions: Mapping[str, int],
) -> Pipeline:
    """A binning process (monotone where the catalog gives a direction) feeding a logistic regression.

    Columns with fewer than two distinct known values carry no information and make optbinning fail;
    the binning process never sees them.
    """
    x = x[[c for c in x.columns if x[c].nunique(dropna=True) >= 2]]
    categorical = [c for c in categorical if c in x.columns]
    params = {
        name: {"monotonic_trend": "ascending" if d > 0 else "descending"}
        for name, d in directions.items()
        if d != 0 and name in x.columns and name not in categorical
    }
    binning = BinningProcess(
        variable_names=list(x.columns),
        categorical_variables=categorical,
        binning_fit_params=params,
        min_prebin_size=0.02,
        max_n_prebins=10,
        selection_criteria={"iv": {"min": 0.005}},
    )
    model = Pipeline([("binning", binning), ("logistic", LogisticRegression(C=1.0, max_iter=2000))])
    model.creditguard_columns = list(x.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optbinning warns per constant column; nothing to act on
        model.fit(_clean(x, categorical), y)
    return model


def predict_scorecard(model: Pipeline, x: pd.DataFrame, *, categorical: list[str]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        columns = list(model.creditguard_columns)
        return np.asarray(
            model.predict_proba(_clean(x[columns], [c for c in categorical if c in columns]))[:, 1]
        )


def _clean(x: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    out = x.copy()
    for c in out.columns:
        out[c] = (
            out[c].astype(object).fillna("missing")
            if c in categorical
            else pd.to_numeric(out[c], errors="coerce")
        )
    return out
