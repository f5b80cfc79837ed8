"""The model store, read side: where MLflow lives, the registered models' names, and a bundle
loaded by alias or version (training writes the store; everyone else only reads it)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from scoring.bundle import BundleFormatError, ModelBundle
from scoring.paths import MODELS_DIR

DEFAULT_MODEL = "creditguard-default"  # PD within 12 months, per client
LATE_MODEL = "creditguard-late"  # late payment, per invoice at issue
TIMING_MODEL = "creditguard-timing"  # settlement-day buckets, per invoice at issue
CHAMPION, CHALLENGER = "champion", "challenger"  # registry aliases
BUNDLE_ARTIFACT = "bundle"  # the model's artifact (a folder) that holds the saved bundle


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else the embedded SQLite store under models/."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{MODELS_DIR / 'mlflow.db'}"


def connect() -> None:
    """Point MLflow's tracking and registry at the store (no experiment is created)."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def resolve_version(model: str, ref: str) -> str:
    """The version number behind an alias (or the version itself)."""
    from mlflow import MlflowClient

    ref = str(ref)
    if ref.isdigit():
        return ref
    connect()
    return str(MlflowClient().get_model_version_by_alias(model, ref).version)


def load_bundle(model: str, ref: str) -> ModelBundle:
    """The bundle of `models:/NAME@alias` or `models:/NAME/version`, read as plain data from the
    model's artifacts (only the bundle is fetched; no pyfunc wrapper, nothing unpickled)."""
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    version = resolve_version(model, ref)
    repo = ModelsArtifactRepository(f"models:/{model}/{version}")
    with tempfile.TemporaryDirectory(prefix="creditguard-bundle-") as tmp:
        saved = [a.path for a in repo.list_artifacts("artifacts")]
        if f"artifacts/{BUNDLE_ARTIFACT}" not in saved:
            raise BundleFormatError(
                f"{model} version {version} was registered by an earlier creditguard, which "
                "pickled its models; this one reads plain-data bundles only: retrain it (`make "
                "demo`, or `creditguard train` and `creditguard promote`)"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            folder = repo.download_artifacts(f"artifacts/{BUNDLE_ARTIFACT}", dst_path=tmp)
        try:
            return ModelBundle.load(Path(folder))
        except BundleFormatError as exc:
            raise BundleFormatError(f"{model} version {version}: {exc}") from None
