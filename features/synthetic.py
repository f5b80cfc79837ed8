"""Synthetic receivables ledger: the embedded default data, deterministic for a seed.

Each client carries a latent risk that drifts month by month around its own level, shifted by
industry, country, size and age, and by a macro cycle with one downturn. Some clients slide into
distress: their risk climbs for months, their payments and published financials worsen, and most of
them end in insolvency. Invoices, payments, disputes, write-offs and annual statements all follow
from that path, so the signal a default model must find is there, and so is the noise.

Clients onboarded before the period have invoices, payments and statements from up to
`history_months` before it (a real ledger extract carries such history), so a snapshot at the
period's start already sees a client's payment record. Current credit limits follow the usual
purchases over the client's terms with headroom, and a share of clients sit over a limit set
long ago (see `GeneratorConfig`).

Cross-border clients: a `foreign_currency_share` of the clients registered outside the euro area
(US, CN, GB, PL, TR, BR, IN: 45 % of the book, so about 27 % of all clients at the default 0.6)
are invoiced in their own currency (USD for TR, BR and IN, as exporters to them usually are); the
amounts are the same purchases converted at the day's rate. The rates follow a business-day
random walk per currency with a realistic annual volatility (`FX_SERIES`) and are written as the
`fx_rates` table, with the reporting currency (EUR) in the manifest. The cross-border draws come
from their own random stream, so every other figure of a seed's ledger is what it was without them.

Clients are simulated in fixed-size chunks with one random stream each and written row group by row
group, so 100,000 clients x 36 months (about 20 million invoices) fit in bounded memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from features.io import MANIFEST, atomic_directory

CHUNK_CLIENTS = 4096  # part of the output's identity: changing it changes every table

# name, payment-terms probabilities for 30/45/60/90 days, risk shift, weight
INDUSTRIES: tuple[tuple[str, tuple[float, float, float, float], float, float], ...] = (
    ("Retail", (0.6, 0.3, 0.1, 0.0), 0.30, 0.14),
    ("Wholesale", (0.3, 0.4, 0.3, 0.0), 0.10, 0.16),
    ("Construction", (0.0, 0.2, 0.4, 0.4), 0.55, 0.10),
    ("Manufacturing", (0.2, 0.3, 0.4, 0.1), 0.00, 0.16),
    ("Transport & logistics", (0.5, 0.3, 0.2, 0.0), 0.35, 0.08),
    ("Hospitality", (0.8, 0.2, 0.0, 0.0), 0.50, 0.06),
    ("Healthcare", (0.0, 0.2, 0.4, 0.4), -0.40, 0.06),
    ("IT services", (0.5, 0.3, 0.2, 0.0), -0.20, 0.08),
    ("Agriculture & food", (0.4, 0.3, 0.3, 0.0), 0.20, 0.10),
    ("Energy & utilities", (0.3, 0.0, 0.4, 0.3), -0.50, 0.06),
)
TERMS_DAYS = np.array([30, 45, 60, 90])

# ISO country, risk shift, weight, legal-form suffix
COUNTRY_TABLE: tuple[tuple[str, float, float, str], ...] = (
    ("DE", -0.30, 0.18, "GmbH"),
    ("FR", 0.00, 0.12, "SAS"),
    ("IT", 0.25, 0.10, "S.r.l."),
    ("ES", 0.15, 0.08, "S.L."),
    ("NL", -0.25, 0.07, "B.V."),
    ("PL", 0.10, 0.07, "Sp. z o.o."),
    ("CN", 0.35, 0.14, "Co., Ltd."),
    ("US", -0.10, 0.08, "Inc."),
    ("GB", 0.00, 0.06, "Ltd"),
    ("TR", 0.60, 0.04, "A.S."),
    ("BR", 0.50, 0.03, "Ltda."),
    ("IN", 0.40, 0.03, "Pvt. Ltd."),
)
_NAME_A = np.array(
    [
        "Nordic",
        "Alpine",
        "Golden",
        "Atlas",
        "Blue",
        "Silver",
        "Pacific",
        "Royal",
        "Summit",
        "Crescent",
        "Harbor",
        "Prime",
        "Union",
        "Vertex",
        "Orion",
        "Delta",
        "Cedar",
        "Granite",
        "Pioneer",
        "Sterling",
        "Lotus",
        "Phoenix",
        "Meridian",
        "Northern",
    ]
)
_NAME_B = np.array(
    [
        "Trading",
        "Foods",
        "Logistics",
        "Systems",
        "Industries",
        "Builders",
        "Supplies",
        "Retail",
        "Health",
        "Energy",
        "Textiles",
        "Components",
        "Materials",
        "Partners",
        "Works",
        "Solutions",
        "Metals",
        "Farms",
        "Motors",
        "Electronics",
    ]
)
# currency: reporting-currency (EUR) value of one unit at the start, annual volatility
FX_SERIES: dict[str, tuple[float, float]] = {
    "USD": (0.92, 0.08),
    "GBP": (1.16, 0.07),
    "CNY": (0.128, 0.065),
    "JPY": (0.0062, 0.10),
    "PLN": (0.23, 0.07),
    "CHF": (1.02, 0.06),
}
# the currency a client registered in a country outside the euro area may be invoiced in
COUNTRY_CURRENCY = {
    "US": "USD",
    "CN": "CNY",
    "GB": "GBP",
    "PL": "PLN",
    "TR": "USD",
    "BR": "USD",
    "IN": "USD",
}
_RATINGS = np.array(["AA", "A", "BBB", "BB", "B", "CCC"])
# Invoice volume by calendar month: slow summer and February, busy year end.
_SEASON = np.array([0.85, 0.90, 1.05, 1.00, 1.00, 1.00, 0.95, 0.80, 1.05, 1.10, 1.10, 1.20])


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; the same config always gives byte-identical tables."""

    clients: int = 2000
    months: int = 36
    seed: int = 42
    start: str = "2023-01-01"
    currency: str = "EUR"
    # months simulated before `start` for the clients onboarded by then (their earlier history)
    history_months: int = 24
    # of the clients registered outside the euro area, the share invoiced in their currency
    foreign_currency_share: float = 0.6
    # credit insurance: the share of clients the insurer grants a limit, and the action log
    insured_share: float = 0.75
    # Current limits: the usual purchases over the terms plus a month, times a headroom drawn
    # in [1.5, 2.2]; a share of clients keep a limit set long ago at a fraction of what they
    # now buy (0.5-0.9), and are the ones over their limit.
    stale_limit_share: float = 0.06

    @property
    def start_date(self) -> np.datetime64:
        return np.datetime64(pd.Timestamp(self.start).replace(day=1).date(), "D")

    @property
    def extracted_on(self) -> pd.Timestamp:
        """The last day of the simulated period."""
        return (
            pd.Timestamp(self.start).replace(day=1)
            + pd.DateOffset(months=self.months)
            - pd.Timedelta(days=1)
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _month_starts(cfg: GeneratorConfig) -> np.ndarray:
    """The first day of every simulated month (history included) and of the month after."""
    base = cfg.start_date.astype("datetime64[M]") - cfg.history_months
    return (base + np.arange(_simulated_months(cfg) + 1)).astype("datetime64[D]")


def _simulated_months(cfg: GeneratorConfig) -> int:
    return cfg.history_months + cfg.months


def _macro(months: int) -> np.ndarray:
    """Macro risk shift per month: calm, one downturn of about nine months, recovery."""
    t = np.arange(months, dtype=float)
    start = round(0.42 * months)
    width = max(3.0, 0.25 * months)
    phase = np.clip((t - start) / width, 0.0, 1.0)
    return 0.75 * np.sin(np.pi * phase) * ((t >= start) & (t <= start + width))


@dataclass
class _Clients:
    """Static attributes and monthly paths of one chunk of clients."""

    ids: pa.Array
    table: pa.Table
    industry: np.ndarray
    log_volume: np.ndarray
    invoices_per_month: np.ndarray
    terms: np.ndarray
    onboarded: np.ndarray  # datetime64[D]
    risk: np.ndarray  # (clients, months), distress included
    distress: np.ndarray  # (clients, months)
    insolvent_on: np.ndarray  # datetime64[D], NaT if never within the period
    has_financials: np.ndarray
    founded: np.ndarray
    countries: np.ndarray  # ISO codes
    currency: np.ndarray | None = None  # the invoices' currency per client (set after)


def _simulate_clients(
    cfg: GeneratorConfig, rng: np.random.Generator, first: int, n: int
) -> _Clients:
    months = _simulated_months(cfg)
    starts = _month_starts(cfg)
    sim_start = starts[0]
    start = cfg.start_date
    end = np.datetime64(cfg.extracted_on.date(), "D")

    ind_w = np.array([i[3] for i in INDUSTRIES])
    industry = rng.choice(len(INDUSTRIES), size=n, p=ind_w / ind_w.sum())
    cty_w = np.array([c[2] for c in COUNTRY_TABLE])
    country = rng.choice(len(COUNTRY_TABLE), size=n, p=cty_w / cty_w.sum())

    log_volume = rng.normal(np.log(15_000.0), 1.4, n)  # monthly purchases from us
    invoices_per_month = np.exp(
        np.clip(rng.normal(1.8, 0.55, n) + 0.15 * (log_volume - np.log(15_000.0)), 0, 3.4)
    )
    age_years = np.exp(rng.normal(np.log(11.0), 0.8, n))

    # Half the book predates the ledger's window; the rest is onboarded throughout it.
    before = rng.random(n) < 0.5
    onboard_offset = np.where(
        before,
        -rng.integers(1, 6 * 365, n),
        rng.integers(0, max(1, int((end - start) / np.timedelta64(1, "D")) - 60), n),
    )
    onboarded = start + onboard_offset.astype("timedelta64[D]")
    founded = onboarded - (age_years * 365.25).astype("timedelta64[D]")

    terms_p = np.array([i[1] for i in INDUSTRIES])[industry]
    terms = TERMS_DAYS[(rng.random(n)[:, None] > np.cumsum(terms_p, axis=1)).sum(axis=1).clip(0, 3)]

    base_risk = (
        0.8 * rng.normal(0.0, 1.0, n)
        + np.array([i[2] for i in INDUSTRIES])[industry]
        + np.array([c[1] for c in COUNTRY_TABLE])[country]
        - 0.25 * (np.log(age_years) - np.log(11.0))
        - 0.10 * (log_volume - np.log(15_000.0))
    )

    macro = np.concatenate([np.zeros(cfg.history_months), _macro(cfg.months)])
    drift = np.zeros(n)
    distress = np.zeros(n)
    distress_since = np.full(n, -1)
    distress_length = np.zeros(n, dtype=int)
    risk = np.empty((n, months))
    distress_path = np.empty((n, months))
    insolvent_month = np.full(n, -1)
    onboard_month = np.clip(
        (onboarded.astype("datetime64[M]") - sim_start.astype("datetime64[M]")).astype(int), 0, None
    )
    for m in range(months):
        drift = 0.92 * drift + rng.normal(0.0, 0.18, n)
        alive = insolvent_month < 0
        active = alive & (onboard_month <= m)
        calm = base_risk + drift + macro[m]
        starting = active & (distress_since < 0) & (rng.random(n) < _sigmoid(-6.7 + 1.1 * calm))
        distress_since[starting] = m
        distress_length[starting] = rng.integers(5, 13, int(starting.sum()))
        in_distress = distress_since >= 0
        distress = np.where(in_distress, distress + 0.45, 0.75 * distress)
        ending = in_distress & (m - distress_since >= distress_length)
        fails = ending & active & (rng.random(n) < 0.65)
        insolvent_month[fails] = m
        distress_since[ending] = -1  # survivors recover slowly through the decay above
        risk[:, m] = calm + distress
        distress_path[:, m] = distress

    day_in_month = rng.integers(0, 28, n)
    insolvent_on = np.where(
        insolvent_month >= 0,
        starts[np.clip(insolvent_month, 0, months - 1)] + day_in_month.astype("timedelta64[D]"),
        np.datetime64("NaT"),
    ).astype("datetime64[D]")
    insolvent_on = np.where(insolvent_on > end, np.datetime64("NaT"), insolvent_on)

    has_financials = rng.random(n) < _sigmoid(0.8 + 0.6 * (log_volume - np.log(15_000.0)))

    ids = pc.binary_join_element_wise(
        "C",
        pc.utf8_lpad(pc.cast(pa.array(np.arange(first + 1, first + n + 1)), pa.string()), 7, "0"),
        "",
    )
    names = (
        _NAME_A[rng.integers(0, len(_NAME_A), n)].astype(object)
        + " "
        + _NAME_B[rng.integers(0, len(_NAME_B), n)].astype(object)
        + " "
        + np.array([c[3] for c in COUNTRY_TABLE], dtype=object)[country]
    )
    capital = np.round(np.exp(log_volume + rng.normal(1.5, 1.0, n)), -3)
    capital_known = rng.random(n) < 0.9
    rated = rng.random(n) < _sigmoid(-0.6 + 0.7 * (log_volume - np.log(15_000.0)))
    rating_idx = np.clip(
        np.round(2.3 + 1.1 * (base_risk + rng.normal(0, 0.5, n))), 0, len(_RATINGS) - 1
    ).astype(int)
    table = pa.table(
        {
            "client_id": ids,
            "name": pa.array(names, pa.string()),
            "country": pa.array(np.array([c[0] for c in COUNTRY_TABLE])[country], pa.string()),
            "industry": pa.array(np.array([i[0] for i in INDUSTRIES])[industry], pa.string()),
            "registered_capital": pa.array(capital, pa.float64(), mask=~capital_known),
            "founded_on": pa.array(founded, pa.date32()),
            "onboarded_on": pa.array(onboarded, pa.date32()),
            "external_rating": pa.array(_RATINGS[rating_idx], pa.string(), mask=~rated),
            "credit_limit": pa.array(_current_limits(cfg, rng, log_volume, terms), pa.float64()),
        }
    )
    return _Clients(
        ids=ids,
        table=table,
        industry=industry,
        log_volume=log_volume,
        invoices_per_month=invoices_per_month,
        terms=terms,
        onboarded=onboarded,
        risk=risk,
        distress=distress_path,
        insolvent_on=insolvent_on,
        has_financials=has_financials,
        founded=founded,
        countries=np.array([c[0] for c in COUNTRY_TABLE], dtype=object)[country],
    )


@dataclass(frozen=True)
class _Rates:
    """Business-day rates per currency (reporting-currency value of one unit)."""

    days: np.ndarray  # datetime64[D], business days, sorted
    rates: dict[str, np.ndarray]

    def on(self, currency: str, dates: np.ndarray) -> np.ndarray:
        """The rate of the latest business day on or before each date."""
        at = np.searchsorted(self.days, dates, side="right") - 1
        return self.rates[currency][at]

    def table(self) -> pa.Table:
        codes = sorted(self.rates)
        return pa.table(
            {
                "date": pa.array(np.tile(self.days, len(codes)), pa.date32()),
                "currency": pa.array(np.repeat(codes, len(self.days)), pa.string()),
                "rate": pa.array(np.concatenate([self.rates[c] for c in codes]), pa.float64()),
            }
        )


def _rate_series(cfg: GeneratorConfig) -> _Rates:
    """A seeded random walk of each `FX_SERIES` currency over every simulated business day (and a
    fortnight before, so that an invoice on the first day has a rate)."""
    rng = np.random.default_rng([cfg.seed, 4217])
    first = _month_starts(cfg)[0] - np.timedelta64(14, "D")
    end = np.datetime64(cfg.extracted_on.date(), "D")
    days = np.arange(first, end + 1)
    days = days[np.is_busday(days)]
    rates = {}
    for code, (level, vol) in FX_SERIES.items():
        steps = rng.normal(0.0, vol / np.sqrt(252.0), len(days))
        steps[0] = 0.0
        rates[code] = np.round(level * np.exp(np.cumsum(steps)), 8)
    return _Rates(days, rates)


def _invoice_currency(cfg: GeneratorConfig, chunk_no: int, c: _Clients) -> np.ndarray:
    """Each client's invoicing currency, from its own random stream (`foreign_currency_share`)."""
    rng = np.random.default_rng([cfg.seed, chunk_no, 4217])
    foreign = np.array([COUNTRY_CURRENCY.get(str(x), "") for x in c.countries], dtype=object)
    chosen = (foreign != "") & (rng.random(len(foreign)) < cfg.foreign_currency_share)
    return np.where(chosen, foreign, cfg.currency).astype(object)


def _insurer_limits(
    cfg: GeneratorConfig, rng: np.random.Generator, c: _Clients
) -> tuple[pa.Table, np.ndarray]:
    """The insurer's decisions on each client (its own random stream): a limit granted soon after
    onboarding for `insured_share` of them, sized like a credit limit; reduced by half when the
    client's distress first builds up, cancelled when it deepens or a month before insolvency
    (insurers watch the same signals, a little late). Returns the table and who is insured."""
    starts = _month_starts(cfg)
    end = np.datetime64(cfg.extracted_on.date(), "D")
    n = len(c.terms)
    insured = rng.random(n) < cfg.insured_share
    need = np.exp(c.log_volume) * (c.terms + 30) / 30.44
    granted = np.maximum(np.round(need * rng.uniform(0.6, 1.3, n), -3), 5000.0)
    first = np.maximum(c.onboarded, starts[0]) + rng.integers(0, 30, n).astype("timedelta64[D]")
    rows: list[tuple[int, float, np.datetime64, str]] = []
    day = rng.integers(0, 28, n).astype("timedelta64[D]")

    def month_of(mask: np.ndarray) -> np.ndarray:
        hit = mask.any(axis=1)
        return np.where(hit, mask.argmax(axis=1), -1)

    reduce_at = month_of(c.distress > 1.0)
    cancel_at = month_of(c.distress > 2.2)
    for i in np.flatnonzero(insured & (first <= end)).tolist():
        rows.append((i, granted[i], first[i], "granted"))
        when = [first[i]]
        if reduce_at[i] >= 0 and rng.random() < 0.7:
            on = max(starts[reduce_at[i]] + day[i], when[-1] + np.timedelta64(1, "D"))
            if on <= end:
                rows.append((i, round(granted[i] * 0.5, -3), on, "reduced"))
                when.append(on)
        cancel = None
        if cancel_at[i] >= 0 and rng.random() < 0.8:
            cancel = starts[cancel_at[i]] + day[i]
        if not np.isnat(c.insolvent_on[i]):
            before = c.insolvent_on[i] - np.timedelta64(int(rng.integers(0, 45)), "D")
            cancel = before if cancel is None else min(cancel, before)
        if cancel is not None:
            on = max(cancel, when[-1] + np.timedelta64(1, "D"))
            if on <= end:
                rows.append((i, 0.0, on, "cancelled"))
    idx = np.array([r[0] for r in rows], dtype=np.int64)
    table = pa.table(
        {
            "client_id": pc.take(c.ids, pa.array(idx)),
            "limit": pa.array([r[1] for r in rows], pa.float64()),
            "currency": pa.array(np.full(len(rows), cfg.currency), pa.string()),
            "decided_on": pa.array(np.array([r[2] for r in rows], "datetime64[D]"), pa.date32()),
            "valid_until": pa.nulls(len(rows), pa.date32()),
            "status": pa.array([r[3] for r in rows], pa.string()),
        }
    )
    return table, insured


def _current_limits(
    cfg: GeneratorConfig, rng: np.random.Generator, log_volume: np.ndarray, terms: np.ndarray
) -> np.ndarray:
    """The limit granted today: the usual purchases over the terms plus a month of grace, with
    headroom; a `stale_limit_share` of clients kept a limit set when they bought less."""
    n = len(terms)
    need = np.exp(log_volume) * (terms + 30) / 30.44
    factor = np.where(
        rng.random(n) < cfg.stale_limit_share, rng.uniform(0.5, 0.9, n), rng.uniform(1.5, 2.2, n)
    )
    return np.maximum(np.round(need * factor, -3), 1000.0)


def _simulate_invoices(
    cfg: GeneratorConfig,
    rng: np.random.Generator,
    c: _Clients,
    first_invoice: int,
    fx: _Rates | None = None,
    log: tuple[np.random.Generator, np.ndarray] | None = None,
) -> tuple[pa.Table, pa.Table, tuple[pa.Table, pa.Table] | None]:
    months = _simulated_months(cfg)
    starts = _month_starts(cfg)
    end = np.datetime64(cfg.extracted_on.date(), "D")
    n = len(c.terms)

    calendar_month = starts[:-1].astype("datetime64[M]").astype(int) % 12
    lam = c.invoices_per_month[:, None] * _SEASON[calendar_month][None, :]
    counts = rng.poisson(lam)
    flat = counts.ravel()  # client-major: all months of client 0, then client 1, ...
    client_idx = np.repeat(np.repeat(np.arange(n), months), flat)
    month_idx = np.repeat(np.tile(np.arange(months), n), flat)
    days_in_month = (starts[1:] - starts[:-1]).astype(int)
    issued = starts[month_idx] + (rng.random(len(month_idx)) * days_in_month[month_idx]).astype(
        "timedelta64[D]"
    )

    # No invoice before onboarding or on/after insolvency.
    insolvent = c.insolvent_on[client_idx]
    keep = (
        (issued >= c.onboarded[client_idx])
        & (np.isnat(insolvent) | (issued < insolvent))
        & (issued <= end)
    )
    client_idx, month_idx, issued, insolvent = (
        client_idx[keep],
        month_idx[keep],
        issued[keep],
        insolvent[keep],
    )
    k = len(client_idx)

    log_typical = c.log_volume[client_idx] - np.log(c.invoices_per_month[client_idx])
    log_amount = log_typical + rng.normal(0.0, 0.6, k)
    value = np.exp(log_amount)  # in the reporting currency
    currency = (
        c.currency[client_idx] if c.currency is not None else np.full(k, cfg.currency, object)
    )
    if fx is not None:  # the same purchase invoiced in the client's currency at the day's rate
        for code in np.unique(currency[currency != cfg.currency]):
            rows = currency == code
            value[rows] = value[rows] / fx.on(str(code), issued[rows])
    amount = np.round(value, 2).clip(1.0)
    terms = c.terms[client_idx]
    other_terms = rng.random(k) < 0.08
    terms = np.where(other_terms, TERMS_DAYS[rng.integers(0, 4, k)], terms)
    due = issued + terms.astype("timedelta64[D]")

    risk = c.risk[client_idx, month_idx]
    disputed = rng.random(k) < (0.03 + 0.10 * _sigmoid(risk - 1.0))
    severity = risk + 0.9 * disputed + 0.15 * (log_amount - log_typical) + rng.normal(0.0, 0.7, k)
    late = rng.random(k) < _sigmoid(1.3 * (severity - 0.5))
    # Ordinary lateness is weeks, rarely months; a client in distress stretches it by months.
    distress = c.distress[client_idx, month_idx]
    days_late = (
        1
        + rng.gamma(5.0, 4.0 * np.exp(0.25 * (severity - distress).clip(-3, 1.5)))
        + distress * rng.uniform(15, 40, k)
    )
    days_early = np.floor(rng.random(k) ** 2 * np.minimum(terms / 3, 15))
    shift = np.where(late, np.floor(days_late), -days_early).astype("timedelta64[D]")
    settle = np.maximum(due + shift, issued)

    # Settled short: many disputes end with a credit note, a few invoices just stay underpaid.
    short = (disputed & (rng.random(k) < 0.45)) | (rng.random(k) < 0.01)
    settled_amount = np.where(short, np.round(amount * rng.uniform(0.6, 0.97, k), 2), amount)

    # Very late invoices of clients still trading are often written off after collection fails.
    written_off = np.full(k, np.datetime64("NaT"), dtype="datetime64[D]")
    hopeless = late & (days_late > 150) & (rng.random(k) < 0.6)
    written_off[hopeless] = (due + (150 + rng.integers(0, 60, k)).astype("timedelta64[D]"))[
        hopeless
    ]
    # An insolvency freezes every invoice not settled by then; the remainder is written off later.
    frozen = ~np.isnat(insolvent) & (settle >= insolvent)
    written_off[frozen] = (insolvent + rng.integers(60, 240, k).astype("timedelta64[D]"))[frozen]
    never_paid = hopeless | frozen

    # Instalments: some invoices are paid in two or three parts; unpaid ones may have a first part.
    parts = np.where(rng.random(k) < 0.10, rng.integers(2, 4, k), 1)
    parts = np.where(never_paid & (rng.random(k) < 0.3), 2, parts)
    first_share = rng.uniform(0.2, 0.6, k)
    span = np.maximum((settle - issued).astype(int), 1)
    first_date = issued + (span * rng.uniform(0.3, 0.8, k)).astype(int).astype("timedelta64[D]")
    second_share = np.where(parts == 3, rng.uniform(0.1, 0.3, k), 0.0)
    second_date = first_date + (
        (settle - first_date).astype(int) * rng.uniform(0.3, 0.8, k)
    ).astype(int).astype("timedelta64[D]")
    stop = np.where(never_paid, np.where(np.isnat(insolvent), written_off, insolvent), end + 1)

    p1 = np.round(settled_amount * first_share, 2)
    p2 = np.round(settled_amount * second_share, 2)
    p_last = np.round(settled_amount - p1 - p2, 2)
    multi = parts > 1
    pay_first = multi & (first_date <= end) & (first_date < stop)
    pay_second = multi & (parts == 3) & (second_date <= end) & (second_date < stop)
    pay_last = ~never_paid & (settle <= end)

    received = np.where(pay_first, p1, 0.0) + np.where(pay_second, p2, 0.0)
    received = np.where(pay_last, np.where(multi, received + p_last, settled_amount), received)
    paid_on = np.where(pay_last, settle, np.datetime64("NaT"))
    written_off = np.where(written_off <= end, written_off, np.datetime64("NaT"))

    invoice_no = np.arange(first_invoice + 1, first_invoice + k + 1)
    invoice_ids = pc.binary_join_element_wise(
        "INV", pc.utf8_lpad(pc.cast(pa.array(invoice_no), pa.string()), 9, "0"), ""
    )
    invoices = pa.table(
        {
            "invoice_id": invoice_ids,
            "client_id": pc.take(c.ids, pa.array(client_idx)),
            "issued_on": pa.array(issued, pa.date32()),
            "due_on": pa.array(due, pa.date32()),
            "amount": pa.array(amount, pa.float64()),
            "currency": pa.array(currency, pa.string()),
            "paid_on": pa.array(paid_on, pa.date32()),
            "paid_amount": pa.array(np.round(received, 2), pa.float64()),
            "disputed": pa.array(disputed, pa.bool_()),
            "written_off_on": pa.array(written_off, pa.date32()),
        }
    )

    rows = [np.flatnonzero(pay_first), np.flatnonzero(pay_second), np.flatnonzero(multi & pay_last)]
    pay_idx = np.concatenate(rows)
    pay_date = np.concatenate([first_date[rows[0]], second_date[rows[1]], settle[rows[2]]])
    pay_amount = np.concatenate([p1[rows[0]], p2[rows[1]], p_last[rows[2]]])
    order = np.lexsort((pay_date, pay_idx))
    pay_idx, pay_date, pay_amount = pay_idx[order], pay_date[order], pay_amount[order]
    ok = pay_amount > 0
    payments = pa.table(
        {
            "invoice_id": pc.take(invoice_ids, pa.array(pay_idx[ok])),
            "paid_on": pa.array(pay_date[ok], pa.date32()),
            "amount": pa.array(pay_amount[ok], pa.float64()),
        }
    )
    extra = None
    if log is not None:
        open_until = np.where(
            pay_last, settle, np.where(np.isnat(written_off), end + 1, written_off)
        ).astype("datetime64[D]")
        actions = _action_log(
            log[0],
            log[1][client_idx],
            c,
            client_idx,
            invoice_ids,
            due,
            late,
            days_late,
            amount,
            open_until,
            insolvent,
            end,
        )
        extra = (actions, _instalments(log[0], invoice_ids, issued, terms, amount))
    return invoices, payments, extra


def _instalments(
    rng: np.random.Generator,
    invoice_ids: pa.Array,
    issued: np.ndarray,
    terms: np.ndarray,
    amount: np.ndarray,
) -> pa.Table:
    """A tenth of the invoices on 60 or 90 days are payable in instalments every 30 days (two or
    three equal parts, the last on the due date), as a seller agrees with a buyer that needs
    time; its own random stream."""
    k = len(terms)
    pick = np.flatnonzero((terms >= 60) & (rng.random(k) < 0.1))
    parts = (terms[pick] // 30).astype(np.int64)  # 60 days: 2, 90: 3
    row = np.repeat(pick, parts)
    step = np.concatenate([np.arange(1, p + 1) for p in parts]) if len(parts) else np.zeros(0, int)
    count = np.repeat(parts, parts)
    share = np.round(amount[row] / count, 2)
    last = step == count
    # the last instalment takes what rounding left, so the parts add up to the invoice
    totals = np.bincount(np.repeat(np.arange(len(pick)), parts), share, minlength=len(pick))
    share[last] = np.round(share[last] + (amount[pick] - totals), 2)
    due = issued[row] + np.where(last, terms[row], 30 * step).astype("timedelta64[D]")
    return pa.table(
        {
            "invoice_id": pc.take(invoice_ids, pa.array(row)),
            "due_on": pa.array(due, pa.date32()),
            "amount": pa.array(share, pa.float64()),
        }
    )


def _action_log(
    rng: np.random.Generator,
    insured: np.ndarray,
    c: _Clients,
    client_idx: np.ndarray,
    invoice_ids: pa.Array,
    due: np.ndarray,
    late: np.ndarray,
    days_late: np.ndarray,
    amount: np.ndarray,
    open_until: np.ndarray,
    insolvent: np.ndarray,
    end: np.datetime64,
) -> pa.Table:
    """What a credit team did about the invoices (its own random stream): a reminder for half of
    those still open 15 days after their due date, a promise to pay for some very late ones, the
    insurer notified of 85 % of the insured invoices still open 30 days after their due date (the
    rest lose their cover), a claim filed once an insured client is insolvent."""
    k = len(due)

    def days(lo: int, hi: int) -> np.ndarray:
        return rng.integers(lo, hi, k).astype("timedelta64[D]")

    nothing = np.full(k, np.nan)
    parts: list[tuple[np.ndarray, str, np.ndarray, np.ndarray, str]] = []
    letter_on = due + days(15, 21)
    pick = late & (letter_on < open_until) & (letter_on <= end) & (rng.random(k) < 0.5)
    parts.append((pick, "letter_sent", letter_on, nothing, "reminder"))
    promise_on = due + days(10, 21)
    pick = late & (days_late > 20) & (promise_on < open_until) & (promise_on <= end)
    pick &= rng.random(k) < 0.1
    parts.append((pick, "promise_to_pay", promise_on, amount, ""))
    notify_on = due + days(30, 56)
    notified = insured & (notify_on < open_until) & (notify_on <= end) & (rng.random(k) < 0.85)
    parts.append((notified, "insurer_notified", notify_on, nothing, ""))
    claim_on = np.maximum(insolvent + days(10, 41), notify_on + np.timedelta64(1, "D"))
    pick = notified & ~np.isnat(insolvent) & (claim_on <= end)
    parts.append((pick, "claim_filed", claim_on, amount, ""))
    rows = [np.flatnonzero(p[0]) for p in parts]
    idx = np.concatenate(rows)
    on = np.concatenate([p[2][r] for p, r in zip(parts, rows, strict=True)])
    amounts = np.concatenate(
        [
            np.broadcast_to(np.asarray(p[3], dtype="float64"), (k,))[r]
            for p, r in zip(parts, rows, strict=True)
        ]
    )
    names = np.concatenate(
        [np.full(len(r), p[1], dtype=object) for p, r in zip(parts, rows, strict=True)]
    )
    notes = np.concatenate(
        [np.full(len(r), p[4], dtype=object) for p, r in zip(parts, rows, strict=True)]
    )
    order = np.lexsort((on, idx))
    return pa.table(
        {
            "client_id": pc.take(c.ids, pa.array(client_idx[idx][order])),
            "invoice_id": pc.take(invoice_ids, pa.array(idx[order])),
            "action": pa.array(names[order], pa.string()),
            "on": pa.array(on[order], pa.date32()),
            "amount": pa.array(amounts[order], pa.float64(), mask=np.isnan(amounts[order])),
            "note": pa.array(list(notes[order]), pa.string(), mask=notes[order] == ""),
        }
    )


def _simulate_financials(
    cfg: GeneratorConfig, rng: np.random.Generator, c: _Clients
) -> tuple[pa.Table, pa.Table]:
    starts = _month_starts(cfg)
    end = np.datetime64(cfg.extracted_on.date(), "D")
    first_year = int(str(starts[0])[:4]) - 1
    last_year = int(str(end)[:4])
    n = len(c.terms)
    frames = []
    revenue_prev = None
    multiple = np.exp(rng.normal(np.log(25.0), 0.5, n))  # we are one supplier among many
    for year in range(first_year, last_year + 1):
        period_end = np.datetime64(f"{year}-12-31", "D")
        month = (period_end.astype("datetime64[M]") - starts[0].astype("datetime64[M]")).astype(int)
        r = c.risk[:, int(np.clip(month, 0, _simulated_months(cfg) - 1))]
        published = period_end + rng.integers(75, 150, n).astype("timedelta64[D]")
        growth = np.exp(rng.normal(0.04, 0.10, n) - 0.08 * r)
        base = 12 * np.exp(c.log_volume) * multiple if revenue_prev is None else revenue_prev
        revenue = base * growth
        revenue_prev = revenue
        total_assets = revenue * rng.uniform(0.5, 1.2, n)
        equity_ratio = np.clip(0.40 - 0.12 * r + rng.normal(0, 0.08, n), -0.4, 0.9)
        equity = total_assets * equity_ratio
        current_assets = total_assets * rng.uniform(0.3, 0.7, n)
        current_ratio = np.exp(0.30 - 0.22 * r + rng.normal(0, 0.2, n))
        cash_share = np.clip(0.22 - 0.06 * r + rng.normal(0, 0.05, n), 0.01, 0.9)
        publishes = (
            c.has_financials
            & (c.founded < period_end)
            & (published <= end)
            & (np.isnat(c.insolvent_on) | (published < c.insolvent_on))
            & (c.onboarded - np.timedelta64(730, "D") < period_end)
        )
        idx = np.flatnonzero(publishes)
        frames.append(
            pa.table(
                {
                    "client_id": pc.take(c.ids, pa.array(idx)),
                    "period_end": pa.array(np.full(len(idx), period_end), pa.date32()),
                    "published_on": pa.array(published[idx], pa.date32()),
                    "revenue": pa.array(np.round(revenue[idx], 0)),
                    "total_assets": pa.array(np.round(total_assets[idx], 0)),
                    "total_liabilities": pa.array(
                        np.round((total_assets - equity).clip(0)[idx], 0)
                    ),
                    "current_assets": pa.array(np.round(current_assets[idx], 0)),
                    "current_liabilities": pa.array(
                        np.round((current_assets / current_ratio)[idx], 0)
                    ),
                    "cash": pa.array(np.round((current_assets * cash_share)[idx], 0)),
                    "operating_cash_flow": pa.array(
                        np.round((revenue * (0.07 - 0.04 * r + rng.normal(0, 0.03, n)))[idx], 0)
                    ),
                    "equity": pa.array(np.round(equity[idx], 0)),
                }
            )
        )
    financials = pa.concat_tables(frames)
    # Sort by client, then period, so each client's statements sit together.
    financials = financials.take(
        pc.sort_indices(financials, [("client_id", "ascending"), ("period_end", "ascending")])
    )
    insolvent_idx = np.flatnonzero(~np.isnat(c.insolvent_on))
    insolvencies = pa.table(
        {
            "client_id": pc.take(c.ids, pa.array(insolvent_idx)),
            "declared_on": pa.array(c.insolvent_on[insolvent_idx], pa.date32()),
        }
    )
    return financials, insolvencies


def generate_ledger(
    cfg: GeneratorConfig, out: Path | str, *, progress: bool = True
) -> dict[str, int]:
    """Simulate the ledger chunk by chunk and write it to `out` atomically; returns row counts."""
    counts = {
        "clients": 0,
        "invoices": 0,
        "payments": 0,
        "financials": 0,
        "insolvencies": 0,
        "insurer_limits": 0,
        "actions": 0,
        "instalments": 0,
    }
    chunks = range(0, cfg.clients, CHUNK_CLIENTS)
    fx = _rate_series(cfg) if cfg.foreign_currency_share > 0 else None
    with atomic_directory(out) as tmp:
        writers: dict[str, pq.ParquetWriter] = {}
        try:
            for chunk_no, first in enumerate(
                tqdm(chunks, desc="generate", unit="chunk", disable=not progress)
            ):
                rng = np.random.default_rng([cfg.seed, chunk_no])
                n = min(CHUNK_CLIENTS, cfg.clients - first)
                clients = _simulate_clients(cfg, rng, first, n)
                if fx is not None:
                    clients.currency = _invoice_currency(cfg, chunk_no, clients)
                log = None
                tables = []
                if cfg.insured_share > 0:  # the insurer and the action log: a stream of their own
                    log_rng = np.random.default_rng([cfg.seed, chunk_no, 2])
                    limits, insured = _insurer_limits(cfg, log_rng, clients)
                    tables.append(("insurer_limits", limits))
                    log = (log_rng, insured)
                invoices, payments, extra = _simulate_invoices(
                    cfg, rng, clients, counts["invoices"], fx, log
                )
                if extra is not None:
                    tables += [("actions", extra[0]), ("instalments", extra[1])]
                financials, insolvencies = _simulate_financials(cfg, rng, clients)
                for name, table in (
                    ("clients", clients.table),
                    ("invoices", invoices),
                    ("payments", payments),
                    ("financials", financials),
                    ("insolvencies", insolvencies),
                    *tables,
                ):
                    if name not in writers:
                        writers[name] = pq.ParquetWriter(
                            tmp / f"{name}.parquet", table.schema, compression="zstd"
                        )
                    writers[name].write_table(table)
                    counts[name] += table.num_rows
        finally:
            for writer in writers.values():
                writer.close()
        if fx is not None:
            rates = fx.table()
            pq.write_table(rates, tmp / "fx_rates.parquet", compression="zstd")
            counts["fx_rates"] = rates.num_rows
        manifest = {
            "extracted_on": cfg.extracted_on.date().isoformat(),
            "reporting_currency": cfg.currency,
            "generator": asdict(cfg),
            "rows": counts,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return counts
