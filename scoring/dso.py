"""Days sales outstanding and its relatives, by month: the one definition the run's report, its
`dso.parquet`, the clients table and the officer's page all read.

For a month m (calendar month, ending on day e):

- receivables AR(m): what was outstanding on invoices open at the end of e (`is_open` at e + 1,
  dated payments before e + 1 deducted); current receivables CR(m): the part not yet due then;
- credit sales S(m): the amounts of the invoices issued in the month;
- standard DSO(m) = AR(m) / (S(m-2) + S(m-1) + S(m)) x the days of those three months (a
  90-day DSO: one month's sales make the figure jump with seasonality);
- countback DSO(m): walk back from m, taking whole months' sales off AR(m) while they last (each
  adds its days), then the share of the month that is left (AR 150 against sales of 100 in a
  30-day month and 100 in the 31-day one before: 30 + 31 x 50/100 = 45.5 days); when the history
  runs out first, the days counted so far (a lower bound);
- best possible DSO(m) = CR(m) / the same three months' sales x their days: the DSO if every
  client paid exactly on time;
- average days delinquent ADD(m) = DSO(m) - best possible DSO(m): the days that late payment
  adds.

A group's figures (portfolio, segment) come from the sums of its clients' AR, CR and S, never
from an average of the clients' DSOs. No sales in the three months: DSO undefined (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.contract import Ledger, is_open

WINDOW_MONTHS = 3  # standard and best possible DSO: receivables against 3 months of sales
HISTORY_MONTHS = 24  # months of positions a run keeps (and countback may walk)
MEASURES = ("dso", "countback_dso", "best_possible_dso", "average_days_delinquent")
POSITION_COLUMNS = ("sales", "receivables", "current")


def month_ends_before(as_of: pd.Timestamp, months: int = HISTORY_MONTHS) -> pd.DatetimeIndex:
    """The last `months` month-ends whose day after is on or before `as_of` (complete months
    known at `as_of`), oldest first."""
    last = (pd.Timestamp(as_of) - pd.Timedelta(days=1)).normalize()
    if not last.is_month_end:
        last = last - pd.offsets.MonthEnd(1)
    return pd.date_range(end=last, periods=months, freq="ME")


def monthly_positions(
    ledger: Ledger, as_of: pd.Timestamp, months: int = HISTORY_MONTHS
) -> pd.DataFrame:
    """Per client and month-end before `as_of`: credit sales in the month, receivables and
    current receivables at its end. Only what was known at each month's end is read (invoices
    issued, payments made and write-offs before the next day), amounts in the reporting currency
    at the rate known that day (`features.fx`). Clients with nothing in a month have zeros."""
    ends = month_ends_before(as_of, months)
    clients = np.sort(ledger.clients["client_id"].to_numpy(dtype=object))
    inv = ledger.invoices
    inv_client = pd.Index(clients).get_indexer(inv["client_id"])
    keep = inv_client >= 0
    inv, inv_client = inv.loc[keep], inv_client[keep]
    issued = inv["issued_on"].to_numpy(dtype="datetime64[D]")
    due = inv["due_on"].to_numpy(dtype="datetime64[D]")
    paid = inv["paid_on"].to_numpy(dtype="datetime64[D]")
    written_off = inv["written_off_on"].to_numpy(dtype="datetime64[D]")
    amount = inv["amount"].to_numpy(dtype="float64")
    pay = ledger.payments
    pay_inv = pd.Index(inv["invoice_id"]).get_indexer(pay["invoice_id"])
    pay_keep = pay_inv >= 0
    pay_inv = pay_inv[pay_keep]
    pay_day = pay["paid_on"].to_numpy(dtype="datetime64[D]")[pay_keep]
    pay_amount = pay["amount"].to_numpy(dtype="float64")[pay_keep]
    n, k = len(clients), len(ends)
    sales = np.zeros((n, k))
    receivables = np.zeros((n, k))
    current = np.zeros((n, k))
    month_start = (ends - pd.offsets.MonthBegin(1)).to_numpy(dtype="datetime64[D]")
    rates = ledger.rates if ledger.rates.converts else None
    codes = rates.codes(inv["currency"].to_numpy(dtype=object)) if rates is not None else None
    for j, end in enumerate(ends.to_numpy(dtype="datetime64[D]")):
        day = end + np.timedelta64(1, "D")
        fx = 1.0
        if rates is not None and codes is not None:
            fx = np.nan_to_num(rates.at(codes, float(day.astype("int64"))), nan=0.0)
        in_month = (issued >= month_start[j]) & (issued < day)
        value = amount * fx
        sales[:, j] = np.bincount(inv_client[in_month], value[in_month], minlength=n)
        open_now = is_open(issued, paid, written_off, day)
        received = np.bincount(pay_inv[pay_day < day], pay_amount[pay_day < day], len(amount))
        outstanding = np.where(open_now, np.maximum(amount - received, 0.0), 0.0) * fx
        receivables[:, j] = np.bincount(inv_client, outstanding, minlength=n)
        not_due = open_now & (due >= day)
        current[:, j] = np.bincount(inv_client[not_due], outstanding[not_due], minlength=n)
    return pd.DataFrame(
        {
            "client_id": np.repeat(clients, k),
            "month": np.tile(ends.to_numpy(dtype="datetime64[us]"), n),
            "sales": sales.ravel(),
            "receivables": receivables.ravel(),
            "current": current.ravel(),
        }
    )


def _window_days(months: pd.DatetimeIndex) -> np.ndarray:
    """Days in each month and the two before it."""
    days = months.days_in_month.to_numpy(dtype="float64")
    before = (months - pd.offsets.MonthEnd(1)).days_in_month.to_numpy(dtype="float64")
    two_before = (months - pd.offsets.MonthEnd(2)).days_in_month.to_numpy(dtype="float64")
    return days + before + two_before


def _countback(receivables: np.ndarray, sales: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Countback DSO for each group (row) and month (column) from monthly sales, oldest first."""
    out = np.zeros_like(receivables)
    for t in range(receivables.shape[1]):
        left = receivables[:, t].copy()
        for back in range(t, -1, -1):
            s = sales[:, back]
            whole = (left > 0) & (left >= s)  # a month without sales counts whole
            part = (left > 0) & (left < s)
            out[whole, t] += days[back]
            out[part, t] += days[back] * left[part] / s[part]
            left = np.where(whole, left - s, np.where(part, 0.0, left))
            if not (left > 0).any():
                break
    return out


def dso_measures(positions: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """The four measures per group of `by` (none: the whole frame) and month, from positions with
    columns month, sales, receivables, current (summed over the group's clients first)."""
    keys = [*by, "month"]
    sums = positions.groupby(keys, sort=True, observed=True)[list(POSITION_COLUMNS)].sum()
    sums = sums.reset_index()
    months = pd.DatetimeIndex(np.sort(sums["month"].unique()))
    if by:
        code = sums.groupby(list(by), sort=True, observed=True).ngroup().to_numpy()
        groups = sums[list(by)].drop_duplicates().reset_index(drop=True)
    else:
        code = np.zeros(len(sums), dtype=np.int64)
        groups = pd.DataFrame(index=[0])
    at = months.get_indexer(sums["month"])
    wide = {}
    for column in POSITION_COLUMNS:
        table = np.zeros((len(groups), len(months)))
        table[code, at] = sums[column].to_numpy(dtype="float64")
        wide[column] = table
    sales, receivables, current = wide["sales"], wide["receivables"], wide["current"]
    window = np.zeros_like(sales)
    for lag in range(WINDOW_MONTHS):
        window[:, lag:] += sales[:, : sales.shape[1] - lag]
    complete = np.arange(len(months)) >= WINDOW_MONTHS - 1  # three months of sales known
    days = _window_days(months)
    with np.errstate(divide="ignore", invalid="ignore"):
        dso = np.where((window > 0) & complete, receivables / window * days, np.nan)
        best = np.where((window > 0) & complete, current / window * days, np.nan)
    countback = _countback(receivables, sales, months.days_in_month.to_numpy(dtype="float64"))
    countback = np.where(receivables > 0, countback, 0.0)
    countback[:, ~complete] = np.nan
    frame = pd.DataFrame(
        {
            "month": np.tile(months.to_numpy(dtype="datetime64[us]"), len(groups)),
            "sales": sales.ravel(),
            "sales_3m": window.ravel(),
            "receivables": receivables.ravel(),
            "current": current.ravel(),
            "dso": dso.ravel(),
            "countback_dso": countback.ravel(),
            "best_possible_dso": best.ravel(),
            "average_days_delinquent": (dso - best).ravel(),
        }
    )
    for column in reversed(list(by)):
        frame.insert(0, column, np.repeat(groups[column].to_numpy(), len(months)))
    return frame


def dso_record(row: pd.Series) -> dict[str, object]:
    """One row of `dso_measures` as JSON-ready values (a measure without sales: None); what the
    report and the officer's page show."""
    measures = {m: None if pd.isna(row[m]) else float(row[m]) for m in MEASURES}
    return {
        "month": str(pd.Timestamp(row["month"]).date()),
        "receivables": float(row["receivables"]),
        "sales_3m": float(row["sales_3m"]),
        **measures,
    }
