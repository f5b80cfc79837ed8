"""The model bundle as plain data: saved and loaded without pickle, the same numbers after."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_specs
from scoring.bundle import BundleFormatError, MasterScale, ModelBundle
from scoring.calibration import IsotonicCalibrator, PlattCalibrator


def _bundle(calibrator: PlattCalibrator | IsotonicCalibrator) -> ModelBundle:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3))
    x[:, 2] = rng.integers(0, 3, 800)
    y = (rng.uniform(size=800) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 7}
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[2]), 30)
    catalog = {s.name: s for s in feature_specs("client")}
    return ModelBundle(
        name="creditguard-test",
        target="default_12m",
        model_string=booster.model_to_string(),
        features=["late_share_90", "dpd_mean_90", "industry"],
        categories={"industry": ["Retail", "Wholesale", "Construction"]},
        calibrator=calibrator,
        master_scale=MasterScale.load(),
        metadata={"calibration": calibrator.method, "reference": {"rows": np.int64(800)}},
        catalog={n: catalog[n] for n in ("late_share_90", "dpd_mean_90", "industry")},
    )


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "late_share_90": rng.normal(size=50),
            "dpd_mean_90": np.where(rng.uniform(size=50) < 0.2, np.nan, rng.normal(size=50)),
            "industry": rng.choice(["Retail", "Wholesale", "Construction", "Mining"], 50),
        }
    )


@pytest.mark.parametrize(
    "calibrator",
    [
        PlattCalibrator(a=0.93, b=-0.41),
        IsotonicCalibrator(x=np.array([-2.0, -0.3, 0.4, 1.7]), y=np.array([0.01, 0.1, 0.3, 0.9])),
    ],
)
def test_a_saved_bundle_loads_with_the_same_numbers_and_no_pickle(
    tmp_path: Path, calibrator: PlattCalibrator | IsotonicCalibrator
) -> None:
    bundle = _bundle(calibrator)
    folder = bundle.save(tmp_path / "bundle")
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["bundle.json", "model.txt"]
    assert all(p.read_bytes()[:1] != b"\x80" for p in folder.iterdir())  # no pickle stream
    json.loads((folder / "bundle.json").read_text())  # plain JSON
    loaded = ModelBundle.load(folder)
    frame = _frame()
    pd.testing.assert_frame_equal(loaded.predict(frame), bundle.predict(frame))
    x = bundle.matrix(frame)
    np.testing.assert_array_equal(loaded.contributions(x), bundle.contributions(x))
    assert loaded.catalog == bundle.catalog and loaded.categories == bundle.categories
    assert loaded.metadata["reference"] == {"rows": 800}
    assert loaded.master_scale == bundle.master_scale


def test_an_unknown_format_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    folder = _bundle(PlattCalibrator(a=1.0, b=0.0)).save(tmp_path / "bundle")
    spec = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**spec, "format_version": 99}))
    with pytest.raises(BundleFormatError, match=r"format version 99.*retrain"):
        ModelBundle.load(folder)


def test_a_folder_without_a_plain_bundle_names_the_old_pickled_format(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "bundle.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(BundleFormatError, match="pickled and must be retrained"):
        ModelBundle.load(tmp_path / "old")


def test_a_replaced_bundle_starts_its_caches_afresh() -> None:
    """Category codes are cached per bundle: a bundle made from another by `replace` (as
    training does) reads its own levels, not the codes its source cached."""
    bundle = _bundle(PlattCalibrator(a=1.0, b=0.0))
    few, many = _frame().head(3), _frame()
    before = bundle.matrix(few)[:, 2], bundle.matrix(many)[:, 2]  # both caches filled
    levels = ["Construction", "Retail", "Wholesale"]
    other = replace(bundle, categories={"industry": levels})
    for frame, old in zip((few, many), before, strict=True):
        codes = other.matrix(frame)[:, 2]
        expected = [levels.index(v) if v in levels else np.nan for v in frame["industry"]]
        np.testing.assert_array_equal(codes, expected)
        assert not np.array_equal(codes, old, equal_nan=True)
