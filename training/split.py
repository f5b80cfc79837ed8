"""Folds (stratified, grouped by client where there are clients) and the clients held out for a test."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


def stratified_folds(
    y: pd.Series | np.ndarray,
    *,
    folds: int,
    seed: int,
    groups: pd.Series | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) positions of a stratified k-fold split; with `groups` (e.g. client ids) no
    group has rows on both sides of any fold."""
    if groups is None:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(y)), np.asarray(y)))
    grouped = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(grouped.split(np.zeros(len(y)), np.asarray(y), np.asarray(groups)))


def held_out_groups(groups: pd.Series, *, seed: int, test_share: float) -> np.ndarray:
    """Each row's side by its group (a client): 'test' for `test_share` of the groups, 'train'
    for the rest. A seeded hash of the group id decides, so a client is on the same side in every
    table and run trained with the same seed (the default and late models hold out the same
    clients)."""
    ids = groups.astype("string").fillna("").to_numpy(dtype=object)
    digest = pd.util.hash_array(ids, hash_key=f"creditguard{seed:05d}"[:16])
    return np.where(digest / np.float64(2.0**64) < test_share, "test", "train")
