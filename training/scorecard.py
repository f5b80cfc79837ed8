"""The scorecard: optimal binning with monotone trends, WoE, and logistic regression, fitted with
optbinning and scikit-learn, then kept as plain data (`scoring.scorecard.Scorecard`) for the
bundle: a candidate beside the booster, and the benchmark every model is compared with."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from scoring.scorecard import Scorecard, Term


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


def plain_scorecard(
    model: Pipeline,
    features: list[str],
    categories: Mapping[str, list[str]],
    x: np.ndarray,
) -> Scorecard:
    """The fitted pipeline as plain data over the model's matrix (`ModelBundle.matrix`: feature j
    in column j, a category as its code in `categories`); `x` is the training rows' matrix, for
    each term's mean. Each term's WoE is read off the fitted binning itself, bin by bin, so the
    plain scorecard scores exactly as the pipeline does (a missing value, as the pipeline's
    transform, weighs 0; a missing category is the level "missing")."""
    binning: BinningProcess = model.named_steps["binning"]
    logistic: LogisticRegression = model.named_steps["logistic"]
    kept = list(binning.get_support(names=True))
    terms = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, coefficient in zip(kept, logistic.coef_[0], strict=True):
            column = features.index(name)
            binned = binning.get_binned_variable(name)
            if name in categories:
                levels = [str(v) for v in categories[name]]
                woe = _woe(binned, np.asarray([*levels, "missing"], dtype=object))
                splits: tuple[float, ...] = ()
                weights, missing = tuple(woe[:-1]), float(woe[-1])
            else:
                edges = np.asarray(binned.splits, dtype="float64")
                below = edges[0] - 1.0 if len(edges) else 0.0
                probes = np.concatenate([[below], edges, [np.nan]])
                woe = _woe(binned, probes)
                splits = tuple(float(e) for e in edges)
                weights, missing = tuple(woe[:-1]), float(woe[-1])
            term = Term(
                feature=name,
                column=column,
                categorical=name in categories,
                splits=splits,
                woe=weights,
                woe_missing=missing,
                coefficient=float(coefficient),
                mean=0.0,
            )
            mean = float(np.mean(term.coefficient * term.evidence(x[:, column])))
            terms.append(Term(**{**term.__dict__, "mean": mean}))
    return Scorecard(
        intercept=float(logistic.intercept_[0]), terms=tuple(terms), width=len(features)
    )


def _woe(binned: object, values: np.ndarray) -> list[float]:
    """The WoE the pipeline's transform gives each value (its defaults: missing and special 0)."""
    out = binned.transform(values, metric="woe", metric_missing=0, metric_special=0)  # type: ignore[attr-defined]
    return [float(v) for v in np.asarray(out, dtype="float64")]
