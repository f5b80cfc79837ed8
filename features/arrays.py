"""Fast membership and lookup on string columns, through Arrow (pandas' own isin on Arrow strings
loops in Python: 5 s for two million ids)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _arrow(values: pd.Series | pd.Index | np.ndarray | Iterable[object]) -> pa.Array:
    if isinstance(values, pd.Series | pd.Index):
        values = values.astype("str") if values.dtype != "str" else values
        return pa.array(
            values.array if isinstance(values, pd.Series) else values.to_numpy(), from_pandas=True
        )
    return pa.array(
        list(values) if not isinstance(values, np.ndarray) else values,
        type=pa.string(),
        from_pandas=True,
    )


def isin(
    values: pd.Series | pd.Index, allowed: pd.Series | pd.Index | np.ndarray | Iterable[object]
) -> np.ndarray:
    """Boolean array: whether each value is one of `allowed` (missing values are not)."""
    if len(values) == 0:
        return np.zeros(0, dtype=bool)
    result = pc.is_in(_arrow(values), value_set=_arrow(allowed), skip_nulls=True)
    return np.asarray(result.to_numpy(zero_copy_only=False), dtype=bool)


def index_in(
    values: pd.Series | pd.Index, universe: pd.Series | pd.Index | np.ndarray
) -> np.ndarray:
    """Position of each value in `universe` (unique), or -1 where absent."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    result = pc.index_in(_arrow(values), value_set=_arrow(universe), skip_nulls=True)
    return np.asarray(result.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def take(values: np.ndarray, at: np.ndarray, missing: object) -> np.ndarray:
    """values[at], and `missing` where at is -1 (an `index_in` position of an absent value)."""
    out = np.full(len(at), missing, dtype=values.dtype)
    found = at >= 0
    out[found] = values[at[found]]
    return out


def no_repeats(values: pd.Series) -> bool:
    """Whether no present value occurs twice (missing values aside)."""
    present = values.dropna()
    if len(present) == 0:
        return True
    if present.dtype == "str":
        return bool(pc.count_distinct(_arrow(present)).as_py() == len(present))
    return bool(present.is_unique)
