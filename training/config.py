"""Training configuration: one frozen object, loaded from a YAML file or built in code."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained, searched, calibrated and judged."""

    seed: int = 0
    n_trials: int = 12  # optuna trials; each trains with early stopping
    max_rounds: int = 600
    early_stopping_rounds: int = 40
    learning_rate: float = 0.05  # during the search
    # the winner is refitted at this fraction of the search's learning rate (1 = no refit)
    refit_learning_rate_factor: float = 0.4
    # Ledger splits: rows whose as_of falls within this many days before the next part starts are
    # dropped (train before validation, validation before test), so that no outcome window of an
    # earlier part reaches into a later one. A 12-month label needs 365 for a fully honest estimate;
    # 0 keeps every row (outcome windows overlap; common practice, mildly optimistic).
    gap_days: int = 0
    validation_fraction: float = 0.2  # of the distinct dates (out-of-time split)
    test_fraction: float = 0.2
    # table mode without a time column: the folds of its evaluation and of the search within it
    cv_folds: int = 5
    monotone: bool = True  # constraints from the feature catalog's risk directions
    # LightGBM's way of enforcing them: "intermediate" fits better, but LightGBM can break its own
    # constraints with it (seen on real data: a tree splitting twice on a constrained feature with
    # its leaves out of order); a model that fails the check is then refitted with "basic", whose
    # bounds hold by construction. If that too fails the check, the run fails.
    monotone_method: str = "intermediate"
    threads: int = 2
    promotion_auc_tolerance: float = 0.005
    promotion_ece_tolerance: float = 0.005
    shap_sample: int = 2000
    # Large tables: the search and the scorecard benchmark see at most this many training rows
    # (a seeded random sample); the winner is then refitted on every training row at the fine
    # learning rate. Smaller tables are untouched. A search trial costs time in proportion to rows,
    # and ranking hyper-parameters does not need every row of a million-row table.
    search_rows: int = 120_000

    @classmethod
    def load(cls, path: Path | str) -> TrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown training option(s) in {path}: {', '.join(sorted(unknown))}")
        return cls(**raw)
