"""Payment timing and the 13-week cash-collection forecast.

The timing model (`creditguard-timing`, a model bundle like the others, its booster a LightGBM
multi-class model) gives each invoice, from its features at issue, the probability of each
settlement bucket of `features.labels.TIMING_EDGES`: paid 8+ days early, up to the due date,
1-7 days late, ... 91-180 days late, or not within 180 days. Within a bucket the settlement day is
spread evenly over the bucket's days (the first bucket from 30 days before the due date).

An invoice still open at the forecast date cannot have been settled before it: the days before
are dropped and the rest renormalised (with the "not within 180 days" share kept). What is left
becomes the chance of settlement in each of the next 13 weeks, times the amount outstanding: the
expected receipts. The 80 % interval comes from simulating settlements, a client's invoices
moving together (one draw per client and simulation, seeded by the client id, so that any split
of the clients into chunks gives the same figures), because a client that pays late pays all its
invoices late.
"""

from __future__ import annotations

import zlib
from itertools import pairwise

import numpy as np
import pandas as pd

from features.labels import TIMING_EARLIEST, TIMING_EDGES, TIMING_NEVER
from scoring.bundle import ModelBundle

WEEKS = 13
HORIZON_DAYS = 7 * WEEKS
DRAWS = 200  # simulations for the interval
DRAW_BLOCK = 25
ROW_BLOCK = 4096
INTERVAL = (0.10, 0.90)  # an 80 % interval
BUCKETS = TIMING_NEVER + 1

# the days-late grid every bucket spreads over: TIMING_EARLIEST .. the last edge
_GRID = np.arange(TIMING_EARLIEST, TIMING_EDGES[-1] + 1)
_GRID_BUCKET = np.searchsorted(np.asarray(TIMING_EDGES), _GRID, side="left")
_WIDTH = np.bincount(_GRID_BUCKET, minlength=BUCKETS).astype("float64")


def bucket_labels() -> list[str]:
    """The buckets in words."""
    edges = TIMING_EDGES
    out = [f"{-edges[0] + 1}+ days early"]
    for lo, hi in pairwise(edges):
        out.append("up to the due date" if hi == 0 else f"{lo + 1}-{hi} days late")
    out.append(f"not within {edges[-1]} days")
    return out


def bucket_probabilities(bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    """Rows x buckets: the model's probability of each settlement bucket."""
    if len(x) == 0:
        return np.zeros((0, BUCKETS))
    p = np.asarray(bundle.booster.predict(x, num_threads=1), dtype="float64")
    return p.reshape(len(x), BUCKETS)


def weekly_settlement(
    probabilities: np.ndarray, due_on: pd.Series, as_of: pd.Timestamp
) -> np.ndarray:
    """Rows x 14: the chance each invoice, open at `as_of`, is settled in week 1..13 after it
    (week 1 is as_of .. as_of + 6 days), and last, later or never. Computed a block of rows at
    a time (a chunk's 30,000 invoices x the 211-day grid would be ~50 MB per array)."""
    n = len(probabilities)
    out = np.zeros((n, WEEKS + 1))
    late_now = (as_of - pd.DatetimeIndex(due_on)).days.to_numpy()  # days late at as_of
    for start in range(0, n, ROW_BLOCK):
        rows = slice(start, min(n, start + ROW_BLOCK))
        p = probabilities[rows]
        density = p[:, _GRID_BUCKET] / _WIDTH[_GRID_BUCKET]  # per day of the grid
        day = _GRID[None, :] - late_now[rows, None]  # days after as_of of each grid day
        kept = np.where(day >= 0, density, 0.0)
        total = kept.sum(axis=1) + p[:, TIMING_NEVER]
        total = np.where(total > 0, total, 1.0)
        week = np.where((day >= 0) & (day < HORIZON_DAYS), day // 7, WEEKS)
        cell = np.arange(len(p))[:, None] * (WEEKS + 1) + week  # (row, week) as one index
        block = np.bincount(cell.ravel(), kept.ravel(), minlength=len(p) * (WEEKS + 1))
        out[rows, :WEEKS] = block.reshape(len(p), WEEKS + 1)[:, :WEEKS] / total[:, None]
    out[:, WEEKS] = 1.0 - out[:, :WEEKS].sum(axis=1)
    return np.clip(out, 0.0, 1.0)


def invoice_weeks(
    bundle: ModelBundle,
    at_issue: pd.DataFrame,
    due_on: pd.Series,
    as_of: pd.Timestamp,
    insolvent: np.ndarray,
) -> np.ndarray:
    """Rows x 14 (`weekly_settlement`) for open invoices from their features at issue; an
    invoice of an insolvent client settles in none of the 13 weeks (what it yields comes from
    the insolvency proceedings or the insurer, on no schedule). Other clients in default keep
    the model's distribution: on the backtest's ledger they paid 57 % of their open balance
    within 13 weeks, and counting nothing from them made the forecast worse."""
    weekly = weekly_settlement(bucket_probabilities(bundle, bundle.matrix(at_issue)), due_on, as_of)
    weekly[insolvent, :WEEKS] = 0.0
    weekly[insolvent, WEEKS] = 1.0
    return weekly


def _client_uniforms(client_ids: np.ndarray, draws: int) -> np.ndarray:
    """Clients x draws uniforms, each client's from a generator seeded by its id."""
    out = np.empty((len(client_ids), draws))
    for i, cid in enumerate(client_ids):
        seed = zlib.crc32(str(cid).encode("utf-8"))
        out[i] = np.random.default_rng(seed).random(draws)
    return out


def simulate(
    weekly: np.ndarray, outstanding: np.ndarray, client_id: np.ndarray, draws: int = DRAWS
) -> np.ndarray:
    """Draws x 13: simulated receipts per week; an invoice settles in the week where its
    client's uniform falls in its cumulative weekly distribution (later or never: no receipt)."""
    out = np.zeros((draws, WEEKS))
    if len(weekly) == 0:
        return out
    clients, code = np.unique(client_id.astype(str), return_inverse=True)
    uniforms = _client_uniforms(clients, draws)  # clients x draws
    cumulative = np.cumsum(weekly, axis=1)[:, :WEEKS]  # invoices x 13
    # a block of draws at a time: invoices x draws x weeks would be ~80 MB for a chunk
    for start in range(0, draws, DRAW_BLOCK):
        u = uniforms[code, start : start + DRAW_BLOCK]  # invoices x block
        # the settlement week of each invoice in each draw: the first whose cumulative share
        # exceeds the draw (13: later or never)
        week = np.zeros(u.shape, dtype=np.int64)
        for w in range(WEEKS):
            week += u >= cumulative[:, w : w + 1]
        for w in range(WEEKS):
            out[start : start + u.shape[1], w] = ((week == w) * outstanding[:, None]).sum(axis=0)
    return out


def forecast_frame(
    expected: dict[str, np.ndarray],
    simulated: dict[str, np.ndarray],
    as_of: pd.Timestamp,
    units: dict[str, str] | None = None,
) -> pd.DataFrame:
    """One row per currency and week: expected receipts and the 80 % interval, and the `unit`
    they are in (a currency's own, or `units`' for another key such as the all-currency total)."""
    rows = []
    for currency in sorted(expected):
        low, high = np.quantile(simulated[currency], INTERVAL, axis=0)
        for w in range(WEEKS):
            start = as_of + pd.Timedelta(days=7 * w)
            rows.append(
                {
                    "currency": currency,
                    "unit": (units or {}).get(currency, currency),
                    "week": w + 1,
                    "week_start": start,
                    "week_end": start + pd.Timedelta(days=6),
                    "expected": float(expected[currency][w]),
                    "low": float(low[w]),
                    "high": float(high[w]),
                }
            )
    columns = ["currency", "unit", "week", "week_start", "week_end", "expected", "low", "high"]
    return pd.DataFrame(rows, columns=columns)
