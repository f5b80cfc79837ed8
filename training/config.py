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
    # Ledger splits: training rows whose as_of falls within this many days before the test window
    # are dropped, so that no training outcome window reaches into the test's. With the clients
    # held out, what overlaps is only the calendar both sides share (a downturn); a 12-month label
    # needs 365 to purge that too, which a ledger of three years cannot afford.
    gap_days: int = 0
    test_fraction: float = 0.2  # of the distinct dates: the out-of-time test window
    # Ledger models are tested on clients they never learned from: this share of the clients (the
    # spec's group column) is held out by a seeded hash; the others' earlier rows train, searched
    # by k-fold CV grouped by client. No client is on both sides of a fold or of the test.
    test_clients: float = 0.2
    # the folds of the search (both modes) and of table mode's evaluation
    cv_folds: int = 5
    monotone: bool = True  # constraints from the feature catalog's risk directions
    # ... and from directions inferred on the training rows for features without one
    # (`training.directions`)
    infer_directions: bool = True
    # the scorecard and a blend of it with the booster are candidates beside the booster alone,
    # chosen by the same inner validation (`training.train._fit_one`)
    blend: bool = True
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
