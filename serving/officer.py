"""What the credit officer's page shows about one client, from the same pieces as everything else:
the scoring core for status, PDs, grade, reasons and limits; the early-warning rules of the
nightly report against the client a month earlier; the nightly run's invoice rows and worklist
for aging and collections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import FeatureSpec
from features.contract import STATEMENT_AMOUNTS, Ledger
from features.payment_behaviour import build_client_features
from portfolio.batch import invoice_rows, with_insurance, worklist_rows
from portfolio.letters import client_letters
from portfolio.runs import RunHistory
from scoring.collections import rank_worklist
from scoring.dso import dso_measures, dso_record, monthly_positions
from scoring.early_warnings import early_warnings
from scoring.receivables import STAGES, open_invoices
from scoring.scorer import History, Scorer, Scores, client_table

WATERFALL_STEPS = 6  # contributions shown one by one on each side; the rest are summed
HISTORY_MONTHS = 24
DSO_MONTHS = 12
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


def waterfall(
    scores: Scores, i: int, catalog: Mapping[str, FeatureSpec], steps: int = WATERFALL_STEPS
) -> list[dict[str, Any]]:
    """From the model's expected value to client i's raw score: the largest contributions in
    words, the rest summed by family ("other payment features"). The steps add up exactly to the
    raw score (log-odds) when `scores` carries every contribution (`top` = every feature). A
    client in default has none: its status, not the model, explains it."""
    if scores.status[i] == "in_default":
        return []
    risks, strengths = scores.risk_reasons[i], scores.strengths[i]
    shown = sorted(risks[:steps] + strengths[:steps], key=lambda r: -abs(r.contribution))
    expected = float(scores.expected_value[i])
    bars: list[dict[str, Any]] = [{"label": "average client (expected value)", "value": expected}]
    bars += [{"label": r.text, "value": float(r.contribution)} for r in shown]
    others: dict[str, float] = {}
    for r in risks[steps:] + strengths[steps:]:
        spec = catalog.get(r.feature)
        family = f"other {spec.family} features" if spec else "other features"
        others[family] = others.get(family, 0.0) + r.contribution
    bars += [
        {"label": label, "value": value}
        for label, value in sorted(others.items(), key=lambda kv: -abs(kv[1]))
    ]
    rest = float(scores.raw_score[i]) - sum(float(b["value"]) for b in bars)
    if abs(rest) > 1e-9:  # contributions not carried in `scores` (a truncated list)
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


def _insurance(client: pd.Series, scorer: Scorer) -> dict[str, Any] | None:
    """The insurer's limit beside ours, what of the balance it covers, and what to do."""
    if scorer.insurance is None:
        return None
    return {
        "insurer": scorer.insurance.insurer,
        "insurer_limit": _finite(client["insurer_limit"]),
        "insurer_status": str(client["insurer_status"]),
        "insured_exposure": float(client["insured_exposure"]),
        "uninsured_exposure": float(client["uninsured_exposure"]),
        "expected_loss_net": float(client["expected_loss_net"]),
        "note": str(client["insurance_note"]),
    }


def _actions(ledger: Ledger, as_of: pd.Timestamp, shown: int = 10) -> list[dict[str, Any]]:
    """The client's latest recorded actions before `as_of`, newest first."""
    done = ledger.actions[ledger.actions["on"] < as_of].sort_values("on", ascending=False)
    return [
        {
            "client_id": str(r.client_id),
            "on": _date(r.on),
            "action": str(r.action),
            "invoice_id": None if pd.isna(r.invoice_id) else str(r.invoice_id),
            "amount": _finite(r.amount),
            "note": None if pd.isna(r.note) else str(r.note),
        }
        for r in done.head(shown).itertuples()
    ]


def _date(value: object) -> str:
    return "" if pd.isna(value) else str(pd.Timestamp(value).date())


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _aging(open_: pd.DataFrame) -> list[dict[str, Any]]:
    """The open balance by days past due: each invoice's past-due part in its stage's bucket,
    the rest (not yet due, and instalments to come) in the first."""
    buckets = [STAGES[0][1]] + [s[1].split("(")[-1].rstrip(")") for s in STAGES[1:]]
    stage = open_["escalation_stage"].to_numpy() if len(open_) else np.zeros(0, int)
    total = open_["outstanding"].to_numpy() if len(open_) else np.zeros(0)
    past = open_["overdue"].to_numpy() if len(open_) else np.zeros(0)
    amounts = np.where(stage > 0, past, total)
    return [
        {
            "bucket": b,
            "amount": float(
                amounts[stage == i].sum() + ((total - past)[stage > 0].sum() if i == 0 else 0)
            ),
            "invoices": int((stage == i).sum()),
        }
        for i, b in enumerate(buckets)
    ]


def _dso(ledger: Ledger, as_of: pd.Timestamp) -> list[dict[str, Any]]:
    """The client's DSO measures at the last 12 month-ends (the report's definitions)."""
    measures = dso_measures(monthly_positions(ledger, as_of, months=DSO_MONTHS + 2))
    return [dso_record(r) for _, r in measures.tail(DSO_MONTHS).iterrows()]


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


def client_view(
    ledger: Ledger, scorer: Scorer, as_of: pd.Timestamp, history: RunHistory
) -> dict[str, Any]:
    """Everything the client page shows; `ledger` holds one client's whole history, `history`
    the nightly runs (the decision PD of a month ago and of now continue theirs)."""
    client = ledger.clients.iloc[0]
    limit = client.get("credit_limit")
    current_limit = None if limit is None or pd.isna(limit) else float(limit)
    limits = np.array([current_limit if current_limit is not None else np.nan])
    tables: list[pd.DataFrame] = []
    rows, scores = None, None
    for day in (as_of - LOOKBACK, as_of):
        features = build_client_features(ledger, as_of_dates=[day])
        if features.empty:  # onboarded within the month: nothing to compare with
            continue
        rows = scorer.prepare(features)
        scores = scorer.score_rows(
            rows,
            history=History.of(history.before(day), rows.client_id, rows.as_of),
            current_limits=limits,
            top=len(scorer.default.features),  # every contribution, for the waterfall
        )
        tables.append(client_table(scores))
    assert rows is not None and scores is not None  # the caller checked it was onboarded
    now = tables[-1]
    then = tables[0] if len(tables) == 2 else None
    found = early_warnings(now, then, scorer.policy.warnings)
    invoices = invoice_rows(open_invoices(ledger, as_of), now, ledger, scorer, as_of)
    invoices, now = with_insurance(invoices, now, ledger, scorer, as_of)
    worst = invoices.sort_values(["days_past_due", "outstanding"], ascending=False).head(10)
    worklist = rank_worklist(worklist_rows(invoices, now, ledger, scorer, as_of))
    letters = client_letters(worklist, invoices, ledger.clients, as_of, ledger.actions)
    bars = waterfall(scores, 0, scorer.default.catalog)
    # the document shows the largest reasons; the waterfall carries the rest
    scores.risk_reasons[0] = scores.risk_reasons[0][:WATERFALL_STEPS]
    scores.strengths[0] = scores.strengths[0][:WATERFALL_STEPS]
    return {
        "scores": scores,
        "rows": rows,
        "name": str(client["name"]),
        "country": str(client["country"]),
        "industry": str(client["industry"]),
        "onboarded_on": str(pd.Timestamp(client["onboarded_on"]).date()),
        "pd_a_month_ago": float(then["decision_pd"].iloc[0]) if then is not None else None,
        "grade_a_month_ago": _grade(then["grade"].iloc[0]) if then is not None else None,
        "waterfall": bars,
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
        "early_warnings": [
            {"severity": w["severity"], "action": w["action"], "flags": w["flags"]} for w in found
        ],
        "worklist": [
            {
                "queue": r.queue,
                "stage": int(r.stage),
                "action": r.action,
                "overdue_amount": float(r.overdue_amount),
                "invoices": int(r.invoices),
                "next_step": r.next_step,
                "next_step_on": str(pd.Timestamp(r.next_step_on).date()),
                "over_limit_amount": float(r.over_limit_amount),
                "late_interest": float(r.late_interest),
                "late_compensation": _finite(r.late_compensation),
                "last_action": str(r.last_action),
                "jurisdiction": str(r.jurisdiction),
                "language": str(r.language),
            }
            for r in worklist.itertuples()
        ],
        "insurance": _insurance(now.iloc[0], scorer),
        "actions": _actions(ledger, as_of),
        "letter": (
            {k: str(letters[k].iloc[0]) for k in ("client_id", "template", "language", "html")}
            if len(letters)
            else None
        ),
        "payment_history": _payment_history(ledger, as_of),
        "aging": _aging(invoices),
        "dso": _dso(ledger, as_of),
        "open_invoices": [
            {
                "invoice_id": str(r.invoice_id),
                "due_on": str(r.due_on.date()),
                "outstanding": float(r.outstanding),
                "currency": str(r.currency),
                "outstanding_in_currency": float(r.outstanding_in_currency),
                "late_interest": float(r.late_interest),
                "late_compensation": _finite(r.late_compensation),
                "late_charges_rule": str(r.late_charges_rule),
                "insurance_cover": str(r.insurance_cover),
                "insurer_notify_by": _date(r.insurer_notify_by),
                "days_past_due": int(r.days_past_due),
                "queue": str(r.collection_queue),
                "action": str(r.action),
            }
            for r in worst.itertuples()
        ],
        "financials": _financials(ledger, as_of),
        "reporting_currency": ledger.reporting_currency or "",
    }


def _grade(value: object) -> str:
    return "D" if pd.isna(value) else str(int(value))  # type: ignore[call-overload]
