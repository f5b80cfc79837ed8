"""What an invoice owes past due on a day, with or without an instalment schedule: the one rule the
features, the open invoices, the aging and the late interest read.

An invoice without a schedule is overdue in full from the day after its due date. An invoice with
one (the `instalments` table) owes each instalment from its own due date; what was received is
set against the instalments in date order. On a day it owes past due the instalments due before
that day less what was received, is overdue since the due date of the first instalment not yet
covered, and its late amount-days (the base of late interest) add each overdue instalment's
unpaid part times the days since its due date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SPAN = 10_000_000  # days since 1970 stay below this: an (invoice, day) key as one integer


@dataclass(frozen=True)
class Schedules:
    """Instalments of some invoices, sorted by invoice (its position in a table) then due day."""

    owner: np.ndarray  # int64 invoice position of each instalment
    due: np.ndarray  # float days since 1970
    amount: np.ndarray
    cum: np.ndarray  # running total over all instalments (so within an invoice, from its base)
    keys: np.ndarray  # owner * _SPAN + due

    @classmethod
    def of(cls, owner: np.ndarray, due: np.ndarray, amount: np.ndarray) -> Schedules:
        keep = owner >= 0
        owner, due, amount = owner[keep].astype(np.int64), due[keep], amount[keep]
        order = np.lexsort((due, owner))
        owner, due, amount = owner[order], due[order], amount[order]
        keys = owner * _SPAN + due.astype(np.int64)
        return cls(owner, due, amount, np.cumsum(amount), keys)

    @classmethod
    def none(cls) -> Schedules:
        empty = np.zeros(0)
        return cls(np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.owner)

    def overdue(
        self,
        invoices: np.ndarray,
        due: np.ndarray,
        outstanding: np.ndarray,
        received: np.ndarray,
        day: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For open invoices (positions `invoices`, their final `due` day, what they still owe
        and what was received before `day`): the day they are overdue since (their due day when
        nothing is overdue yet), the amount past due, and the late amount-days."""
        late_days = np.maximum(day - due - 1, 0.0)
        since = due.astype("float64").copy()
        past = np.where(due < day, outstanding, 0.0)
        amount_days = past * late_days
        if not len(self) or not len(invoices):
            return since, past, amount_days
        start = np.searchsorted(self.owner, invoices, side="left")
        end = np.searchsorted(self.owner, invoices, side="right")
        has = end > start
        if not has.any():
            return since, past, amount_days
        i, s, e = np.flatnonzero(has), start[has], end[has]
        base = np.where(s > 0, self.cum[np.maximum(s - 1, 0)], 0.0)
        paid = base + received[i]
        # the first instalment not covered by what was received (the last one if all are)
        first = np.clip(np.searchsorted(self.cum, paid + 0.005, side="right"), s, e - 1)
        since[i] = self.due[first]
        # the instalments due before `day`: [s, upto)
        upto = np.clip(
            np.searchsorted(self.keys, invoices[i] * _SPAN + int(day), side="left"), s, e
        )
        owed = np.where(upto > s, self.cum[np.maximum(upto - 1, 0)], base) - base
        past[i] = np.clip(owed - received[i], 0.0, outstanding[i])
        lengths = upto - s
        rows = np.repeat(s - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        which = np.repeat(np.arange(len(i)), lengths)
        before = np.where(rows > 0, self.cum[np.maximum(rows - 1, 0)], 0.0)
        unpaid = np.clip(self.cum[rows] - np.maximum(paid[which], before), 0.0, self.amount[rows])
        days = np.maximum(day - self.due[rows] - 1, 0.0)
        amount_days[i] = np.bincount(which, unpaid * days, minlength=len(i))
        return since, past, amount_days
