"""MLflow at the edge, write side: the experiment, and one function that logs a training run and
registers it (the read side, `tracking_uri` and `load_bundle`, is `scoring.store`)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from features.catalog import catalog_frame
from scoring.bundle import ModelBundle
from scoring.paths import REPO
from scoring.pyfunc import CODE_FILE, predict_with_reasons
from scoring.store import BUNDLE_ARTIFACT, CHALLENGER, CHAMPION, tracking_uri
from training.config import TrainConfig
from training.specs import ModelSpec
from training.train import TrainResult

EXPERIMENT = "creditguard"
LEARNED_GROUPS = "learned_groups.parquet"  # the clients a model learned from or was tuned on
# What loading a logged model imports (the pyfunc, the bundle, TreeSHAP and their imports); the
# model carries the `scoring` and `features` packages themselves as code.
MODEL_PACKAGES = ("mlflow", "lightgbm", "numba", "numpy", "pandas", "pyarrow", "pyyaml", "scipy")
MODEL_CODE = [str(REPO / "scoring"), str(REPO / "features")]


def pip_requirements() -> list[str]:
    """The packages a logged model needs, pinned to the versions it was trained with."""
    pinned = []
    for name in MODEL_PACKAGES:
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def use_store() -> MlflowClient:
    """Point MLflow at the store and make sure the experiment exists (artifacts under models/)."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # Artifacts sit beside an SQLite store (models/artifacts by default), never in the cwd.
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///") :]).resolve().parent / "artifacts").as_uri()
        mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return MlflowClient()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def model_card(result: TrainResult, run_id: str) -> str:
    m, s = result.metrics, result.scorecard_metrics
    lines = [
        f"# Model card: {result.spec.name}",
        "",
        f"**Purpose.** {result.spec.purpose}",
        "",
        "**Data.** "
        + (
            f"{result.profile['usable_rows']:,} usable rows of {result.profile['rows']:,} "
            f"(censored and already-defaulted rows excluded); target rate "
            f"{result.profile['target_rate']:.2%}; {result.profile['features']} features; data hash "
            f"`{result.data_hash[:16]}`."
        ),
        "",
        "**Evaluation.** "
        + (
            f"Out-of-time: tested on the latest dates (from {result.profile.get('test_from')})"
            + (
                f" of {result.profile.get('clients_test', 0):,.0f} clients held out (never "
                f"learned from); trained on the other {result.profile.get('clients_train', 0):,.0f}"
                " clients' earlier rows, the search, early stopping, the candidates and the "
                f"calibration by {result.profile.get('cv_folds', 5):.0f}-fold CV grouped by "
                "client. On the training clients' own rows of the test window (the figure a "
                "split by date alone reports) its AUC is "
                f"{result.same_client_metrics.get('auc', float('nan')):.4f}."
                if result.spec.group_column
                else f"; trained on the earlier rows, searched by "
                f"{result.profile.get('cv_folds', 5):.0f}-fold CV."
            )
            if result.spec.time_column
            else (
                f"Stratified {result.profile.get('cv_folds', 5):.0f}-fold cross-validation "
                "(out-of-fold predictions); within each training, the search, early stopping, "
                "the candidates and calibration use k-fold CV too, and the deployed model learns "
                "from every row."
            )
        ),
        "",
        f"**Deployed.** {result.bundle.metadata.get('model')}, chosen among the booster, the "
        "scorecard and their log-odds blend by the out-of-fold AUC "
        + ", ".join(
            f"{k.removesuffix('_auc')} {v:.4f}"
            for k, v in (result.bundle.metadata.get("candidates") or {}).items()  # type: ignore[attr-defined]
            if k.endswith("_auc")
        )
        + ". Directions inferred from the training rows: "
        + (
            ", ".join(
                f"{k} {'rises' if v > 0 else 'falls'}"
                for k, v in (result.bundle.metadata.get("directions_inferred") or {}).items()  # type: ignore[attr-defined]
            )
            or "none"
        )
        + ".",
        "",
        "| metric | LightGBM | scorecard |",
        "|---|---|---|",
        *[
            f"| {k} | {m[k]:.4f} | {s[k]:.4f} |"
            for k in (
                "auc",
                "gini",
                "ks",
                "brier",
                "log_loss",
                "ece",
                "capture_top10",
                "lift_top10",
            )
        ],
        "",
        f"**Calibration.** {result.bundle.metadata.get('calibration')} on every training row's "
        "out-of-fold score.",
        "",
        "**Limitations.** Trained on the ledger it was given: a new industry, country or currency is "
        "outside its experience. Thin-file clients have few payment features and lean on "
        "firmographics and financials. Labels are censored at the data's end, so the most recent "
        "months never enter training. The `external_rating` is taken as current, not as of each date.",
        "",
        f"MLflow run `{run_id}`, git commit `{git_commit()}`.",
    ]
    return "\n".join(lines) + "\n"


def log_training(
    result: TrainResult, cfg: TrainConfig, *, plots: bool = True, register: bool = True
) -> dict[str, Any]:
    """One MLflow run: parameters, metrics, plots, catalog, profile, hash, commit, model card, the
    model (a pyfunc over the bundle) and its registration as `challenger` (and `champion` if first)."""
    from training.plots import plot_calibration, plot_gains, plot_grades, plot_roc, plot_shap

    client = use_store()
    spec = result.spec
    with mlflow.start_run(run_name=f"{spec.name}") as run, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tag_run(spec, result.data_hash)
        mlflow.log_params(
            {
                **{f"cfg_{k}": v for k, v in cfg.__dict__.items()},
                **{
                    f"lgbm_{k}": v
                    for k, v in result.fit.params.items()
                    if k != "monotone_constraints"
                },
                "best_iteration": result.fit.best_iteration,
                "calibration": result.bundle.metadata.get("calibration"),
                "deployed": result.bundle.metadata.get("model"),
                "blend_weight": result.bundle.blend,
                "directions_inferred": json.dumps(
                    result.bundle.metadata.get("directions_inferred") or {}
                )[:6000],
                "monotone_features": sum(
                    1 for v in result.fit.params.get("monotone_constraints", []) if v
                ),
            }
        )
        mlflow.log_metrics(
            {f"test_{k}": v for k, v in result.metrics.items()}
            | {f"test_same_clients_{k}": v for k, v in result.same_client_metrics.items()}
            | {f"scorecard_test_{k}": v for k, v in result.scorecard_metrics.items()}
            | {"validation_auc": result.fit.validation_auc}
            | {
                f"inner_{k}": float(v)
                for k, v in (result.bundle.metadata.get("candidates") or {}).items()  # type: ignore[attr-defined]
            }
        )
        if spec.catalog():
            catalog_frame(spec.catalog()).to_csv(folder / "feature_catalog.csv", index=False)
        (folder / "data_profile.json").write_text(json.dumps(result.profile, indent=2, default=str))
        pd.DataFrame(result.trials).to_csv(folder / "search_trials.csv", index=False)
        if len(result.segments):
            result.segments.to_csv(folder / "segments.csv", index=False)
        (folder / "model_card.md").write_text(model_card(result, run.info.run_id))
        mlflow.log_artifacts(str(folder), artifact_path="report")

        eval_dir = folder / "evaluation"
        eval_dir.mkdir()
        result.evaluation_rows.to_parquet(eval_dir / "rows.parquet", index=False)
        result.predictions.to_parquet(eval_dir / "predictions.parquet", index=False)
        if spec.group_column:  # the promotion gate judges a champion only on clients it never saw
            pd.DataFrame({spec.group_column: result.learned_groups}).to_parquet(
                eval_dir / LEARNED_GROUPS, index=False
            )
        mlflow.log_artifacts(str(eval_dir), artifact_path="evaluation")

        if plots:
            plot_dir = folder / "plots"
            plot_dir.mkdir()
            pr = result.predictions
            y = pr["y"].to_numpy()
            plot_roc(
                y,
                {"LightGBM": pr["pd"].to_numpy(), "scorecard": pr["scorecard"].to_numpy()},
                plot_dir / "roc.png",
            )
            plot_calibration(y, pr["pd"].to_numpy(), plot_dir / "calibration.png")
            plot_gains(y, pr["pd"].to_numpy(), plot_dir / "gains.png")
            plot_grades(pr, plot_dir / "pd_per_grade.png")
            sample = result.evaluation_rows.head(cfg.shap_sample)
            x = result.bundle.matrix(sample)
            plot_shap(
                result.bundle.contributions(x, threads=cfg.threads),
                x,
                result.bundle.features,
                plot_dir,
            )
            mlflow.log_artifacts(str(plot_dir), artifact_path="plots")

        example = result.evaluation_rows[result.bundle.features].head(5).reset_index(drop=True)
        info = log_bundle_model(
            result.bundle,
            folder,
            example,
            predict_with_reasons(result.bundle, example),
            params={"reasons": True},
        )
        run_id = run.info.run_id
    out: dict[str, Any] = {"run_id": run_id}
    if register:
        out["version"], first = register_challenger(client, spec.name, info.model_uri)
        if first:
            out["champion"] = True
    return out


def tag_run(spec: ModelSpec, data_hash: str) -> None:
    """The active run's tags: commit, data hash, what the model predicts."""
    mlflow.set_tags(
        {
            "git_commit": git_commit(),
            "data_hash": data_hash,
            "target": spec.target,
            "unit": spec.unit,
            "model_name": spec.name,
        }
    )


def log_bundle_model(
    bundle: ModelBundle,
    folder: Path,
    example: pd.DataFrame,
    output: pd.DataFrame,
    *,
    params: dict[str, Any] | None = None,
) -> ModelInfo:
    """The bundle, saved under `folder`, logged to the active run as an MLflow model from code
    (no object pickled) with its pinned requirements; `output`: what it predicts for `example`."""
    bundle_path = bundle.save(folder / BUNDLE_ARTIFACT)
    with warnings.catch_warnings():
        # MLflow warns about integer columns and env capture; both handled
        warnings.simplefilter("ignore")
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(CODE_FILE),  # models-from-code: no object is pickled
            code_paths=MODEL_CODE,
            artifacts={BUNDLE_ARTIFACT: str(bundle_path)},
            signature=infer_signature(example, output, params=params),
            input_example=example,
            pip_requirements=pip_requirements(),
        )


def register_challenger(client: MlflowClient, name: str, model_uri: str) -> tuple[str, bool]:
    """Register the logged model as `name`'s challenger; the first version becomes champion.
    Returns the version and whether it was the first."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = mlflow.register_model(model_uri, name)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    try:
        client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        client.set_registered_model_alias(name, CHAMPION, version.version)
        client.set_model_version_tag(
            name, version.version, "promotion", "first version: champion by default"
        )
        return str(version.version), True
    return str(version.version), False
