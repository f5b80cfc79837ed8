"""The model bundle: everything needed to turn a feature row into a PD, a grade and its reasons.

One object, built by training and loaded from the MLflow registry by the service, batch scoring
and Spark alike: booster (and, when training chose it, a scorecard blended with it in log-odds),
calibrator, feature order, category levels, the grade master scale and the wording of each
feature. It is saved as plain data (`save`, `load`): LightGBM's model string
and one JSON document, never a pickle, so loading a model runs no code and survives any move of
a class.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from features.catalog import FeatureSpec, Risk
from features.errors import InputError
from scoring.calibration import Calibrator, calibrator_from_dict
from scoring.paths import MODELS_DIR
from scoring.scorecard import Scorecard
from scoring.treeshap import CompiledTrees

FORMAT_VERSION = 2  # of the saved bundle; `load` refuses any other with a clear message
READABLE_VERSIONS = (1, 2)  # 2 added the scorecard and the blend weight (1: the booster alone)
BUNDLE_JSON = "bundle.json"
MODEL_TEXT = "model.txt"

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


class BundleFormatError(InputError):
    """A saved bundle this version cannot read; the message says what to do."""


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
    # how each feature reads in a reason (ledger models; empty for a table brought by a user)
    catalog: dict[str, FeatureSpec] = field(default_factory=dict)
    # The deployed raw score is blend * booster + (1 - blend) * scorecard, in log-odds: 1 is the
    # booster alone, 0 the scorecard alone (training picks it on rows it does not evaluate on).
    scorecard: Scorecard | None = None
    blend: float = 1.0
    # built from the fields above on first use (a `dataclasses.replace` starts them afresh)
    _booster: lgb.Booster | None = field(default=None, init=False, repr=False, compare=False)
    _trees: CompiledTrees | None = field(default=None, init=False, repr=False, compare=False)
    _level_index: dict[str, pd.Index] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _code_maps: dict[str, dict[str, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _arrow_level: dict[str, pa.Array] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def booster(self) -> lgb.Booster:
        if self._booster is None:
            self._booster = lgb.Booster(model_str=self.model_string)
        return self._booster

    @property
    def trees(self) -> CompiledTrees:
        """The booster's trees compiled for scoring and exact TreeSHAP (built once, ~1 s)."""
        if self._trees is None:
            self._trees = CompiledTrees.from_booster(self.booster)
        return self._trees

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model string, as JSON-ready plain data."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "target": self.target,
            "features": list(self.features),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "calibrator": self.calibrator.to_dict(),
            "master_scale": {
                "upper": list(self.master_scale.upper),
                "labels": list(self.master_scale.labels),
            },
            "catalog": {
                name: {**asdict(spec), "direction": int(spec.direction)}
                for name, spec in self.catalog.items()
            },
            "metadata": self.metadata,
            "scorecard": self.scorecard.to_dict() if self.scorecard is not None else None,
            "blend": self.blend,
            # LightGBM aborts the whole process on some malformed model strings: a model.txt
            # that is not the one saved is refused before LightGBM reads it (`from_dict`)
            "model_sha256": _digest(self.model_string),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], model_string: str) -> ModelBundle:
        """The bundle `to_dict` described; anything else is a `BundleFormatError` saying what."""
        if not isinstance(data, dict):
            raise BundleFormatError(f"a model bundle is a JSON object, not {type(data).__name__}")
        try:
            return cls._from_dict(data, model_string)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"field {exc.args[0]!r} missing" if isinstance(exc, KeyError) else str(exc)
            raise BundleFormatError(f"the model bundle cannot be read: {what}") from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any], model_string: str) -> ModelBundle:
        expected = data.get("model_sha256")
        if expected is not None and expected != _digest(model_string):
            raise BundleFormatError(
                f"{MODEL_TEXT} is not the model saved with {BUNDLE_JSON} (its SHA-256 differs): "
                "the bundle was changed or damaged; register the model again"
            )
        if expected is None:  # a bundle saved before the digest: LightGBM reads it in a child
            _check_model_text(model_string)
        version = data.get("format_version")
        if version not in READABLE_VERSIONS:
            raise BundleFormatError(
                f"model bundle format version {version!r} cannot be read by this creditguard "
                f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))}): retrain the "
                "model, or use the creditguard "
                "version that saved it"
            )
        return cls(
            name=str(data["name"]),
            target=str(data["target"]),
            model_string=model_string,
            features=[str(f) for f in data["features"]],
            categories={str(k): [str(v) for v in vs] for k, vs in data["categories"].items()},
            calibrator=calibrator_from_dict(data["calibrator"]),
            master_scale=MasterScale(
                upper=tuple(float(u) for u in data["master_scale"]["upper"]),
                labels=tuple(str(x) for x in data["master_scale"]["labels"]),
            ),
            metadata=dict(data.get("metadata", {})),
            catalog={
                name: FeatureSpec(**{**spec, "direction": Risk(spec["direction"])})
                for name, spec in data.get("catalog", {}).items()
            },
            scorecard=Scorecard.from_dict(data["scorecard"]) if data.get("scorecard") else None,
            blend=float(data.get("blend", 1.0)),
        )

    def save(self, folder: Path) -> Path:
        """Write the bundle as `bundle.json` and LightGBM's `model.txt` into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=1, default=_plain, allow_nan=True)
        (folder / BUNDLE_JSON).write_text(text + "\n")
        (folder / MODEL_TEXT).write_text(self.model_string)
        return folder

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        """Read a folder written by `save`; a folder without one is refused, naming it."""
        spec, text = folder / BUNDLE_JSON, folder / MODEL_TEXT
        if not spec.exists() or not text.exists():
            raise BundleFormatError(
                f"{folder} holds no plain-data model bundle ({BUNDLE_JSON} and {MODEL_TEXT}); "
                "models registered before creditguard saved bundles as plain data were pickled "
                "and must be retrained"
            )
        try:
            data = json.loads(spec.read_text(encoding="utf-8"))
            model = text.read_text(encoding="utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise BundleFormatError(f"{folder}: the model bundle cannot be read ({exc})") from None
        try:
            return cls.from_dict(data, model)
        except BundleFormatError as exc:
            raise BundleFormatError(f"{folder}: {exc}") from None

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
        if name not in self._code_maps:
            self._code_maps[name] = {level: i for i, level in enumerate(self.categories[name])}
        return self._code_maps[name]

    def _levels(self, name: str) -> pd.Index:
        if name not in self._level_index:
            self._level_index[name] = pd.Index(self.categories[name])
        return self._level_index[name]

    def _arrow_levels(self, name: str) -> pa.Array:
        if name not in self._arrow_level:
            levels = [str(v) for v in self.categories[name]]
            self._arrow_level[name] = pa.array(levels, type=pa.large_string())
        return self._arrow_level[name]

    @property
    def _card(self) -> Scorecard | None:
        """The scorecard when it has a weight in the score."""
        return self.scorecard if self.scorecard is not None and self.blend < 1.0 else None

    def raw_score(
        self, x: np.ndarray, *, threads: int = 0, columns: np.ndarray | None = None
    ) -> np.ndarray:
        """The deployed raw (log-odds) score: the booster's (the same numbers as LightGBM's
        `predict`), blended with the scorecard's when training chose to. With `columns`, feature j
        is column `columns[j]` of `x` (see `CompiledTrees.raw_score`)."""
        card = self._card
        if card is None:
            return self.trees.raw_score(x, threads=threads, columns=columns)
        card_raw = card.raw_score(x if columns is None else x[:, columns])
        if self.blend <= 0.0:
            return card_raw
        trees = self.trees.raw_score(x, threads=threads, columns=columns)
        return self.blend * trees + (1.0 - self.blend) * card_raw

    def contributions(self, x: np.ndarray, *, threads: int = 0) -> np.ndarray:
        """Exact additive contributions to the raw (log-odds) score, the last column the expected
        value; each row adds up to `raw_score`. The booster's are exact TreeSHAP (LightGBM's
        `pred_contrib` numbers, computed by `scoring.treeshap`, faster); a blend's are its weight
        times those plus the other weight times the scorecard's terms (`scoring.scorecard`)."""
        card = self._card
        if card is None:
            return self.trees.contributions(x, threads=threads)
        card_part = card.contributions(x)
        if self.blend <= 0.0:
            return card_part
        trees = self.trees.contributions(x, threads=threads)
        return self.blend * trees + (1.0 - self.blend) * card_part

    def probability(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator.predict(raw), 1e-6, 1 - 1e-6)

    def predict(self, frame: pd.DataFrame, *, threads: int = 0) -> pd.DataFrame:
        """PD (calibrated), raw score and grade for each row."""
        raw = self.raw_score(self.matrix(frame), threads=threads)
        p = self.probability(raw)
        return pd.DataFrame(
            {"pd": p, "raw_score": raw, "grade": self.master_scale.grade(p)}, index=frame.index
        )


def _digest(model_string: str) -> str:
    return hashlib.sha256(model_string.encode()).hexdigest()


def _check_model_text(model_string: str) -> None:
    """LightGBM reads the model string in a child process first: on some malformed strings it
    aborts the process that reads them (exit 134), which must not be ours."""
    code = "import sys, lightgbm; lightgbm.Booster(model_str=sys.stdin.read())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=model_string,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise BundleFormatError(f"{MODEL_TEXT} is not a LightGBM model LightGBM can read ({last})")


def _plain(value: object) -> object:
    """numpy scalars and arrays in metadata, as JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not plain data and cannot be saved in a bundle")
