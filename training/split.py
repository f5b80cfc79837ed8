"""Out-of-time splits for ledger data, stratified folds for plain tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold


def split_by_time(
    times: pd.Series, *, validation_fraction: float, test_fraction: float
) -> pd.Series:
    """'train' / 'validation' / 'test' by date: the latest dates are the test window, the ones
    before it validation. Rows of one date always land in the same part."""
    dates = np.sort(times.unique())
    n = len(dates)
    if n < 2 + (test_fraction > 0):
        raise ValueError(f"an out-of-time split needs at least 3 distinct dates, got {n}")
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    n_val = max(1, round(n * validation_fraction))
    val_from = dates[max(1, n - n_test - n_val)]
    is_test = times >= dates[n - n_test] if n_test else np.zeros(len(times), dtype=bool)
    part = np.where(is_test, "test", np.where(times >= val_from, "validation", "train"))
    return pd.Series(part, index=times.index, name="part")


def stratified_folds(
    y: pd.Series | np.ndarray, *, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positions of a stratified k-fold split."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), np.asarray(y)))
