"""Point-in-time client features: payment behaviour, trend, exposure, volume, relationship,
financials and firmographics, as known strictly before `as_of`.

One engine serves every consumer. `_features_at` computes the features of a set of clients at one
date, vectorised across clients with numpy; client snapshots call it once per `as_of`, invoices at
issue once per issue date, and the service once for one client. Every value it reads is filtered on
its own date: an invoice exists only if issued before `as_of`, is paid only if `paid_on < as_of`, a
payment counts only if made before `as_of`, a statement only if published before `as_of`. The
`disputed` flag carries no date, so it is only read for invoices settled before `as_of`, and an
invoice's final `paid_amount` only once it is settled; open balances come from dated payments.
Amounts in another currency than the reporting one are converted at the rate known on `as_of`
(`features.fx`: the latest dated on or before it), an invoice's own amount at issue at the rate
known on its issue date; statements and registered capital are taken as reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.arrays import index_in, isin
from features.catalog import AGING, WINDOWS, client_feature_specs
from features.contract import STATEMENT_AMOUNTS, Ledger, is_open
from features.country_risk import country_risk_class
from features.fx import Rates
from features.instalments import Schedules

EPOCH = np.datetime64("1970-01-01", "D")
PAYDEX_DAYS = np.array([-20.0, -10.0, 0.0, 15.0, 22.0, 30.0, 60.0, 90.0, 120.0, 180.0])
PAYDEX_SCORE = np.array([100.0, 90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0, 1.0])
RATING_SCORE = {
    r: i + 1
    for i, r in enumerate(
        ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D"],
    )
}
THIN_FILE_PAID_INVOICES = 6
THIN_FILE_TENURE_DAYS = 180
# --------------------------------------------------------------------------------------------
# The ledger as flat arrays


def _days(values: pd.Series) -> np.ndarray:
    """Dates as float days since 1970 (NaN for missing), so `x < as_of` is False for missing x."""
    raw = values.to_numpy(dtype="datetime64[D]")
    out = raw.astype("int64").astype("float64")
    out[np.isnat(raw)] = np.nan
    return out


def _to_day(value: object) -> float:
    return float((pd.Timestamp(value).normalize() - pd.Timestamp("1970-01-01")).days)


@dataclass(frozen=True)
class _History:
    """A ledger (or a partition of its clients) as numpy arrays, grouped by client."""

    client_id: np.ndarray
    onboarded: np.ndarray
    founded: np.ndarray
    log_capital: np.ndarray
    rating: np.ndarray
    industry: np.ndarray
    country: np.ndarray
    country_class: np.ndarray  # OECD class 0..7, NaN: unrated (`features.country_risk`)
    insolvent: np.ndarray  # day the first insolvency was declared (NaN: none)
    # invoices, sorted by client then issue date; inv_start/inv_end index them per client
    inv_client: np.ndarray
    inv_start: np.ndarray
    inv_end: np.ndarray
    issued: np.ndarray
    due: np.ndarray
    paid: np.ndarray
    written_off: np.ndarray
    amount: np.ndarray  # in the invoice's currency
    paid_amount: np.ndarray
    disputed: np.ndarray
    currency: np.ndarray  # each invoice's code in `rates` (-1: the reporting currency)
    rates: Rates | None  # None: nothing to convert
    schedules: Schedules  # instalment schedules, by invoice position (`features.instalments`)
    # payments, sorted by client; pay_inv points into the invoice arrays
    pay_start: np.ndarray
    pay_end: np.ndarray
    pay_inv: np.ndarray
    pay_day: np.ndarray
    pay_amount: np.ndarray
    # statements, sorted by client then publication date
    st_key: np.ndarray
    st_client: np.ndarray
    st: dict[str, np.ndarray]


def _history(ledger: Ledger) -> _History:
    clients = ledger.clients.sort_values("client_id", kind="stable")
    client_id = clients["client_id"].to_numpy(dtype=object)
    n = len(client_id)

    inv = ledger.invoices
    inv_client = index_in(inv["client_id"], client_id)
    issued = _days(inv["issued_on"])
    # Stable on ledger order, so equal issue dates keep the order the ledger gives them.
    order = np.lexsort((issued, inv_client))
    inv_client = inv_client[order]
    issued = issued[order]
    invoice_ids = inv["invoice_id"].to_numpy(dtype=object)[order]
    counts = np.bincount(inv_client, minlength=n)
    inv_end = np.cumsum(counts)

    pay = ledger.payments
    pay_inv = index_in(pay["invoice_id"], invoice_ids)
    pay_keep = pay_inv >= 0
    pay_inv = pay_inv[pay_keep]
    pay_client = inv_client[pay_inv]
    pay_order = np.argsort(pay_client, kind="stable")
    pay_counts = np.bincount(pay_client, minlength=n)
    pay_end = np.cumsum(pay_counts)

    fin = ledger.financials
    st_client = index_in(fin["client_id"], client_id)
    st_pub = _days(fin["published_on"])
    st_order = np.lexsort((_days(fin["period_end"]), st_pub, st_client))
    st_client = st_client[st_order]
    st = {c: fin[c].to_numpy(dtype="float64")[st_order] for c in STATEMENT_AMOUNTS}
    st["period_end"] = _days(fin["period_end"])[st_order]
    st["published"] = st_pub[st_order]

    rating = clients.get("external_rating", pd.Series(np.nan, index=clients.index))
    ins = ledger.insolvencies
    insolvent = np.full(n, np.inf)
    np.minimum.at(insolvent, index_in(ins["client_id"], client_id), _days(ins["declared_on"]))
    insolvent[np.isposinf(insolvent)] = np.nan
    rates = ledger.rates if ledger.rates.converts else None
    currency = (
        rates.codes(inv["currency"].to_numpy(dtype=object))[order]
        if rates is not None
        else np.full(len(order), -1)
    )
    return _History(
        client_id=client_id,
        onboarded=_days(clients["onboarded_on"]),
        founded=_days(clients["founded_on"]),
        log_capital=np.log1p(clients["registered_capital"].to_numpy(dtype="float64")),
        rating=rating.map(RATING_SCORE).to_numpy(dtype="float64"),
        industry=clients["industry"].to_numpy(dtype=object),
        country=clients["country"].to_numpy(dtype=object),
        country_class=country_risk_class(clients["country"].to_numpy(dtype=object)),
        insolvent=insolvent,
        inv_client=inv_client,
        inv_start=inv_end - counts,
        inv_end=inv_end,
        issued=issued,
        due=_days(inv["due_on"])[order],
        paid=_days(inv["paid_on"])[order],
        written_off=_days(inv["written_off_on"])[order],
        amount=inv["amount"].to_numpy(dtype="float64")[order],
        paid_amount=inv["paid_amount"].to_numpy(dtype="float64")[order],
        disputed=inv["disputed"].to_numpy(dtype=bool)[order],
        currency=currency,
        rates=rates,
        schedules=Schedules.of(
            index_in(ledger.instalments["invoice_id"], invoice_ids),
            _days(ledger.instalments["due_on"]),
            ledger.instalments["amount"].to_numpy(dtype="float64"),
        )
        if len(ledger.instalments)
        else Schedules.none(),
        pay_start=pay_end - pay_counts,
        pay_end=pay_end,
        pay_inv=pay_inv[pay_order],
        pay_day=_days(pay["paid_on"])[pay_keep][pay_order],
        pay_amount=pay["amount"].to_numpy(dtype="float64")[pay_keep][pay_order],
        st_key=st_client.astype("int64") * 10_000_000 + st["published"].astype("int64"),
        st_client=st_client,
        st=st,
    )


# --------------------------------------------------------------------------------------------
# Small vectorised group operations over local client codes 0..k-1


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[i], ends[i]) without a Python loop."""
    lengths = ends - starts
    before = np.cumsum(lengths) - lengths
    return np.repeat(starts - before, lengths) + np.arange(int(lengths.sum()))


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _max(codes: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
    out = np.full(k, -np.inf)
    np.maximum.at(out, codes, values)
    out[np.isneginf(out)] = np.nan
    return out


def _min(codes: np.ndarray, k: int, values: np.ndarray) -> np.ndarray:
    out = np.full(k, np.inf)
    np.minimum.at(out, codes, values)
    out[np.isposinf(out)] = np.nan
    return out


def _sum_by_key(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each query key, the sum of `values` whose key equals it (0 when none)."""
    if len(keys) == 0:
        return np.zeros(len(query))
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    uniq, sums = k[starts], np.add.reduceat(v, starts)
    pos = np.clip(np.searchsorted(uniq, query), 0, len(uniq) - 1)
    return np.where(uniq[pos] == query, sums[pos], 0.0)


def _std(count: np.ndarray, total: np.ndarray, squares: np.ndarray) -> np.ndarray:
    mean = _div(total, count)
    return np.sqrt(np.clip(_div(squares, count) - mean**2, 0.0, None))


def _paydex(weighted_days: np.ndarray) -> np.ndarray:
    out = np.interp(weighted_days, PAYDEX_DAYS, PAYDEX_SCORE)
    out[np.isnan(weighted_days)] = np.nan
    return out


# --------------------------------------------------------------------------------------------
# The engine


@dataclass(frozen=True)
class _At:
    """The invoices and payments of some clients as seen on one day, shared by the families."""

    day: float
    clients: np.ndarray  # sorted client codes
    k: int
    local: np.ndarray  # client code -> 0..k-1
    rows: np.ndarray  # their invoices (positions in the history)
    lc: np.ndarray  # each invoice's local client
    issued: np.ndarray
    due: np.ndarray
    paid: np.ndarray
    fx: np.ndarray  # each invoice's rate to the reporting currency known on `day`
    amount: np.ndarray  # in the reporting currency at that rate
    settled: np.ndarray  # paid before `day`
    payments: np.ndarray  # their dated payments made before `day` (positions)
    latest: dict[str, np.ndarray]  # each client's latest statement published before `day`
    previous: dict[str, np.ndarray]  # and the one before it

    def count(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Per client: how many (or the sum of `weights`)."""
        out = np.bincount(codes, weights, minlength=self.k)
        return out if weights is not None else out.astype(float)


def _view(h: _History, day: float, clients: np.ndarray) -> _At:
    k = len(clients)
    rows = _ranges(h.inv_start[clients], h.inv_end[clients])
    local = np.empty(len(h.client_id), dtype=np.int64)
    local[clients] = np.arange(k)
    paid = h.paid[rows]
    pay_rows = _ranges(h.pay_start[clients], h.pay_end[clients])
    latest, previous = _statements(h, clients, day)
    fx = h.rates.at(h.currency[rows], day) if h.rates is not None else np.ones(len(rows))
    return _At(
        day=day,
        clients=clients,
        k=k,
        local=local,
        rows=rows,
        lc=local[h.inv_client[rows]],
        issued=h.issued[rows],
        due=h.due[rows],
        paid=paid,
        fx=fx,
        amount=h.amount[rows] * fx,
        settled=paid < day,
        payments=pay_rows[h.pay_day[pay_rows] < day],
        latest=latest,
        previous=previous,
    )


def _payment(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """Payment behaviour over trailing windows, by payment date; then its trend."""
    day, k = at.day, at.k
    recent = np.flatnonzero(at.settled & (at.paid >= day - max(WINDOWS)))
    # Sorted once by client, then payment date: "last" is then the end of each client's run.
    recent = recent[np.lexsort((at.issued[recent], at.paid[recent], at.lc[recent]))]
    r_lc, r_paid, r_amt = at.lc[recent], at.paid[recent], at.amount[recent]
    r_signed = r_paid - at.due[recent]
    r_dpd = np.clip(r_signed, 0, None)
    r_dbd = np.clip(-r_signed, 0, None)
    r_rows = at.rows[recent]
    r_short = h.paid_amount[r_rows] < h.amount[r_rows] * 0.995
    before = at.payments
    r_instal = _sum_by_key(h.pay_inv[before], np.ones(len(before)), r_rows) > 1
    r_disp = h.disputed[r_rows]
    for w in WINDOWS:
        m = r_paid >= day - w
        c = r_lc[m]
        n = at.count(c)
        dpd, dbd, amt = r_dpd[m], r_dbd[m], r_amt[m]
        f[f"paid_count_{w}"] = n
        for name, cond in (
            ("late", dpd > 0),
            ("late30", dpd > 30),
            ("late60", dpd > 60),
            ("late90", dpd > 90),
        ):
            f[f"{name}_share_{w}"] = _div(at.count(c, cond), n)
        last = np.r_[c[1:] != c[:-1], True] if len(c) else np.zeros(0, dtype=bool)
        for name, v in (("dpd", dpd), ("dbd", dbd)):
            total = at.count(c, v)
            f[f"{name}_mean_{w}"] = _div(total, n)
            f[f"{name}_max_{w}"] = _max(c, k, v)
            f[f"{name}_std_{w}"] = _std(n, total, at.count(c, v * v))
            f[f"{name}_last_{w}"] = np.full(k, np.nan)
            f[f"{name}_last_{w}"][c[last]] = v[last]
        amt_total = at.count(c, amt)
        f[f"dbt_weighted_{w}"] = _div(at.count(c, amt * dpd), amt_total)
        f[f"paydex_{w}"] = _paydex(_div(at.count(c, amt * r_signed[m]), amt_total))
        f[f"short_paid_share_{w}"] = _div(at.count(c, r_short[m]), n)
        f[f"instalment_share_{w}"] = _div(at.count(c, r_instal[m]), n)
        f[f"dispute_rate_{w}"] = _div(at.count(c, r_disp[m]), n)

    # the trend: the last 90 days against the 90 before, and the slope over 180 days
    prev = (r_paid >= day - 180) & (r_paid < day - 90)
    pc = r_lc[prev]
    pn = at.count(pc)
    prev_late = _div(at.count(pc, r_dpd[prev] > 0), pn)
    prev_dpd = _div(at.count(pc, r_dpd[prev]), pn)
    f["late_share_trend_90"] = f["late_share_90"] - prev_late
    f["dpd_mean_trend_90"] = f["dpd_mean_90"] - prev_dpd
    f["dpd_mean_ratio_90"] = _div(f["dpd_mean_90"] + 1, prev_dpd + 1)
    m = r_paid >= day - 180
    c, t, y = r_lc[m], (r_paid[m] - day) / 30.44, r_dpd[m]
    n = at.count(c)
    st, stt = at.count(c, t), at.count(c, t * t)
    sy, sty = at.count(c, y), at.count(c, t * y)
    denom = n * stt - st * st
    f["dpd_slope_180"] = _div(n * sty - st * sy, np.where(n >= 3, denom, 0.0))


def _exposure(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """The open balance at `day` (`features.contract.is_open`), its aging and its age."""
    day, k = at.day, at.k
    open_ = is_open(at.issued, at.paid, h.written_off[at.rows], day)
    before = at.payments
    o_rows = at.rows[open_]
    o_received = _sum_by_key(h.pay_inv[before], h.pay_amount[before], o_rows)
    o_lc = at.lc[open_]
    owed = np.clip(h.amount[o_rows] - o_received, 0.0, None)
    # past due since the first unpaid instalment (`features.instalments`), or the due date
    since, past_due, _ = h.schedules.overdue(o_rows, at.due[open_], owed, o_received, day)
    fx = at.fx[open_]
    outstanding, past = owed * fx, past_due * fx
    o_dpd = day - since
    f["open_count"] = at.count(o_lc)
    balance = at.count(o_lc, outstanding)
    f["open_balance"] = balance
    f["overdue_balance"] = at.count(o_lc, past)
    # the past-due part in its bucket, the rest (not due, instalments to come) current
    for name, lo, hi in AGING:
        part = np.where(o_dpd > 0, past, outstanding) if lo > 0 else outstanding - past
        f[f"aging_{name}"] = at.count(
            o_lc, part * ((o_dpd >= lo) & (o_dpd <= hi)) if lo > 0 else part
        )
    for name, _, _ in AGING:
        f[f"aging_{name}_share"] = _div(f[f"aging_{name}"], balance)
    f["oldest_open_age_days"] = day - _min(o_lc, k, at.issued[open_])
    f["max_open_dpd"] = _max(o_lc, k, o_dpd)


def _volume(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """Invoicing by issue date over trailing windows, its growth, and the balance against it."""
    day, k = at.day, at.k
    known = at.issued < day
    v_lc, v_issued, v_amt = at.lc[known], at.issued[known], at.amount[known]
    for w in WINDOWS:
        m = v_issued >= day - w
        f[f"invoice_count_{w}"] = at.count(v_lc[m])
        f[f"invoice_amount_{w}"] = at.count(v_lc[m], v_amt[m])
    m = (v_issued >= day - 180) & (v_issued < day - 90)
    prev_amount = at.count(v_lc[m], v_amt[m])
    prev_count = at.count(v_lc[m])
    m = (v_issued >= day - 730) & (v_issued < day - 365)
    prev_year = at.count(v_lc[m], v_amt[m])
    first_invoice = _min(v_lc, k, v_issued)
    covered_months = np.clip((day - first_invoice) / 30.44, 1.0, 12.0)
    monthly = _div(f["invoice_amount_365"], covered_months)
    f["open_to_monthly_volume"] = _div(f["open_balance"], monthly)
    f["dso"] = _div(f["open_balance"] * 90.0, f["invoice_amount_90"])
    f["amount_growth_90"] = _div(f["invoice_amount_90"], prev_amount) - 1
    f["count_growth_90"] = _div(f["invoice_count_90"], prev_count) - 1
    f["amount_growth_365"] = _div(f["invoice_amount_365"], prev_year) - 1


def _relationship(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """Tenure, history depth, recency and write-offs."""
    day, k, lc = at.day, at.k, at.lc
    known = at.issued < day
    v_lc, v_issued = lc[known], at.issued[known]
    tenure = day - h.onboarded[at.clients]
    f["tenure_days"] = tenure
    f["days_since_first_invoice"] = day - _min(v_lc, k, v_issued)
    f["days_since_last_invoice"] = day - _max(v_lc, k, v_issued)
    settled, before = at.settled, at.payments
    last_paid = _max(lc[settled], k, at.paid[settled])
    last_instalment = _max(at.local[h.inv_client[h.pay_inv[before]]], k, h.pay_day[before])
    f["days_since_last_payment"] = day - np.fmax(last_paid, last_instalment)
    paid_total = at.count(lc[settled])
    f["paid_invoices_total"] = paid_total
    # twelve periods of a twelfth of a year each: a window of 365 days never counts 13 months
    m = v_issued >= day - 365
    period = np.minimum(((day - v_issued[m] - 1) * 12) // 365, 11).astype(np.int64)
    pairs = np.unique(v_lc[m] * 12 + period)
    f["active_months_365"] = at.count(pairs // 12)
    f["thin_file"] = (
        (paid_total < THIN_FILE_PAID_INVOICES) | (tenure < THIN_FILE_TENURE_DAYS)
    ).astype(float)
    wo = h.written_off[at.rows]
    f["writeoffs_365"] = at.count(lc[(wo < day) & (wo >= day - 365)])
    f["writeoffs_total"] = at.count(lc[wo < day])


def _statements(h: _History, clients: np.ndarray, day: float) -> tuple[dict[str, np.ndarray], ...]:
    """Each client's latest statement published before `day`, and the one before it: every
    column of the statement (NaN where there is none)."""
    k = len(clients)
    if not len(h.st_key):
        empty = {col: np.full(k, np.nan) for col in h.st}
        return empty, empty
    query = clients.astype("int64") * 10_000_000 + int(day)
    idx = np.searchsorted(h.st_key, query, side="left") - 1
    has = (idx >= 0) & (h.st_client[np.clip(idx, 0, None)] == clients)
    prev = idx - 1
    has_prev = has & (prev >= 0) & (h.st_client[np.clip(prev, 0, None)] == clients)

    def pick(i: np.ndarray, ok: np.ndarray) -> dict[str, np.ndarray]:
        return {col: np.where(ok, v[np.clip(i, 0, None)], np.nan) for col, v in h.st.items()}

    return pick(idx, has), pick(prev, has_prev)


def _financials(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """The latest statement published before `day`, and the one before it."""
    latest, previous = at.latest, at.previous
    assets, revenue = latest["total_assets"], latest["revenue"]
    f["leverage"] = _div(latest["total_liabilities"], assets)
    f["current_ratio"] = _div(latest["current_assets"], latest["current_liabilities"])
    f["cash_ratio"] = _div(latest["cash"], latest["current_liabilities"])
    f["ocf_margin"] = _div(latest["operating_cash_flow"], revenue)
    f["equity_ratio"] = _div(latest["equity"], assets)
    f["revenue_growth"] = _div(revenue, previous["revenue"]) - 1
    f["log_revenue"] = np.log1p(np.where(revenue >= 0, revenue, np.nan))
    f["statement_staleness_days"] = at.day - latest["period_end"]


def _firmographics(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """Who the client is."""
    clients = at.clients
    f["industry"] = h.industry[clients]
    f["country"] = h.country[clients]
    f["country_risk_class"] = h.country_class[clients]
    f["company_age_years"] = (at.day - h.founded[clients]) / 365.25
    f["log_registered_capital"] = h.log_capital[clients]
    f["external_rating_score"] = h.rating[clients]


def _standing(h: _History, at: _At, f: dict[str, np.ndarray]) -> None:
    """Whether the client is in default and since when, contradictions, the policy's inputs."""
    day, k, lc = at.day, at.k, at.lc
    insolvent = h.insolvent[at.clients]
    f["insolvency_days"] = np.where(insolvent < day, day - insolvent, np.nan)
    wo = h.written_off[at.rows]
    f["writeoff_days"] = day - _max(lc[wo < day], k, wo[wo < day])
    # more than 90 days past due: now (an open invoice), or until it was settled
    overdue_now = is_open(at.issued, at.paid, wo, day) & (day - at.due > 90)
    settled_late = at.settled & (at.paid - at.due > 90)
    ended = _max(lc[settled_late], k, at.paid[settled_late])
    f["dpd90_days"] = np.where(at.count(lc[overdue_now]) > 0, 0.0, day - ended)
    before = at.payments
    after_writeoff = h.pay_day[before] > h.written_off[h.pay_inv[before]]
    settled_after = at.settled & (at.paid > wo)
    f["paid_after_writeoff"] = at.count(
        at.local[h.inv_client[h.pay_inv[before][after_writeoff]]]
    ) + at.count(lc[settled_after])
    f["equity"] = at.latest["equity"]
    f["revenue"] = at.latest["revenue"]
    f["statement_age_days"] = day - at.latest["published"]
    recent = (at.issued < day) & (at.issued >= day - 365)
    terms = at.due[recent] - at.issued[recent]
    f["usual_terms_days"] = _div(
        at.count(lc[recent], terms * at.amount[recent]), at.count(lc[recent], at.amount[recent])
    )


# The families in the catalog's order; `_volume` reads the open balance `_exposure` wrote.
_FAMILIES = (
    _payment,
    _exposure,
    _volume,
    _relationship,
    _financials,
    _firmographics,
    _standing,
)


def _features_at(h: _History, day: float, clients: np.ndarray) -> dict[str, np.ndarray]:
    """Every client feature of `clients` (sorted codes) as known strictly before `day`."""
    at = _view(h, day, clients)
    f: dict[str, np.ndarray] = {}
    for family in _FAMILIES:
        family(h, at, f)
    return f


def _frame(
    h: _History, parts: list[tuple[float, np.ndarray, dict[str, np.ndarray]]]
) -> pd.DataFrame:
    """Stack per-date results into one frame (built once: a frame per date costs more than the math)."""
    clients = np.concatenate([c for _, c, _ in parts]) if parts else np.array([], dtype=np.int64)
    days = np.concatenate([np.full(len(c), d) for d, c, _ in parts]) if parts else np.array([])
    data: dict[str, object] = {
        "client_id": pd.array(h.client_id[clients], dtype="str"),
        "as_of": (EPOCH + days.astype("int64").astype("timedelta64[D]")).astype("datetime64[us]"),
    }
    for s in client_feature_specs():
        values = np.concatenate([f[s.name] for _, _, f in parts]) if parts else np.array([])
        data[s.name] = (
            pd.array(values.astype(object), dtype="str")
            if s.categorical
            else values.astype("float64")
        )
    return pd.DataFrame(data)


def build_client_features(ledger: Ledger, *, as_of_dates: Iterable[object]) -> pd.DataFrame:
    """One row per (client, as_of) for every client onboarded before `as_of`, sorted by date then client.

    Pure: reads only what each client's history held strictly before `as_of`.
    """
    h = _history(ledger)
    parts = []
    for as_of in sorted({pd.Timestamp(d) for d in as_of_dates}):
        day = _to_day(as_of)
        clients = np.flatnonzero(h.onboarded < day)
        parts.append((day, clients, _features_at(h, day, clients)))
    return _frame(h, parts)


def build_invoice_features(ledger: Ledger, *, invoices: pd.Series | None = None) -> pd.DataFrame:
    """One row per invoice: its client's features as of its issue date plus its own attributes.

    `invoices` selects invoice ids (default: all), returned in ledger order. Nothing about the
    invoice's own outcome (payment, dispute, write-off) is read.
    """
    h = _history(ledger)
    inv = ledger.invoices
    if invoices is not None:
        inv = inv[isin(inv["invoice_id"], pd.Series(invoices))]
    inv = inv.reset_index(drop=True)
    client = index_in(inv["client_id"], h.client_id)
    day = _days(inv["issued_on"])
    parts = []
    order = []
    for d, pos in pd.Series(np.arange(len(inv))).groupby(day).indices.items():
        clients = np.unique(client[pos])
        f = _features_at(h, float(d), clients)
        take = np.searchsorted(clients, client[pos])
        parts.append((float(d), client[pos], {name: values[take] for name, values in f.items()}))
        order.append(pos)
    out = _frame(h, parts)
    out.insert(
        0,
        "invoice_id",
        pd.array(
            inv["invoice_id"].to_numpy(dtype=object)[np.concatenate(order)] if order else [],
            dtype="str",
        ),
    )
    out = (
        out.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)
        if order
        else out
    )
    usual = _div(out["invoice_amount_365"].to_numpy(), out["invoice_count_365"].to_numpy())
    amount = inv["amount"].to_numpy(dtype="float64")
    if h.rates is not None:  # at the rate known on the day it was issued
        amount = amount * h.rates.on(inv["currency"], inv["issued_on"])
    out["invoice_amount"] = amount
    out["invoice_amount_to_usual"] = _div(out["invoice_amount"].to_numpy(), usual)
    out["invoice_terms_days"] = (inv["due_on"] - inv["issued_on"]).dt.days.to_numpy(dtype="float64")
    out["invoice_issue_month"] = inv["issued_on"].dt.month.to_numpy(dtype="float64")
    out["invoice_currency"] = pd.array(inv["currency"].to_numpy(dtype=object), dtype="str")
    return out
