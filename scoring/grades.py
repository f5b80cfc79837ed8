"""The grade an officer acts on: it moves on evidence, not on noise.

The point-in-time PD (`pd_12m`) moves with every invoice paid; a limit that followed it would move
every month. The *decision PD* is the point-in-time PD smoothed over the runs in log-odds — a
weight `smoothing` for a month's news, scaled to the days since the previous run — and the grade
leaves its band only once the decision PD has passed the band's edge by a margin of log-odds
(`hysteresis_worse` towards a worse grade, the larger `hysteresis_better` towards a better one:
quick to downgrade, slow to upgrade), and then by at most `max_step` notches a run. A hard event (an invoice newly `hard_event_dpd`
days past due, a new statement with negative equity, a default) moves both at once: the
decision PD is then never below the point-in-time one, and the grade goes where it falls.
Expected loss keeps the point-in-time PD; grade, limit and warnings read the decision PD.
"""

from __future__ import annotations

import numpy as np

from scoring.bundle import MasterScale
from scoring.policy import GradePolicy

MONTH_DAYS = 30.44
_EPS = 1e-9


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def decision_pd(
    pit: np.ndarray,
    previous: np.ndarray,
    days_since: np.ndarray,
    hard_event: np.ndarray,
    policy: GradePolicy,
) -> np.ndarray:
    """The decision PD of each client: `previous` (NaN: no history, the point-in-time PD is
    taken) moved towards `pit` by the smoothing weight for `days_since` days."""
    pit = np.asarray(pit, dtype="float64")
    previous = np.asarray(previous, dtype="float64")
    known = np.isfinite(previous) & np.isfinite(days_since) & (days_since > 0)
    months = np.where(known, days_since, 0.0) / MONTH_DAYS
    weight = 1.0 - (1.0 - policy.smoothing) ** months
    smoothed = np.where(
        known,
        _sigmoid(weight * _logit(pit) + (1 - weight) * _logit(np.where(known, previous, pit))),
        pit,
    )
    return np.where(hard_event, np.maximum(smoothed, pit), smoothed)


def decision_grade(
    pd_: np.ndarray,
    previous_grade: np.ndarray,
    hard_event: np.ndarray,
    scale: MasterScale,
    policy: GradePolicy,
) -> np.ndarray:
    """The master-scale grade of the decision PD, kept at `previous_grade` (0: none) while the
    PD stays within that grade's band widened by the hysteresis, else moved towards it by at
    most `max_step` notches (a hard event: straight to it)."""
    grade = scale.grade(pd_)
    prev = np.asarray(previous_grade, dtype=np.int64)
    upper = np.asarray(scale.upper, dtype="float64")
    has = (prev >= 1) & (prev <= len(upper)) & ~np.asarray(hard_event, dtype=bool)
    g = np.clip(prev, 1, len(upper)) - 1
    low_edge = np.where(g > 0, upper[np.maximum(g - 1, 0)], 0.0)
    high_edge = upper[g]
    z = _logit(pd_)
    inside = ((g == 0) | (z > _logit(low_edge) - policy.hysteresis_better)) & (
        (high_edge >= 1.0) | (z <= _logit(high_edge) + policy.hysteresis_worse)
    )
    grade = np.where(has & inside, prev, grade)
    step = policy.max_step
    return np.where(has, np.clip(grade, prev - step, prev + step), grade)
