"""Decisions backtested: status, grades, limits and early warnings judged against what happened.

A synthetic ledger with a seed no model was trained on and no threshold tuned on is scored by the
champions at 12 consecutive month-ends, each run with the previous as `--previous`; the outcomes
(12-month defaults) come from the same ledger, which runs a year past the last run. Printed beside
each figure: the naive rules this project used before (the point-in-time grade, the old warning
rules, limits that ignore a client's status), computed in the same run from the same scores.

    .venv/bin/python benchmarks/decisions.py [--seed 2027] [--clients 3000]

The champions are those of the embedded store (`make demo` trains them on seed 42).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.io import load_ledger
from features.labels import default_events
from features.synthetic import GeneratorConfig, generate_ledger
from portfolio.run import run_scoring
from scoring.scorer import Scorer

MONTHS = 12
OLD_PD_JUMP, OLD_NOTCHES, OLD_GROWTH, OLD_FLOOR = 2.0, 2, 1.5, 10_000.0  # the rules before
OLD_REFUSE_PD, OLD_REFER = 0.20, (8, 9)
MARGINS = (0.10, 0.25)  # gross margins the profit view reports (trade margins span that range)
# Round 2's limit rule ("today's rules" before issue 34), kept here to be judged beside the new
# one in the same run: cover by grade of the usual need, absolute caps by grade, an expected-loss
# cap, revenue and equity shares, the country's cap, the new-client ramp.
R2_COVER = (2.0, 1.9, 1.8, 1.7, 1.6, 1.4, 1.2, 1.0, 0.8, 0.0)
R2_CAP = (2e6, 1.5e6, 1e6, 750e3, 500e3, 300e3, 150e3, 75e3, 25e3, 0.0)
R2_EL, R2_LGD, R2_GRACE, R2_REVENUE, R2_EQUITY = 25_000.0, 0.45, 30, 0.10, 0.50
R2_START, R2_STEP = 10_000.0, 10_000.0


@njit(cache=True)
def _simulate(
    first: np.ndarray,
    last: np.ndarray,
    limit: np.ndarray,  # per invoice: the limit in force when it was ordered (its month's)
    default_day: np.ndarray,  # per client, its first default after `start` (inf: none)
    issued: np.ndarray,
    paid: np.ndarray,
    amount: np.ndarray,
    start: float,
    end: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each client's orders from `start` to `end` (or its default) in the order placed: one is
    enabled when it fits the headroom of the limit in force when it was placed (the open balance
    of the invoices already enabled, and those open at `start`, plus the order, within it), else
    blocked. Returns per client the sales enabled, the sales blocked and the exposure at default
    (the enabled orders still unpaid on the default day)."""
    n = len(first)
    enabled = np.zeros(n)
    blocked = np.zeros(n)
    ead = np.zeros(n)
    for c in range(n):
        stop = min(end, default_day[c])
        kept = np.zeros(last[c] - first[c], dtype=np.bool_)
        for j in range(first[c], last[c]):
            if issued[j] < start or issued[j] >= stop:
                continue
            balance = 0.0
            for k in range(first[c], j):
                if paid[k] > issued[j] and (issued[k] < start or kept[k - first[c]]):
                    balance += amount[k]
            if balance + amount[j] <= limit[j]:
                kept[j - first[c]] = True
                enabled[c] += amount[j]
            else:
                blocked[c] += amount[j]
        if default_day[c] < end:
            for j in range(first[c], last[c]):
                if kept[j - first[c]] and paid[j] > default_day[c]:
                    ead[c] += amount[j]
    return enabled, blocked, ead


def _truly_in_default(ledger, as_of: pd.Timestamp) -> pd.Series:  # type: ignore[no-untyped-def]
    """Clients in default at `as_of`, from the ledger's tables directly (not the scoring code):
    insolvent before it, an open invoice more than 90 days past due, or a write-off within a year."""
    inv, ins = ledger.invoices, ledger.insolvencies
    insolvent = set(ins.loc[ins["declared_on"] < as_of, "client_id"])
    open_ = (
        (inv["issued_on"] < as_of) & ~(inv["paid_on"] < as_of) & ~(inv["written_off_on"] < as_of)
    )
    late = set(inv.loc[open_ & ((as_of - inv["due_on"]).dt.days > 90), "client_id"])
    wo = inv["written_off_on"]
    written = set(inv.loc[(wo < as_of) & (wo >= as_of - pd.Timedelta(days=365)), "client_id"])
    paid_late = inv["paid_on"] - inv["due_on"]
    cured_late = (
        (inv["paid_on"] < as_of)
        & (paid_late.dt.days > 90)
        & (inv["paid_on"] >= as_of - pd.Timedelta(days=365))
    )
    recent = set(inv.loc[cured_late, "client_id"])
    return pd.Series(sorted(insolvent | late | written | recent), dtype=object)


def _score_months(ledger_dir: Path, runs: Path, dates: list[pd.Timestamp]) -> list[pd.DataFrame]:
    scorer = Scorer.from_registry()
    tables = []
    previous = None
    for day in dates:
        start = time.perf_counter()
        out, _ = run_scoring(
            ledger_dir, day, runs, previous=previous, progress=False, scorer=scorer
        )
        clients = pd.read_parquet(out / "clients.parquet")
        features = pd.read_parquet(out / "features.parquet")
        model_pd = scorer.default.predict(features, threads=2)["pd"].to_numpy()
        own = pd.DataFrame({"client_id": features["client_id"], "model_pd": model_pd})
        own.to_parquet(out / "model_pd.parquet", index=False)
        tables.append(clients.merge(own, on="client_id", how="left"))
        print(
            f"  scored {day.date()}: {len(clients):,} clients in {time.perf_counter() - start:.1f} s"
        )
        previous = out
    return tables


def _round2_limits(c: pd.DataFrame, standing: dict[str, np.ndarray]) -> np.ndarray:
    """Round 2's recommended limits (before issue 34) for a run's clients."""
    grade = np.clip(pd.to_numeric(c["grade"], errors="coerce").fillna(10).to_numpy(int), 1, 10) - 1
    pd_ = c["decision_pd"].to_numpy(dtype="float64")
    status = c["status"].astype(str).to_numpy()
    volume, terms = standing["monthly_volume"], standing["usual_terms_days"]
    terms = np.where(np.isfinite(terms), terms, 30.0)
    need = volume * (terms + R2_GRACE) / 30.44 * np.asarray(R2_COVER)[grade]
    new, dormant = status == "new", status == "dormant"
    balance, revenue, equity = standing["open_balance"], standing["revenue"], standing["equity"]
    with np.errstate(divide="ignore", invalid="ignore"):
        caps = [
            np.asarray(R2_CAP)[grade],
            R2_EL / (pd_ * R2_LGD),
            np.where(
                dormant,
                np.maximum(balance, R2_START),
                np.where(
                    np.isfinite(volume), np.where(new, np.maximum(need, R2_START), need), np.inf
                ),
            ),
            np.where(np.isfinite(revenue) & (revenue > 0), revenue * R2_REVENUE, np.inf),
            np.where(np.isfinite(equity), np.maximum(equity, 0) * R2_EQUITY, np.inf),
            np.where(
                new,
                R2_START + R2_STEP * np.floor(np.maximum(standing["on_time_months"], 0)),
                np.inf,
            ),
            standing["country_cap"],
        ]
    limit = np.floor(np.maximum(np.minimum.reduce(caps), 0.0) / 1000) * 1000
    refused = (pd_ >= OLD_REFUSE_PD) | np.isin(status, ["in_default", "undetermined"])
    return np.where(refused, 0.0, limit)


def _profit_view(
    ledger, tables: list[pd.DataFrame], features: list[pd.DataFrame], dates: list[pd.Timestamp]
) -> None:  # type: ignore[no-untyped-def]
    """Each month-end's limits applied to what each live client then bought over 12 months, rule
    by rule: sales enabled and blocked, exposure at default, profit at each margin."""
    from scoring.policy import CreditPolicy

    lgd = CreditPolicy.load().limits.lgd
    scorer = Scorer.from_registry()
    inv = ledger.invoices
    rate = ledger.rates.on(inv["currency"], inv["issued_on"])
    day0 = pd.Timestamp("1970-01-01")
    issued_all = (inv["issued_on"] - day0).dt.days.to_numpy(dtype="float64")
    paid_all = (inv["paid_on"] - day0).dt.days.to_numpy(dtype="float64")
    paid_all = np.where(np.isnan(paid_all), np.inf, paid_all)
    amount_all = inv["amount"].to_numpy(dtype="float64") * rate
    events = default_events(ledger)
    rules = ("recommended", "current", "none", "today (round 2)")
    totals = {r: np.zeros(5) for r in rules}  # enabled, blocked, ead, good enabled, good total
    by_grade: dict[str, dict[int, np.ndarray]] = {r: {} for r in rules}
    for day, c, f in zip(dates, tables, features, strict=True):
        live = c[c["status"].astype(str) != "in_default"].reset_index(drop=True)
        rows = scorer.prepare(f.set_index("client_id").loc[live["client_id"]].reset_index())
        standing = rows.standing
        ids = live["client_id"].to_numpy(dtype=object)
        order = pd.Index(ids)
        at = order.get_indexer(inv["client_id"])
        mine = np.flatnonzero(at >= 0)
        mine = mine[np.lexsort((issued_all[mine], at[mine]))]
        owner = at[mine]
        first = np.searchsorted(owner, np.arange(len(ids)), side="left")
        last = np.searchsorted(owner, np.arange(len(ids)), side="right")
        start = float((day - day0).days)
        end = float((day + pd.DateOffset(months=12) - day0).days)
        later = events[events["on"] > day].groupby("client_id")["on"].min()
        dflt = pd.Series(ids).map(later)
        default_day = np.where(
            dflt.isna(), np.inf, (pd.to_datetime(dflt) - day0).dt.days.to_numpy(dtype="float64")
        )
        good = default_day >= end
        grade = pd.to_numeric(live["grade"], errors="coerce").fillna(0).to_numpy(int)
        limits = {
            "recommended": live["recommended_limit"].to_numpy(dtype="float64"),
            "current": np.nan_to_num(live["current_limit"].to_numpy(dtype="float64"), nan=np.inf),
            "none": np.full(len(ids), np.inf),
            "today (round 2)": _round2_limits(live, standing),
        }
        for rule, limit in limits.items():
            enabled, blocked, ead = _simulate(
                first,
                last,
                limit[owner],  # the month-end's limit for all 12 months
                default_day,
                issued_all[mine],
                paid_all[mine],
                amount_all[mine],
                start,
                end,
            )
            totals[rule] += [
                enabled.sum(),
                blocked.sum(),
                ead.sum(),
                enabled[good].sum(),
                (enabled[good] + blocked[good]).sum(),
            ]
            for g in np.unique(grade):
                m = grade == g
                by_grade[rule].setdefault(int(g), np.zeros(3))
                by_grade[rule][int(g)] += [enabled[m].sum(), blocked[m].sum(), ead[m].sum()]
    n = len(dates)
    print("\nProfit view: each month-end's limits applied to what live clients bought over the")
    print(f"next 12 months (mean per month-end; LGD {lgd:.0%} of the exposure at default)")
    head = f"{'rule':<18}{'sales enabled':>15}{'blocked':>13}{'good enabled':>14}{'EAD':>13}"
    head += "".join(f"{'profit @' + format(m, '.0%'):>16}" for m in MARGINS)
    print(head)
    for rule in rules:
        e, b, ead, ge, gt = totals[rule] / n
        line = f"{rule:<18}{e:>15,.0f}{b:>13,.0f}{ge / max(gt, 1):>14.2%}{ead:>13,.0f}"
        line += "".join(f"{m * e - lgd * ead:>16,.0f}" for m in MARGINS)
        print(line)
    cur = totals["current"][2]
    print(
        f"exposure at default within the recommended limits: {totals['recommended'][2] / max(cur, 1):.1%} "
        "of the current limits' (goal <= 50 %); non-defaulters' purchases enabled: goal >= 99 %"
    )
    for margin in MARGINS:
        profit = {r: (margin * totals[r][0] - lgd * totals[r][2]) / n for r in rules}
        best = max(profit, key=lambda r: profit[r])
        print(
            f"  margin {margin:.0%}: recommended - current {profit['recommended'] - profit['current']:+,.0f}, "
            f"- none {profit['recommended'] - profit['none']:+,.0f}, - today {profit['recommended'] - profit['today (round 2)']:+,.0f} "
            f"(best: {best})"
        )
    print(
        "by grade (recommended limits; mean per month-end): grade, enabled share, EAD, profit @10 % / 25 %"
    )
    for g, (e, b, ead) in sorted(by_grade["recommended"].items()):
        e, b, ead = e / n, b / n, ead / n
        print(
            f"  {g if g else 'new/none':>8}  {e / max(e + b, 1):7.2%}  {ead:>12,.0f}  "
            + "  ".join(f"{m * e - lgd * ead:>12,.0f}" for m in MARGINS)
        )


def _rolling_view(
    ledger, tables: list[pd.DataFrame], features: list[pd.DataFrame], dates: list[pd.Timestamp]
) -> None:  # type: ignore[no-untyped-def]
    """The limits as the nightly run applies them: re-decided at every month-end, each month's
    orders meeting the limit (or hold) decided at the month-end before; one year of orders,
    rule by rule. A client not yet scored at a month-end meets the new-client start cap, one in
    default nothing (no limits: everything)."""
    from scoring.policy import CreditPolicy

    policy = CreditPolicy.load().limits
    lgd, start_cap = policy.lgd, policy.new_client.start_cap
    scorer = Scorer.from_registry()
    inv = ledger.invoices
    day0 = pd.Timestamp("1970-01-01")
    rate = ledger.rates.on(inv["currency"], inv["issued_on"])
    issued = (inv["issued_on"] - day0).dt.days.to_numpy(dtype="float64")
    paid = (inv["paid_on"] - day0).dt.days.to_numpy(dtype="float64")
    paid = np.where(np.isnan(paid), np.inf, paid)
    amount = inv["amount"].to_numpy(dtype="float64") * rate
    ids = np.array(sorted(set(inv["client_id"])), dtype=object)
    at = pd.Index(ids).get_indexer(inv["client_id"])
    order = np.lexsort((issued, at))
    owner = at[order]
    first = np.searchsorted(owner, np.arange(len(ids)), side="left")
    last = np.searchsorted(owner, np.arange(len(ids)), side="right")
    start = float((dates[0] - day0).days)
    end = float((dates[-1] + pd.DateOffset(months=1) - day0).days)
    bounds = [float((d - day0).days) for d in dates] + [end]
    month = np.searchsorted(np.asarray(bounds), issued[order], side="right") - 1  # -1: before
    events = default_events(ledger)
    later = events[events["on"] > dates[0]].groupby("client_id")["on"].min()
    dflt = pd.Series(ids).map(later)
    default_day = np.where(
        dflt.isna(), np.inf, (pd.to_datetime(dflt) - day0).dt.days.to_numpy(dtype="float64")
    )
    # a non-defaulter: no default event from a year before the first month-end (in default then:
    # a defaulter, refused by every rule but none) to a year after the last order
    before = (
        events[events["on"] > dates[0] - pd.DateOffset(years=1)].groupby("client_id")["on"].min()
    )
    good = (default_day >= end + 365) & pd.Series(ids).map(before).isna().to_numpy()
    rules = ("recommended", "current", "none", "today (round 2)")
    per_month: dict[str, np.ndarray] = {
        r: np.full((len(dates), len(ids)), start_cap) for r in rules
    }
    per_month["none"][:] = np.inf
    for k, (c, f) in enumerate(zip(tables, features, strict=True)):
        where = pd.Index(ids).get_indexer(c["client_id"])
        known = where >= 0
        live = c["status"].astype(str).to_numpy() != "in_default"
        rows = scorer.prepare(f.set_index("client_id").loc[c["client_id"]].reset_index())
        values = {
            "recommended": c["recommended_limit"].to_numpy(dtype="float64"),
            "current": np.nan_to_num(c["current_limit"].to_numpy(dtype="float64"), nan=np.inf),
            "today (round 2)": _round2_limits(c, rows.standing),
        }
        for rule, v in values.items():
            per_month[rule][k, where[known]] = np.where(live, v, 0.0)[known]
    print("\nRolling view: the limits re-decided at every month-end, as the nightly run does; a")
    print(f"year of orders ({dates[0].date()} to {dates[-1].date()} + 1 month), totals")
    head = f"{'rule':<18}{'sales enabled':>15}{'blocked':>13}{'good enabled':>14}{'EAD':>13}"
    head += "".join(f"{'profit @' + format(m, '.0%'):>16}" for m in MARGINS)
    print(head)
    results = {}
    for rule in rules:
        limits = np.where(
            month >= 0, per_month[rule][np.clip(month, 0, len(dates) - 1), owner], np.inf
        )
        enabled, blocked, ead = _simulate(
            first, last, limits, default_day, issued[order], paid[order], amount[order], start, end
        )
        results[rule] = (enabled.sum(), blocked.sum(), ead.sum())
        ge = enabled[good].sum() / max((enabled[good] + blocked[good]).sum(), 1)
        line = f"{rule:<18}{enabled.sum():>15,.0f}{blocked.sum():>13,.0f}{ge:>14.2%}{ead.sum():>13,.0f}"
        line += "".join(f"{m * enabled.sum() - lgd * ead.sum():>16,.0f}" for m in MARGINS)
        print(line)
    print(
        f"exposure at default within the recommended limits: "
        f"{results['recommended'][2] / max(results['current'][2], 1):.1%} of the current limits'"
    )
    for margin in MARGINS:
        profit = {r: margin * v[0] - lgd * v[2] for r, v in results.items()}
        print(
            f"  margin {margin:.0%}: recommended - current {profit['recommended'] - profit['current']:+,.0f}, "
            f"- none {profit['recommended'] - profit['none']:+,.0f}, - today "
            f"{profit['recommended'] - profit['today (round 2)']:+,.0f} (best: {max(profit, key=lambda r: profit[r])})"
        )


def _read(run: Path) -> pd.DataFrame:
    """A kept run's clients with the model's own PD (status ignored), as `_score_months` adds."""
    clients = pd.read_parquet(run / "clients.parquet")
    model_pd = pd.read_parquet(run / "model_pd.parquet")
    return clients.merge(model_pd, on="client_id", how="left")


def _outcomes(ledger, clients: pd.DataFrame, day: pd.Timestamp) -> np.ndarray:  # type: ignore[no-untyped-def]
    """1 where a default event falls in [day, day + 12 months)."""
    events = default_events(ledger)
    end = day + pd.DateOffset(months=12)
    hit = events[(events["on"] >= day) & (events["on"] < end)]
    return clients["client_id"].isin(set(hit["client_id"])).to_numpy().astype(int)


def _old_warnings(
    now: pd.DataFrame, then: pd.DataFrame, old_grade_now: pd.Series, old_grade_then: pd.Series
) -> set[str]:
    """The early-warning rules before this change: PD doubled, grade down two notches (PIT),
    newly 30+ days past due, open balance up 50 % and 10,000."""
    m = now.merge(then, on="client_id", suffixes=("", "_p"))
    g = (
        pd.Series(old_grade_now.to_numpy(), index=now["client_id"])
        .reindex(m["client_id"])
        .to_numpy()
    )
    g0 = (
        pd.Series(old_grade_then.to_numpy(), index=then["client_id"])
        .reindex(m["client_id"])
        .to_numpy()
    )
    flag = (
        (m["model_pd"] >= OLD_PD_JUMP * m["model_pd_p"]).to_numpy()
        | (g - g0 >= OLD_NOTCHES)
        | ((m["max_days_past_due"] > 30) & (m["max_days_past_due_p"] <= 30)).to_numpy()
        | (
            (m["open_balance"] >= OLD_GROWTH * m["open_balance_p"])
            & (m["open_balance"] - m["open_balance_p"] >= OLD_FLOOR)
        ).to_numpy()
    )
    return set(m.loc[flag, "client_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=2027, help="ledger seed (not 42: the demo's)")
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument(
        "--keep", type=Path, help="keep the ledger and runs in this folder (reused if present)"
    )
    args = parser.parse_args()

    from scoring.bundle import MasterScale

    scale = MasterScale.load()
    dates = list(pd.date_range("2024-01-31", periods=MONTHS, freq="ME"))
    with tempfile.TemporaryDirectory(prefix="creditguard-decisions-") as tmp:
        root = args.keep or Path(tmp)
        cfg = GeneratorConfig(clients=args.clients, months=48, seed=args.seed, start="2022-01-01")
        print(f"ledger: seed {args.seed}, {args.clients:,} clients, 2022-2025 (+ history)")
        if not (root / "ledger").exists():
            generate_ledger(cfg, root / "ledger", progress=False)
        ledger = load_ledger(root / "ledger")
        if args.keep and (root / "runs" / str(dates[-1].date())).exists():
            tables = [_read(root / "runs" / str(d.date())) for d in dates]
        else:
            tables = _score_months(root / "ledger", root / "runs", dates)
        features = [
            pd.read_parquet(root / "runs" / str(d.date()) / "features.parquet") for d in dates
        ]

    # ---- status and limits: nothing for clients in default
    approved_new = positive_new = approved_old = positive_old = 0
    for day, c in zip(dates, tables, strict=True):
        dead = c["client_id"].isin(set(_truly_in_default(ledger, day)))
        approved_new += int((dead & c["limit_decision"].isin(["approve", "approve_in_part"])).sum())
        positive_new += int((dead & (c["recommended_limit"] > 0)).sum())
        old_grade = scale.grade(c["model_pd"].to_numpy())
        old_ok = (c["model_pd"] < OLD_REFUSE_PD) & ~np.isin(old_grade, OLD_REFER) & (old_grade < 10)
        approved_old += int((dead & old_ok).sum())
        positive_old += int((dead & (c["model_pd"] < OLD_REFUSE_PD)).sum())

    # ---- PD discrimination on live clients, pooled over the months
    pit, dec, ys = [], [], []
    for day, c in zip(dates, tables, strict=True):
        live = (c["status"] != "in_default").to_numpy()
        y = _outcomes(ledger, c, day)
        pit.append(c["pd_12m"].to_numpy()[live])
        dec.append(c["decision_pd"].to_numpy()[live])
        ys.append(y[live])
    y_all = np.concatenate(ys)
    auc_pit = roc_auc_score(y_all, np.concatenate(pit))
    auc_dec = roc_auc_score(y_all, np.concatenate(dec))

    # ---- grade stability month to month (live at both month-ends)
    kept_new, two_new, two_soft_new, kept_old, two_old, pairs = 0, 0, 0, 0, 0, 0
    for then, now in pairwise(tables):
        m = now.merge(then, on="client_id", suffixes=("", "_p"))
        live = ((m["status"] != "in_default") & (m["status_p"] != "in_default")).to_numpy()
        m = m[live]
        g, g0 = m["grade"].astype(float).to_numpy(), m["grade_p"].astype(float).to_numpy()
        o, o0 = scale.grade(m["model_pd"].to_numpy()), scale.grade(m["model_pd_p"].to_numpy())
        days = (pd.Timestamp(m["as_of"].iloc[0]) - pd.Timestamp(m["as_of_p"].iloc[0])).days
        hard = (
            ((m["max_days_past_due"] > 60) & (m["max_days_past_due_p"] <= 60))
            | ((m["equity"] < 0) & (m["statement_age_days"] < days))
        ).to_numpy()
        pairs += len(m)
        kept_new += int((g == g0).sum())
        two_new += int((np.abs(g - g0) >= 2).sum())
        two_soft_new += int(((np.abs(g - g0) >= 2) & ~hard).sum())
        kept_old += int((o == o0).sum())
        two_old += int((np.abs(o - o0) >= 2).sum())

    # ---- early warnings: share flagged, lift, capture, lead time
    from scoring.early_warnings import early_warnings
    from scoring.policy import CreditPolicy

    policy = CreditPolicy.load()
    flagged_new: dict[pd.Timestamp, set[str]] = {}
    flagged_old: dict[pd.Timestamp, set[str]] = {}
    for i in range(1, len(tables)):
        now, then = tables[i], tables[i - 1]
        flagged_new[dates[i]] = {w["client_id"] for w in early_warnings(now, then, policy.warnings)}
        flagged_old[dates[i]] = _old_warnings(
            now,
            then,
            pd.Series(scale.grade(now["model_pd"].to_numpy())),
            pd.Series(scale.grade(then["model_pd"].to_numpy())),
        )
    first_default = default_events(ledger).groupby("client_id")["on"].min()

    def warning_figures(flagged: dict[pd.Timestamp, set[str]]) -> dict[str, float]:
        shares, f_y, u_y = [], [], []
        for i in range(1, len(tables)):
            c, day = tables[i], dates[i]
            live = c[(c["status"] != "in_default")]
            y = _outcomes(ledger, live, day)
            hit = live["client_id"].isin(flagged[day]).to_numpy()
            shares.append(hit.mean())
            f_y.append(y[hit])
            u_y.append(y[~hit])
        fy, uy = np.concatenate(f_y), np.concatenate(u_y)
        lift = fy.mean() / uy.mean() if uy.mean() > 0 else float("nan")
        # capture: clients whose first default falls after the first flagging run and within
        # the window; flagged in any run of the 12 months before it
        start, end = dates[1], dates[-1] + pd.DateOffset(months=12)
        defaulters = first_default[(first_default > start) & (first_default <= end)]
        live_at_start = set(tables[1].loc[tables[1]["status"] != "in_default", "client_id"])
        defaulters = defaulters[defaulters.index.isin(live_at_start)]
        caught, leads = 0, []
        for cid, on in defaulters.items():
            runs = [
                d for d in flagged if on - pd.DateOffset(months=12) <= d < on and cid in flagged[d]
            ]
            if runs:
                caught += 1
                leads.append((on - min(runs)).days)
        return {
            "flagged_share": float(np.mean(shares)),
            "flagged_share_max": float(np.max(shares)),
            "lift": float(lift),
            "capture": caught / max(len(defaulters), 1),
            "defaulters": float(len(defaulters)),
            "lead_days": float(np.median(leads)) if leads else float("nan"),
        }

    new_w, old_w = warning_figures(flagged_new), warning_figures(flagged_old)

    # ---- exposure at default within limits: the last run before each default
    ead_rec = ead_cur = ead_all = ead_secured = ead_insured = 0.0
    for cid, on in first_default.items():
        before = [
            (d, t)
            for d, t in zip(dates, tables, strict=True)
            if d < on <= d + pd.DateOffset(months=12)
        ]
        if not before:
            continue
        _, t = before[-1]
        row = t[t["client_id"] == cid]
        if row.empty or row["status"].iloc[0] == "in_default":
            continue
        balance = float(row["open_balance"].iloc[0])
        ead_all += balance
        ead_rec += min(balance, float(row["recommended_limit"].iloc[0]))
        ead_cur += min(balance, float(np.nan_to_num(row["current_limit"].iloc[0], nan=balance)))
        # the terms recommended then: anything but an open account secures new sales
        if row["terms_kind"].iloc[0] != "open_account":
            ead_secured += balance
        ead_insured += float(row["insured_exposure"].iloc[0])

    # ---- payment terms by risk: the 12-month default rate of live clients by the terms
    # recommended (pooled over the months), against everyone kept on open account
    by_terms: dict[str, list[int]] = {}
    for day, c in zip(dates, tables, strict=True):
        live = (c["status"] != "in_default").to_numpy()
        y = _outcomes(ledger, c, day)[live]
        for kind, hit in zip(c["terms_kind"].to_numpy()[live], y, strict=True):
            by_terms.setdefault(str(kind), []).append(int(hit))

    print("\nfigure                                          this change      before (naive)")
    print(
        f"PD AUC, live clients (decision PD | PIT PD)      {auc_dec:.4f}          {auc_pit:.4f}   (difference {auc_dec - auc_pit:+.4f}; goal >= -0.005)"
    )
    print(
        f"grades kept month to month                      {kept_new / pairs:6.1%}          {kept_old / pairs:6.1%}   (goal >= 85 %)"
    )
    print(
        f"two notches or more                             {two_new / pairs:6.1%}          {two_old / pairs:6.1%}"
    )
    print(
        f"  ... without a hard event                      {two_soft_new / pairs:6.1%}                   (goal <= 3 %)"
    )
    print(
        f"live clients flagged per month (mean, max)      {new_w['flagged_share']:6.1%} {new_w['flagged_share_max']:5.1%}    {old_w['flagged_share']:6.1%} {old_w['flagged_share_max']:5.1%}   (goal <= 5 %)"
    )
    print(
        f"12-month default rate, flagged / unflagged      {new_w['lift']:6.2f}x          {old_w['lift']:6.2f}x   (goal >= 5x)"
    )
    print(
        f"defaulters flagged in the 12 months before      {new_w['capture']:6.1%}          {old_w['capture']:6.1%}   (goal >= 50 %; {new_w['defaulters']:.0f} defaulters)"
    )
    print(
        f"median lead time of the first flag (days)       {new_w['lead_days']:6.0f}          {old_w['lead_days']:6.0f}"
    )
    print(
        f"clients in default approved (client-months)     {approved_new:6d}          {approved_old:6d}   (must be 0)"
    )
    print(
        f"clients in default with a positive limit        {positive_new:6d}          {positive_old:6d}   (must be 0)"
    )
    print(
        f"exposure at default within recommended limits   {ead_rec / max(ead_all, 1):6.1%}   within current limits {ead_cur / max(ead_all, 1):6.1%}  ({ead_all:,.0f} in all)"
    )
    print(
        f"exposure at default on secured terms            {ead_secured / max(ead_all, 1):6.1%}          {0:6.1%}   (advance, L/C or instalments recommended; naive: all on open account)"
    )
    print(f"exposure at default insured                     {ead_insured / max(ead_all, 1):6.1%}")
    print("12-month default rate of live clients by the terms recommended (client-months):")
    order = ["advance_payment", "letter_of_credit", "bank_guarantee", "instalments", "open_account"]
    for kind in [k for k in order if k in by_terms]:
        hits = by_terms[kind]
        print(f"  {kind:<18} {np.mean(hits):6.1%}  of {len(hits):,}")
    everyone = np.concatenate([np.asarray(v) for v in by_terms.values()])
    print(f"  {'all (naive)':<18} {everyone.mean():6.1%}  of {len(everyone):,}")

    # ---- the price of safer terms: what the clients the rules move off open account bought
    inv = ledger.invoices
    value = inv["amount"].to_numpy(dtype="float64") * ledger.rates.on(
        inv["currency"], inv["issued_on"]
    )
    moved_sales = moved_n = kept_n = 0.0
    moved_y: list[int] = []
    for day, c in zip(dates, tables, strict=True):
        live = c[c["status"].astype(str) != "in_default"]
        rule = live["terms_rule"].astype(str)
        moved = live[
            (live["terms_kind"].astype(str) != "open_account") | rule.str.contains("priced")
        ]
        kept_n += int(rule.str.contains("priced").sum())
        window = (inv["issued_on"] > day) & (inv["issued_on"] <= day + pd.DateOffset(months=12))
        bought = (
            pd.Series(value[window.to_numpy()], index=inv.loc[window, "client_id"])
            .groupby(level=0)
            .sum()
        )
        moved_sales += float(bought.reindex(moved["client_id"]).fillna(0).sum())
        moved_n += len(moved)
        moved_y += list(_outcomes(ledger, moved, day))
    print(
        f"clients the terms rules move off open account: {moved_n / MONTHS:,.0f} a month-end, who bought "
        f"{moved_sales / MONTHS:,.0f} over the next 12 months on open account (the sales safer terms "
        f"put at risk; margin {MARGINS[0]:.0%}: {MARGINS[0] * moved_sales / MONTHS:,.0f}, {MARGINS[1]:.0%}: "
        f"{MARGINS[1] * moved_sales / MONTHS:,.0f}); their default rate {np.mean(moved_y) if moved_y else float('nan'):.1%}; "
        f"the pricing kept {kept_n / MONTHS:,.0f} of them on open account"
    )

    # ---- automation: decisions on the limits in force, and who is referred
    counts: dict[str, int] = {}
    rate: dict[str, list[int]] = {}
    ties, empty = [], []
    for day, c in zip(dates, tables, strict=True):
        live = c[c["status"].astype(str) != "in_default"]
        y = _outcomes(ledger, live, day)
        for decision, hit in zip(live["limit_decision"].astype(str), y, strict=True):
            counts[decision] = counts.get(decision, 0) + 1
            rate.setdefault(decision, []).append(int(hit))
        top = live["pd_12m"].round(6).value_counts(normalize=True)
        ties.append(float(top.iloc[0]) if len(top) else 0.0)
        grades = pd.to_numeric(live["grade"], errors="coerce")
        empty.append(sum(1 for g in range(1, 10) if (grades == g).mean() < 0.01))
    total = sum(counts.values())
    print("batch decisions on the limits in force (live client-months), 12-month default rate:")
    for decision in ("approve", "reduce", "hold", "refer", "refuse", "no current limit"):
        if decision in counts:
            print(
                f"  {decision:<17} {counts[decision] / total:6.1%}  default rate {np.mean(rate[decision]):6.1%}"
            )
    print(
        f"referrals {counts.get('refer', 0) / total:.1%} of live clients (goal <= 10 %); PD spread: at most "
        f"{max(ties):.1%} of live clients share one PD (goal <= 2 %), grades 1-9 under 1 % of live "
        f"clients: {max(empty)} at worst (goal 0)"
    )
    _profit_view(ledger, tables, features, dates)
    _rolling_view(ledger, tables, features, dates)


if __name__ == "__main__":
    main()
