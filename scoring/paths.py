"""Where the version-controlled policy files and the default model store live."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "models"  # policy YAML files; the embedded MLflow store (git-ignored)
