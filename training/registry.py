"""Promotion: the challenger becomes champion only if it is at least as good on the same
out-of-time window, judged on clients neither model learned from; a forced promotion records who
overrode the gate and why."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from scoring.store import CHALLENGER, CHAMPION, load_bundle
from training.calibrate import MAX_TIE_SHARE, tie_share
from training.config import TrainConfig
from training.evaluate import evaluate
from training.tracking import LEARNED_GROUPS, use_store


@dataclass(frozen=True)
class PromotionDecision:
    model: str
    challenger: str
    champion: str | None
    promoted: bool
    forced: bool
    reason: str
    challenger_auc: float = float("nan")
    champion_auc: float = float("nan")
    challenger_ece: float = float("nan")
    champion_ece: float = float("nan")


def _evaluation_rows(run_id: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="evaluation/rows.parquet", dst_path=tmp
        )
        return pd.read_parquet(Path(path))


def _learned_groups(run_id: str) -> set[str] | None:
    """The clients a model learned from or was tuned on (None: its run does not say)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"evaluation/{LEARNED_GROUPS}", dst_path=tmp
            )
        except (MlflowException, OSError):
            return None
        frame = pd.read_parquet(Path(path))
        return set(frame.iloc[:, 0].astype(str))


def _refused(model: str, challenger: str, champion: str, why: str) -> PromotionDecision:
    use_store().set_model_version_tag(model, challenger, "promotion", f"refused: {why}")
    return PromotionDecision(model, challenger, champion, False, False, why)


def _collapsed(model: str, challenger: Any, cfg: TrainConfig) -> str | None:
    """Why the challenger's PD scale collapses (None: it does not): more than `MAX_TIE_SHARE`
    of its test rows share one PD (a calibrator's plateau ties clients a grade cannot tell
    apart)."""
    bundle = load_bundle(model, challenger.version)
    rows = _evaluation_rows(str(challenger.run_id))
    if not len(rows):
        return None
    share = tie_share(bundle.predict(rows, threads=cfg.threads)["pd"].to_numpy())
    if share <= MAX_TIE_SHARE:
        return None
    return (
        f"the challenger's PD scale collapses: {share:.1%} of its {len(rows):,} test rows share "
        f"one PD (at most {MAX_TIE_SHARE:.0%}): its grades cannot tell those clients apart"
    )


def promote(
    model: str, *, cfg: TrainConfig | None = None, force: bool = False, reason: str | None = None
) -> PromotionDecision:
    """Compare challenger and champion on the challenger's out-of-time evaluation window; move the
    `champion` alias when the challenger's AUC is within tolerance and its calibration no worse."""
    cfg = cfg or TrainConfig()
    if force and not reason:
        raise ValueError("a forced promotion needs a reason (--reason TEXT)")
    client = use_store()
    try:
        challenger = client.get_model_version_by_alias(model, CHALLENGER)
    except MlflowException as exc:
        raise LookupError(f"{model} has no challenger: train one first") from exc
    try:
        champion = client.get_model_version_by_alias(model, CHAMPION)
    except MlflowException:
        champion = None
    collapsed = _collapsed(model, challenger, cfg) if not force else None
    if collapsed is not None:
        return _refused(
            model, challenger.version, champion.version if champion else "none", collapsed
        )
    if champion is None:
        client.set_registered_model_alias(model, CHAMPION, challenger.version)
        return PromotionDecision(
            model,
            challenger.version,
            None,
            True,
            False,
            "no champion yet: the challenger becomes champion",
        )
    if champion.version == challenger.version:
        return PromotionDecision(
            model,
            challenger.version,
            champion.version,
            False,
            False,
            "the challenger already is the champion",
        )

    rows = _evaluation_rows(str(challenger.run_id))
    bundles = {
        "challenger": load_bundle(model, challenger.version),
        "champion": load_bundle(model, champion.version),
    }
    group = bundles["challenger"].metadata.get("group_column")
    if group and not force:
        # The challenger's test clients are new to it; the champion may have learned from some
        # of them (another seed, another ledger): judge both on the clients neither saw.
        learned = _learned_groups(str(champion.run_id))
        if learned is None:
            return _refused(
                model,
                challenger.version,
                champion.version,
                f"the champion (v{champion.version}) does not record the clients it learned from "
                "(trained before client-held-out evaluation), so it cannot be judged on new "
                "clients; compare them by hand and promote with --force --reason",
            )
        rows = rows[~rows[str(group)].astype(str).isin(learned)]
        if rows[bundles["challenger"].target].nunique() < 2:
            return _refused(
                model,
                challenger.version,
                champion.version,
                "no test client of the challenger is new to the champion too (or they hold one "
                "class only): nothing fair to compare on",
            )
    y = rows[bundles["challenger"].target].to_numpy(dtype=int)
    scores = {
        role: evaluate(y, bundle.predict(rows, threads=cfg.threads)["pd"].to_numpy())
        for role, bundle in bundles.items()
    }
    ch, cp = scores["challenger"], scores["champion"]
    auc_ok = ch["auc"] >= cp["auc"] - cfg.promotion_auc_tolerance
    ece_ok = ch["ece"] <= cp["ece"] + cfg.promotion_ece_tolerance
    passed = auc_ok and ece_ok
    judged = f"on {len(rows):,} rows of clients neither model learned from; " if group else ""
    why = judged + (
        f"AUC {ch['auc']:.4f} vs champion {cp['auc']:.4f} (tolerance {cfg.promotion_auc_tolerance}): "
        f"{'ok' if auc_ok else 'worse'}; ECE {ch['ece']:.4f} vs {cp['ece']:.4f} "
        f"(tolerance {cfg.promotion_ece_tolerance}): {'ok' if ece_ok else 'worse'}"
    )
    promoted = passed or force
    if promoted:
        client.set_registered_model_alias(model, CHAMPION, challenger.version)
    note = why if passed or not force else f"forced over the gate ({why}): {reason}"
    client.set_model_version_tag(
        model, challenger.version, "promotion", ("promoted: " if promoted else "refused: ") + note
    )
    if force:
        client.set_model_version_tag(model, challenger.version, "forced_reason", str(reason))
    return PromotionDecision(
        model,
        challenger.version,
        champion.version,
        promoted,
        force and not passed,
        note,
        ch["auc"],
        cp["auc"],
        ch["ece"],
        cp["ece"],
    )
