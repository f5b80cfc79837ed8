"""What the credit officer's page shows about one client, from the same pieces as everything else:
the scoring core for PD, grade, reasons and limits; the early-warning rules of the nightly report
against the client's own score a month earlier; the open invoices and their stages for aging."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.contract import STATEMENT_AMOUNTS, Ledger
from features.payment_behaviour import build_client_features
from scoring.early_warnings import early_warnings
from scoring.receivables import STAGES, max_days_past_due, open_invoices, with_stage
from scoring.scorer import Scorer, client_table

WATERFALL_STEPS = 6  # contributions shown one by one on each side; the rest are summed
HISTORY_MONTHS = 24
LOOKBACK = pd.Timedelta(days=30)  # early warnings compare with the client a month earlier
SEARCH_LIMIT = 20


def search(clients: pd.DataFrame, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, str]]:
    """Clients whose id or name contains `query` (case-insensitive); exact id matches first."""
    q = query.strip().lower()
    ids = clients["client_id"].astype(str)
    names = clients["name"].astype(str)
    hit = ids.str.lower().str.contains(q, regex=False) | names.str.lower().str.contains(
        q, regex=False
    )
    found = clients.loc[hit, ["client_id", "name", "country", "industry"]].astype(str)
    exact = found["client_id"].str.lower() == q
    found = pd.concat([found[exact], found[~exact].sort_values("client_id")]).head(limit)
    return found.to_dict("records")


def waterfall(row: dict[str, Any], steps: int = WATERFALL_STEPS) -> list[dict[str, Any]]:
    """From the model's expected value to this client's raw score: the largest contributions in
    words, the rest summed. The steps add up exactly to the raw score (log-odds)."""
    shown = sorted(
        row["risk_reasons"][:steps] + row["strengths"][:steps],
        key=lambda r: -abs(r["contribution"]),
    )
    rest = float(row["raw_score"]) - float(row["expected_value"])
    rest -= sum(r["contribution"] for r in shown)
    bars = [{"label": "average client (expected value)", "value": float(row["expected_value"])}]
    bars += [{"label": r["text"], "value": float(r["contribution"])} for r in shown]
    bars.append({"label": "all other features", "value": rest})
    return bars


def _payment_history(ledger: Ledger, as_of: pd.Timestamp) -> list[dict[str, Any]]:
    """Per month of settlement: invoices settled, mean and worst days past due at settlement."""
    inv = ledger.invoices
    start = (as_of - pd.DateOffset(months=HISTORY_MONTHS)).to_period("M").to_timestamp()
    settled = inv[(inv["paid_on"] < as_of) & (inv["paid_on"] >= start)]
    if settled.empty:
        return []
    dpd = (settled["paid_on"] - settled["due_on"]).dt.days.clip(lower=0)
    by_month = dpd.groupby(settled["paid_on"].dt.to_period("M"))
    return [
        {
            "month": str(month),
            "invoices": len(d),
            "mean_days_past_due": round(float(d.mean()), 1),
            "max_days_past_due": int(d.max()),
        }
        for month, d in by_month
    ]


def _aging(open_: pd.DataFrame) -> list[dict[str, Any]]:
    buckets = [STAGES[0][1]] + [s[1].split("(")[-1].rstrip(")") for s in STAGES[1:]]
    stage = open_["escalation_stage"].to_numpy() if len(open_) else np.zeros(0, int)
    amounts = open_["outstanding"].to_numpy() if len(open_) else np.zeros(0)
    return [
        {
            "bucket": b,
            "amount": float(amounts[stage == i].sum()),
            "invoices": int((stage == i).sum()),
        }
        for i, b in enumerate(buckets)
    ]


def _financials(ledger: Ledger, as_of: pd.Timestamp) -> dict[str, Any] | None:
    """The latest statement published before `as_of`, with revenue growth on the one before."""
    fin = ledger.financials
    known = fin[fin["published_on"] < as_of].sort_values("period_end")
    if known.empty:
        return None
    last = known.iloc[-1]

    def num(v: Any) -> float | None:
        return None if pd.isna(v) else float(v)

    out: dict[str, Any] = {"period_end": str(last["period_end"].date())}
    out |= {f: num(last.get(f)) for f in STATEMENT_AMOUNTS}
    ca, cl = out["current_assets"], out["current_liabilities"]
    out["current_ratio"] = ca / cl if ca is not None and cl else None
    prior = num(known.iloc[-2]["revenue"]) if len(known) > 1 else None
    rev = out["revenue"]
    out["revenue_growth"] = rev / prior - 1 if rev is not None and prior else None
    return out


def _open_with_stage(ledger: Ledger, as_of: pd.Timestamp) -> pd.DataFrame:
    return with_stage(open_invoices(ledger, as_of), as_of)


def client_view(ledger: Ledger, scorer: Scorer, as_of: pd.Timestamp) -> dict[str, Any]:
    """Everything the client page shows; `ledger` holds one client's whole history."""
    client = ledger.clients.iloc[0]
    limit = client.get("credit_limit")
    current_limit = None if limit is None or pd.isna(limit) else float(limit)
    features = build_client_features(ledger, as_of_dates=[as_of - LOOKBACK, as_of])
    scored = scorer.score(features, top=WATERFALL_STEPS)
    limits = pd.Series([current_limit if current_limit is not None else np.nan] * len(scored))
    rows = client_table(scored, limits)
    now = scored.iloc[-1].to_dict()
    open_now = _open_with_stage(ledger, as_of)
    flags: list[str] = []
    if len(scored) == 2:  # a client onboarded within the month has nothing to compare with
        found = early_warnings(
            rows.iloc[[1]],
            max_days_past_due(open_now),
            rows.iloc[[0]],
            max_days_past_due(_open_with_stage(ledger, as_of - LOOKBACK)),
        )
        flags = found[0]["flags"] if found else []
    worst = open_now.sort_values(["days_past_due", "outstanding"], ascending=False).head(10)
    return {
        "score_row": now,
        "name": str(client["name"]),
        "country": str(client["country"]),
        "industry": str(client["industry"]),
        "onboarded_on": str(pd.Timestamp(client["onboarded_on"]).date()),
        "current_limit": current_limit,
        "pd_a_month_ago": float(scored.iloc[0]["pd_12m"]) if len(scored) == 2 else None,
        "grade_a_month_ago": int(scored.iloc[0]["grade"]) if len(scored) == 2 else None,
        "waterfall": waterfall(now),
        "master_scale": [
            {"grade": g + 1, "upper_pd": u, "label": lab}
            for g, (u, lab) in enumerate(
                zip(
                    scorer.default.master_scale.upper,
                    scorer.default.master_scale.labels,
                    strict=True,
                )
            )
        ],
        "early_warnings": flags,
        "payment_history": _payment_history(ledger, as_of),
        "aging": _aging(open_now),
        "open_invoices": [
            {
                "invoice_id": str(r.invoice_id),
                "due_on": str(r.due_on.date()),
                "outstanding": float(r.outstanding),
                "days_past_due": int(r.days_past_due),
                "action": STAGES[int(r.escalation_stage)][1],
            }
            for r in worst.itertuples()
        ],
        "financials": _financials(ledger, as_of),
    }
