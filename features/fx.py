"""Exchange rates to the reporting currency, as known on a day: the one lookup every consumer
(features, open invoices, DSO, the cash forecast) converts amounts with.

A ledger's optional `fx_rates` table gives, per currency and date, how many units of the reporting
currency one unit of the currency was worth. The rate *known on* a day is the latest one dated on
or before it, never a later one; the reporting currency itself converts at 1. A ledger in one
currency has no rates and converts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.arrays import index_in
from features.errors import InputError

_SPAN = 10_000_000  # days since 1970 stay below this: a (currency, day) key as one integer


def _days(values: pd.Series | np.ndarray) -> np.ndarray:
    raw = np.asarray(values, dtype="datetime64[D]")
    out = raw.astype("int64").astype("float64")
    out[np.isnat(raw)] = np.nan
    return out


@dataclass(frozen=True)
class Rates:
    """A rates table indexed for lookups by (currency, day)."""

    reporting: str | None
    currencies: np.ndarray  # the codes that have rates, sorted
    keys: np.ndarray  # code index * _SPAN + day, sorted
    rates: np.ndarray

    @classmethod
    def of(cls, table: pd.DataFrame, reporting: str | None) -> Rates:
        """`table`: the contract's fx_rates (date, currency, rate), valid rows only."""
        table = table[table["currency"] != reporting] if reporting else table
        currencies = np.sort(table["currency"].dropna().unique().astype(object))
        code = index_in(table["currency"], currencies).astype("int64")
        keys = code * _SPAN + np.nan_to_num(_days(table["date"]), nan=-1).astype("int64")
        order = np.argsort(keys, kind="stable")
        return cls(reporting, currencies, keys[order], table["rate"].to_numpy("float64")[order])

    @property
    def converts(self) -> bool:
        """Whether any amount needs a rate (a ledger with rates for another currency)."""
        return len(self.currencies) > 0

    def codes(self, currencies: pd.Series | np.ndarray) -> np.ndarray:
        """Each currency's code for `at`: -1 for the reporting currency (rate 1), -2 for a
        currency without rates."""
        values = pd.Series(np.asarray(currencies, dtype=object))
        code = index_in(values, self.currencies).astype("int64")
        code[code < 0] = -2
        code[(values == self.reporting).to_numpy() | values.isna().to_numpy()] = -1
        return code

    def at(self, codes: np.ndarray, days: np.ndarray | float) -> np.ndarray:
        """The rate of each code known on its day (days since 1970): the latest rate dated on or
        before it; 1 for the reporting currency; NaN where there is none."""
        days = np.broadcast_to(np.asarray(days, dtype="float64"), codes.shape)
        out = np.ones(len(codes))
        foreign = codes != -1
        if not foreign.any():
            return out
        if not len(self.keys):  # no rates at all: every foreign amount has none
            out[foreign] = np.nan
            return out
        c, d = codes[foreign], days[foreign]
        query = c * _SPAN + np.nan_to_num(d, nan=-1).astype("int64")
        idx = np.searchsorted(self.keys, query, side="right") - 1
        found = (c >= 0) & (idx >= 0) & (self.keys[np.clip(idx, 0, None)] // _SPAN == c)
        found &= ~np.isnan(d)
        out[foreign] = np.where(found, self.rates[np.clip(idx, 0, None)], np.nan)
        return out

    def on(self, currencies: pd.Series | np.ndarray, dates: pd.Series | pd.Timestamp) -> np.ndarray:
        """The rate of each currency known on its date (or on one date for all)."""
        if isinstance(dates, pd.Timestamp):
            days: np.ndarray | float = float((dates.normalize() - pd.Timestamp("1970-01-01")).days)
        else:
            days = _days(dates)
        return self.at(self.codes(currencies), days)


def no_rates(reporting: str | None = None) -> Rates:
    """Rates of a ledger in one currency: everything converts at 1."""
    empty = np.zeros(0, dtype="int64")
    return Rates(reporting, np.array([], dtype=object), empty, np.zeros(0))


def resolve_reporting(given: str | None, currencies: set[str]) -> str | None:
    """The reporting currency: the one given, else the ledger's only currency (None: no
    invoices). Several currencies without one is an error that says where to give it."""
    if given:
        return given
    if len(currencies) > 1:
        shown = ", ".join(sorted(currencies)[:8])
        raise InputError(
            f"the ledger's invoices are in {len(currencies)} currencies ({shown}): give the "
            'reporting currency ("reporting_currency" in the ledger\'s manifest.json)'
        )
    return next(iter(currencies), None)
