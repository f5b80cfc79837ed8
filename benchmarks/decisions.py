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


if __name__ == "__main__":
    main()
