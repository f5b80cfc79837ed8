"""A scorecard as plain data: each feature binned, each bin's weight of evidence, a logistic
regression over them. It scores the same feature matrix as the booster (`ModelBundle.matrix`:
numbers, categories as their codes) and explains itself exactly: a feature's contribution is its
coefficient times its WoE minus the training mean of that, so the contributions and the expected
value (the intercept plus every term's mean) add up to the raw (log-odds) score, as TreeSHAP's do
for the booster. Training builds it (`training.scorecard`); nothing here fits anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Term:
    """One feature's part of the score: `coefficient * woe(x)`.

    Numeric: bin i holds values in [splits[i-1], splits[i]) (the first from -inf, the last to
    +inf) and weighs `woe[i]`. Categorical: `woe[code]` for each level's code. A missing value (or
    an unseen level) weighs `woe_missing`. `mean` is the training rows' mean of the term."""

    feature: str
    column: int  # the feature's column in the model's matrix
    categorical: bool
    splits: tuple[float, ...]
    woe: tuple[float, ...]
    woe_missing: float
    coefficient: float
    mean: float

    def evidence(self, values: np.ndarray) -> np.ndarray:
        """Each value's weight of evidence."""
        woe = np.asarray(self.woe, dtype="float64")
        out = np.full(len(values), self.woe_missing, dtype="float64")
        known = ~np.isnan(values)
        if self.categorical:
            codes = values[known].astype(np.int64)
            inside = (codes >= 0) & (codes < len(woe))
            picked = np.full(len(codes), self.woe_missing)
            picked[inside] = woe[codes[inside]]
            out[known] = picked
        else:
            bins = np.searchsorted(np.asarray(self.splits), values[known], side="right")
            out[known] = woe[bins]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "column": self.column,
            "categorical": self.categorical,
            "splits": list(self.splits),
            "woe": list(self.woe),
            "woe_missing": self.woe_missing,
            "coefficient": self.coefficient,
            "mean": self.mean,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Term:
        return cls(
            feature=str(data["feature"]),
            column=int(data["column"]),
            categorical=bool(data["categorical"]),
            splits=tuple(float(s) for s in data["splits"]),
            woe=tuple(float(w) for w in data["woe"]),
            woe_missing=float(data["woe_missing"]),
            coefficient=float(data["coefficient"]),
            mean=float(data["mean"]),
        )


@dataclass(frozen=True)
class Scorecard:
    """Intercept plus one term per feature it kept (a feature it dropped contributes nothing)."""

    intercept: float
    terms: tuple[Term, ...]
    width: int  # columns of the model's matrix

    @property
    def expected_value(self) -> float:
        return self.intercept + sum(t.mean for t in self.terms)

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        raw = np.full(len(x), self.intercept, dtype="float64")
        for term in self.terms:
            raw += term.coefficient * term.evidence(x[:, term.column])
        return raw

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """(rows, width + 1): each feature's contribution, the expected value last; each row
        adds up to `raw_score`."""
        out = np.zeros((len(x), self.width + 1), dtype="float64")
        for term in self.terms:
            out[:, term.column] = term.coefficient * term.evidence(x[:, term.column]) - term.mean
        out[:, -1] = self.expected_value
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "intercept": self.intercept,
            "width": self.width,
            "terms": [t.to_dict() for t in self.terms],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scorecard:
        return cls(
            intercept=float(data["intercept"]),
            width=int(data["width"]),
            terms=tuple(Term.from_dict(t) for t in data["terms"]),
        )
