"""The scheduled jobs' rules without a model: retraining windows and configuration, the gate's
verdict as an exit code, and when the nightly run recommends retraining."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.errors import InputError
from portfolio.nightly import retraining_reasons, status_line
from training.config import TrainConfig
from training.registry import PromotionDecision
from training.retrain import RetrainConfig, _needs_person, windows


def test_windows_leave_no_row_censored() -> None:
    cfg = RetrainConfig()
    w = windows(pd.Timestamp("2025-12-31"), pd.Timestamp("2023-01-01"), cfg)
    assert w.snapshots[-1] == pd.Timestamp("2024-12-31")  # its 12 months closed by extraction
    assert w.snapshots[0] == pd.Timestamp("2023-07-31")  # six months of history before it
    assert all(s.is_month_end for s in w.snapshots)
    assert w.invoices_to == pd.Timestamp("2025-10-02")  # 90 days: their due dates have passed
    assert w.invoices_from == w.invoices_to - pd.DateOffset(months=6)
    assert (w.timing_due_from, w.timing_due_to) == (
        pd.Timestamp("2024-07-04"),
        pd.Timestamp("2025-07-03"),
    )
    later = windows(pd.Timestamp("2026-01-31"), pd.Timestamp("2023-01-01"), cfg)
    assert later.snapshots[-1] == pd.Timestamp("2025-01-31")  # a month more of ledger: one more
    long = windows(pd.Timestamp("2030-06-15"), pd.Timestamp("2020-01-01"), cfg)
    assert len(long.snapshots) == cfg.snapshot_months and long.snapshots[-1] == pd.Timestamp(
        "2029-05-31"
    )


def test_a_ledger_too_short_for_the_label_horizon_is_refused_naming_why() -> None:
    with pytest.raises(
        InputError, match=r"fewer than the 6 a retraining needs.*at least 24 months"
    ):
        windows(pd.Timestamp("2024-06-30"), pd.Timestamp("2023-01-01"), RetrainConfig())


def test_the_configuration_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "retrain.yaml"
    path.write_text("trials: 2\nseed: 5\ntiming: false\n")
    assert RetrainConfig.load(path) == RetrainConfig(trials=2, seed=5, timing=False)
    for text, message in (
        ("trails: 2\n", "unknown option"),
        ("trials: two\n", "trials must be int"),
        ("trials: 0\n", "trials must be at least 1"),
        ("- 1\n", "must be a mapping"),
        ("trials: [\n", "not valid YAML"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            RetrainConfig.load(path)
    with pytest.raises(InputError, match="does not exist"):
        RetrainConfig.load(tmp_path / "missing.yaml")


def _decision(
    promoted: bool, auc: tuple[float, float], ece: tuple[float, float]
) -> PromotionDecision:
    return PromotionDecision("m", "2", "1", promoted, False, "why", auc[0], auc[1], ece[0], ece[1])


def test_a_refusal_needs_a_person_only_when_the_measures_disagree() -> None:
    cfg = TrainConfig()
    assert not _needs_person(_decision(True, (0.80, 0.79), (0.01, 0.01)), cfg)
    # worse on both: kept, as the gate is designed
    assert not _needs_person(_decision(False, (0.70, 0.80), (0.05, 0.01)), cfg)
    # better AUC, worse calibration (and the reverse): a person decides
    assert _needs_person(_decision(False, (0.82, 0.80), (0.05, 0.01)), cfg)
    assert _needs_person(_decision(False, (0.70, 0.80), (0.005, 0.02)), cfg)
    # refused without a comparison (nothing fair to compare on): a person decides
    no = PromotionDecision("m", "2", "1", False, False, "nothing fair to compare on")
    assert _needs_person(no, cfg)
    same = PromotionDecision("m", "1", "1", False, False, "the challenger already is the champion")
    assert not _needs_person(same, cfg)


def _block(psi: float, shifted: int, total: int = 10) -> dict[str, object]:
    verdict = "shifted" if psi >= 0.25 else "watch" if psi >= 0.1 else "stable"
    return {
        "score_psi": psi,
        "score_verdict": verdict,
        "features_shifted": shifted,
        "features_watch": 0,
        "csi": [{"feature": f"f{i}", "csi": 0.0, "verdict": "stable"} for i in range(total)],
    }


def test_retraining_is_recommended_on_a_shift_or_a_failed_backtest() -> None:
    calm = {"stability": {"previous run (2025-11-30)": _block(0.02, 1)}}
    assert retraining_reasons(calm) == []
    score = {"stability": {"previous run (2025-11-30)": _block(0.31, 0)}}
    assert "the score shifted" in retraining_reasons(score)[0]
    features = {"stability": {"champion training population": _block(0.05, 3)}}
    assert "3 of 10 features shifted" in retraining_reasons(features)[0]
    assert retraining_reasons(features, max_shifted_share=0.5) == []
    backtest = calm | {
        "backtest_of": "2024-12-31",
        "backtest": [
            {"grade": 3, "verdict": "consistent"},
            {"grade": 7, "verdict": "PD too low"},
        ],
    }
    assert retraining_reasons(backtest) == [
        "the backtest of 2024-12-31 fails in grade 7 (PD too low)"
    ]
    line = status_line(
        pd.Timestamp("2026-01-01"),
        {"clients": 2000, "rejected_rows": 0, "early_warnings": [1, 2]},
        backtest,
        retraining_reasons(backtest),
        Path("runs/2026-01-01"),
    )
    assert line.startswith("2026-01-01 RETRAIN clients=2000 rejected_rows=0 score_psi=0.020")
    assert "backtest=failed" in line and "warnings=2" in line and "\n" not in line
