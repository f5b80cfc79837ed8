"""The model bundle: everything needed to turn a feature row into a PD, a grade and its reasons.

One object, built by training and loaded from the MLflow registry by the service, batch scoring
and Spark alike: booster, calibrator, feature order, category levels and the grade master scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from serving.treeshap import CompiledTrees

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


SMALL_FRAME = 8  # up to this many rows, `matrix` converts value by value (a service request)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or value != value


def _number(value: object) -> float:
    """A feature value as float, missing or non-numeric as NaN (as `pd.to_numeric(errors="coerce")`)."""
    if _missing(value):
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def empty_matrix(rows: int, width: int) -> np.ndarray:
    """A float64 matrix for `ModelBundle.matrix`: row-major for a request's few rows, column-major
    for a batch (each feature is one copy of a column, and the batch kernels read a block's rows
    feature by feature; a row-major scatter cost ~3 us per row)."""
    order: Literal["C", "F"] = "C" if rows <= SMALL_FRAME else "F"
    return np.empty((rows, width), dtype="float64", order=order)


class Calibrator(Protocol):
    def predict(self, raw: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MasterScale:
    """Fixed PD bands: grade g holds PDs up to `upper[g - 1]`."""

    upper: tuple[float, ...]
    labels: tuple[str, ...]

    def grade(self, pd_: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.upper), np.asarray(pd_), side="left") + 1

    @classmethod
    def load(cls, path: Path | None = None) -> MasterScale:
        spec = yaml.safe_load((path or MODELS_DIR / "master_scale.yaml").read_text())["grades"]
        spec = sorted(spec, key=lambda g: g["grade"])
        return cls(
            upper=tuple(float(g["upper_pd"]) for g in spec),
            labels=tuple(str(g["label"]) for g in spec),
        )


@dataclass
class ModelBundle:
    """A trained, calibrated model with its feature contract."""

    name: str
    target: str
    model_string: str
    features: list[str]
    categories: dict[
        str, list[str]
    ]  # fixed category -> integer code mapping per categorical feature
    calibrator: Calibrator
    master_scale: MasterScale
    metadata: dict[str, object] = field(default_factory=dict)
    _booster: lgb.Booster | None = field(default=None, repr=False, compare=False)
    _trees: CompiledTrees | None = field(default=None, repr=False, compare=False)
    _level_index: dict[str, pd.Index] = field(default_factory=dict, repr=False, compare=False)
    _code_maps: dict[str, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)
    _arrow_level: dict[str, pa.Array] = field(default_factory=dict, repr=False, compare=False)

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.model_string)
        return self._booster

    @property
    def trees(self) -> CompiledTrees:
        """The booster's trees compiled for scoring and exact TreeSHAP (built once, ~1 s)."""
        trees = self.__dict__.get("_trees")  # absent in bundles pickled before
        if trees is None:
            trees = self._trees = CompiledTrees.from_booster(self.booster)
        return trees

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_booster"] = None  # rebuilt from the model string: pickles stay small and portable
        state["_trees"] = None
        state["_level_index"] = {}
        state["_code_maps"] = {}
        state["_arrow_level"] = {}
        return state

    def matrix(
        self,
        frame: pd.DataFrame,
        overrides: dict[str, np.ndarray] | None = None,
        *,
        features: list[str] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Feature rows as float64 in the model's order; categories as their fixed integer codes
        (unseen levels become missing), never pandas categories (MLflow and LightGBM disagree on
        those). `overrides` supplies (or replaces) whole columns without copying the frame.
        `features` (some of the model's, in that order) and `out` (rows x those features, e.g. a
        slice of a matrix shared with another model) build part of it in place."""
        overrides = overrides or {}
        names = self.features if features is None else features
        missing = [f for f in names if f not in frame.columns and f not in overrides]
        if missing:
            raise KeyError(
                f"feature table lacks {len(missing)} model feature(s): {', '.join(missing[:5])}"
            )
        if out is None:
            out = empty_matrix(len(frame), len(names))
        if len(frame) <= SMALL_FRAME:
            out[:] = self._small_matrix(frame, overrides, names)
            return out
        dtypes = dict(zip(frame.columns, frame.dtypes, strict=True))
        for j, name in enumerate(names):
            if name in overrides:
                given = np.asarray(overrides[name])
                if name not in self.categories and given.dtype == np.float64:
                    out[:, j] = given
                    continue
                values = pd.Series(given)
            elif isinstance(dtypes[name], np.dtype) and dtypes[name].kind in "fiu":
                out[:, j] = frame[name].to_numpy()
                continue
            else:
                values = frame[name]
            if name in self.categories:
                out[:, j] = self._category_codes(name, values)
            else:
                out[:, j] = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        return out

    def _category_codes(self, name: str, values: pd.Series) -> np.ndarray:
        """Each value's code among the levels as float64, NaN for missing or unseen."""
        if isinstance(values.array, pd.arrays.ArrowStringArray):  # Arrow's hash lookup, ~5x
            given = pa.chunked_array(pa.array(values.array)).cast(pa.large_string())
            found = pc.index_in(given, value_set=self._arrow_levels(name))
            return found.to_numpy(zero_copy_only=False).astype("float64")  # null -> NaN
        codes = self._levels(name).get_indexer(values.astype("str"))
        return np.where(codes >= 0, codes, np.nan)

    def _small_matrix(
        self, frame: pd.DataFrame, overrides: dict[str, np.ndarray], names: list[str]
    ) -> np.ndarray:
        """`matrix` for a request's few rows: one conversion of the frame to objects and plain
        Python per value costs ~0.3 ms, where pandas' per-column machinery costs several ms."""
        values = frame.to_numpy(dtype=object)
        where = {name: i for i, name in enumerate(frame.columns)}
        out = np.empty((len(frame), len(names)), dtype="float64")
        for j, name in enumerate(names):
            column = overrides[name] if name in overrides else values[:, where[name]]
            if name in self.categories:
                codes = self._codes(name)
                out[:, j] = [np.nan if _missing(v) else codes.get(str(v), np.nan) for v in column]
                continue
            try:
                out[:, j] = np.asarray(column, dtype="float64")
            except (TypeError, ValueError):  # pd.NA, None or text among the values
                out[:, j] = [_number(v) for v in column]
        return out

    def _codes(self, name: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_code_maps", {})
        if name not in cache:
            cache[name] = {level: i for i, level in enumerate(self.categories[name])}
        return cache[name]

    def _levels(self, name: str) -> pd.Index:
        cache = self.__dict__.setdefault("_level_index", {})  # absent in bundles pickled before
        if name not in cache:
            cache[name] = pd.Index(self.categories[name])
        return cache[name]

    def _arrow_levels(self, name: str) -> pa.Array:
        cache = self.__dict__.setdefault("_arrow_level", {})
        if name not in cache:
            cache[name] = pa.array([str(v) for v in self.categories[name]], type=pa.large_string())
        return cache[name]

    def raw_score(
        self, x: np.ndarray, *, threads: int = 0, columns: np.ndarray | None = None
    ) -> np.ndarray:
        """The booster's raw (log-odds) score: the same numbers as LightGBM's `predict`. With
        `columns`, feature j is column `columns[j]` of `x` (see `CompiledTrees.raw_score`)."""
        return self.trees.raw_score(x, threads=threads, columns=columns)

    def contributions(self, x: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Exact TreeSHAP contributions on the raw (log-odds) score, the last column the expected
        value: LightGBM's `pred_contrib` numbers, computed by `serving.treeshap` (faster)."""
        return self.trees.contributions(x, threads=threads)

    def probability(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator.predict(raw), 1e-6, 1 - 1e-6)

    def predict(self, frame: pd.DataFrame, *, threads: int = 0) -> pd.DataFrame:
        """PD (calibrated), raw score and grade for each row."""
        raw = self.raw_score(self.matrix(frame), threads=threads)
        p = self.probability(raw)
        return pd.DataFrame(
            {"pd": p, "raw_score": raw, "grade": self.master_scale.grade(p)}, index=frame.index
        )
