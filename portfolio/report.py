"""The portfolio report: figures as JSON and a self-contained HTML page (plots inlined, no CDN).

The page reads top down as a credit manager works: the headline figures (book, overdue, expected
loss, clients in default, warnings by severity), the early warnings grouped by severity with the
action each calls for, the collections worklist, then grades, limits and migration. Amounts carry
thousands separators and the currency, probabilities are percentages, and every client links to
its page in the officer's view.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from portfolio.letters import letter_file
from portfolio.outputs import TOTAL, InvoiceFigures, release_memory
from scoring.dso import dso_record
from scoring.early_warnings import SEVERITIES, WARNING_COLUMNS, early_warnings
from scoring.insurance import COVER, InsurancePolicy
from scoring.policy import CreditPolicy
from scoring.status import Status

GRADES = [str(g) for g in range(1, 11)] + ["D"]
OFFICER_URL = "http://localhost:3000/ui/"  # CREDITGUARD_OFFICER_URL points elsewhere
SHOWN_WARNINGS = 50  # per severity on the page (all of them are in report.json)
SHOWN_WORK = 25


# the columns of the clients table the report reads (`report_clients`): not the reasons, rules
# and terms text that make most of a client's row
REPORT_COLUMNS = tuple(
    dict.fromkeys(
        (
            *WARNING_COLUMNS,
            "pd_12m",
            "thin_file",
            "limit_decision",
            "limit_decision_amount",
            "limit_rules",
            "monthly_purchases",
            "usual_terms_days",
            "terms_kind",
            "over_limit",
            "country",
            "country_risk",
            "transfer_risk",
            "insured_exposure",
            "uninsured_exposure",
            "expected_loss_net",
            "insurance_note",
        )
    )
)


def report_clients(path: Path, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The columns of a run's clients table the report reads (and `extra`), those it has; its
    text but the client id as categories (a few thousand distinct reasons, a handful of
    statuses among 100,000 clients)."""
    schema = pq.read_schema(path)
    columns = [c for c in dict.fromkeys((*REPORT_COLUMNS, *extra)) if c in schema.names]
    text = [
        c
        for c in columns
        if c != "client_id"
        and (
            pa.types.is_string(schema.field(c).type)
            or pa.types.is_large_string(schema.field(c).type)
        )
    ]
    table = pq.read_table(path, columns=columns, read_dictionary=text)
    out = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    release_memory()  # the read's buffers, freed, not kept for the rest of the run
    return out


@dataclass
class RunResult:
    """What the report is built from: the clients (`REPORT_COLUMNS`), figures of the open
    invoices and of the collections worklist per queue (not the rows), and the rejects."""

    clients: pd.DataFrame
    invoices: InvoiceFigures
    queues: dict[str, dict[str, float]]  # per worklist queue: clients (rows) and overdue
    rejects: pd.DataFrame
    as_of: pd.Timestamp
    versions: dict[str, str]
    dso: pd.DataFrame | None = None  # `scoring.dso` measures by level, segment and month
    cash: pd.DataFrame | None = None  # the cash forecast (`portfolio.run.cash_forecast`)
    insurance: InsurancePolicy | None = None  # the credit insurance policy, if any


def _grade_labels(clients: pd.DataFrame) -> pd.Series:
    """'1'..'10', or 'D' for a client in default (whose grade is empty)."""
    g = clients["grade"]
    return pd.Series(
        np.where(g.isna(), "D", g.astype("Float64").fillna(0).astype(int).astype(str)),
        index=clients.index,
    )


def profit_figures(
    c: pd.DataFrame, grade: pd.Series, policy: CreditPolicy
) -> dict[str, dict[str, float]]:
    """The two sides of the recommended limits over a year, per grade: the purchases they let
    through (a limit below a client's usual need over its terms and grace lets that share of its
    purchases through), those they block, the expected loss, and the profit at the policy's
    gross margin (margin x sales enabled - expected loss)."""
    lim = policy.limits
    if "monthly_purchases" not in c:
        return {}
    monthly = np.nan_to_num(c["monthly_purchases"].to_numpy(dtype="float64"), nan=0.0)
    terms = c["usual_terms_days"].to_numpy(dtype="float64") if "usual_terms_days" in c else None
    terms = np.where(np.isfinite(terms), terms, 30.0) if terms is not None else 30.0
    need = monthly * (terms + lim.grace_days) / 30.44
    limit = c["recommended_limit"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(need > 0, np.clip(limit / need, 0.0, 1.0), 0.0)
    enabled, blocked = 12 * monthly * share, 12 * monthly * (1 - share)
    loss = c["expected_loss"].to_numpy(dtype="float64")
    out = {}
    for g in GRADES:
        m = (grade == g).to_numpy()
        if not m.any():
            continue
        out[g] = {
            "clients": float(m.sum()),
            "recommended_limits": float(limit[m].sum()),
            "sales_enabled": float(enabled[m].sum()),
            "sales_blocked": float(blocked[m].sum()),
            "expected_loss": float(loss[m].sum()),
            "profit": float(lim.gross_margin * enabled[m].sum() - loss[m].sum()),
        }
    return out


REFERRALS_SHOWN = 20


def referral_figures(c: pd.DataFrame) -> dict[str, Any]:
    """The clients referred to an analyst, ranked by the money at stake (the larger of the
    limit in force and the balance): how many, and the first `REFERRALS_SHOWN` with why."""
    referred = c[c["limit_decision"].astype(str) == "refer"]
    if not len(referred):
        return {"clients": 0, "at_stake": 0.0, "first": []}
    stake = np.fmax(
        referred["current_limit"].to_numpy(dtype="float64"),
        referred["open_balance"].to_numpy(dtype="float64"),
    )
    order = np.argsort(-np.nan_to_num(stake, nan=0.0), kind="stable")[:REFERRALS_SHOWN]
    rules = referred["limit_rules"].astype(str).to_numpy() if "limit_rules" in referred else None
    first = [
        {
            "client_id": str(referred["client_id"].iloc[i]),
            "grade": _grade_labels(referred.iloc[[i]]).iloc[0],
            "at_stake": float(stake[i]),
            "open_balance": float(referred["open_balance"].iloc[i]),
            "why": (rules[i].split("; ")[-1] if rules is not None else ""),
        }
        for i in order
    ]
    return {"clients": len(referred), "at_stake": float(np.nansum(stake)), "first": first}


def build_report(
    result: RunResult, prev_clients: pd.DataFrame | None, policy: CreditPolicy
) -> dict[str, Any]:
    """Headline figures, grades, limits, migration against the previous run, early warnings and
    the collections worklist's summary."""
    c, inv = result.clients, result.invoices
    grade = _grade_labels(c)
    status = c["status"].value_counts()
    warnings = early_warnings(c, prev_clients, policy.warnings)
    live = c["status"] != Status.IN_DEFAULT.value
    figures: dict[str, Any] = {
        "as_of": str(result.as_of.date()),
        "model_versions": result.versions,
        "currency": inv.currency(),
        "clients": len(c),
        "clients_by_status": {s.value: int(status.get(s.value, 0)) for s in Status},
        "open_invoices": inv.count,
        "rejected_rows": len(result.rejects),
        "total_open_balance": float(c["open_balance"].sum()),
        "overdue_balance": inv.overdue_balance,
        "total_expected_loss": float(c["expected_loss"].sum()),
        "expected_loss_in_default": float(c.loc[~live, "expected_loss"].sum()),
        "mean_pd": float(c.loc[live, "pd_12m"].mean()) if live.any() else float("nan"),
        "mean_decision_pd": float(c.loc[live, "decision_pd"].mean())
        if live.any()
        else float("nan"),
        "thin_file_share": float(c["thin_file"].mean()) if len(c) else float("nan"),
        "grade_distribution": {g: int((grade == g).sum()) for g in GRADES},
        "expected_loss_by_grade": {
            g: float(c.loc[grade == g, "expected_loss"].sum()) for g in GRADES
        },
        "limit_decisions": {str(k): int(v) for k, v in c["limit_decision"].value_counts().items()},
        "over_limit": {
            "clients": int(c["over_limit"].sum()),
            "amount": float(c["over_limit_amount"].sum()),
        },
        "escalation_stages": {str(k): int(v) for k, v in sorted(inv.stages.items())},
        "worklist": {
            q: {"clients": int(s["clients"]), "overdue": float(s["overdue"])}
            for q, s in result.queues.items()
        },
        "early_warnings": warnings,
        "warnings_by_severity": {
            s: sum(1 for w in warnings if w["severity"] == s) for s in SEVERITIES
        },
    }
    figures["profit_by_grade"] = profit_figures(c, grade, policy)
    figures["referrals"] = referral_figures(c)
    if result.dso is not None and len(result.dso):
        figures["dso"] = dso_figures(result.dso)
    figures["countries"] = country_figures(c, result.dso)
    figures["currencies"] = currency_figures(inv)
    if result.insurance is not None and "insured_exposure" in c:
        figures["insurance"] = insurance_figures(c, inv, grade, result.insurance)
    if result.cash is not None and len(result.cash):
        figures["cash_forecast"] = cash_figures(result.cash, inv)
    if prev_clients is not None:
        both = pd.DataFrame({"client_id": c["client_id"], "grade": grade}).merge(
            pd.DataFrame(
                {"client_id": prev_clients["client_id"], "grade_prev": _grade_labels(prev_clients)}
            ),
            on="client_id",
        )
        matrix = pd.crosstab(both["grade_prev"], both["grade"]).reindex(
            index=GRADES, columns=GRADES, fill_value=0
        )
        rank = {g: i for i, g in enumerate(GRADES)}
        now, then = both["grade"].map(rank), both["grade_prev"].map(rank)
        figures["previous_as_of"] = str(pd.Timestamp(prev_clients["as_of"].iloc[0]).date())
        figures["migration_matrix"] = {
            g: {h: int(matrix.loc[g, h]) for h in GRADES} for g in GRADES
        }
        figures["downgraded"] = int((now > then).sum())
        figures["upgraded"] = int((now < then).sum())
        figures["grades_kept"] = float((now == then).mean()) if len(both) else float("nan")
    return figures


TREND_MONTHS = 12
DSO_LEVELS = ("industry", "country", "grade")


def _number(value: object) -> float | None:
    """A float for JSON: None for a missing value."""
    v = float(value)  # type: ignore[arg-type]
    return None if v != v else v


def _segment_order(rows: pd.DataFrame, level: str) -> pd.DataFrame:
    """Grades in their order (D last), other segments by receivables, largest first."""
    if level == "grade":
        return rows.sort_values("segment", key=lambda s: s.map(GRADES.index))
    return rows.sort_values("receivables", ascending=False)


def dso_figures(dso: pd.DataFrame) -> dict[str, Any]:
    """The portfolio's DSO measures over the last 12 months and every segment's at the last
    complete month."""
    whole = dso[dso["level"] == "portfolio"].sort_values("month")
    last = dso["month"].max()
    latest = dso[dso["month"] == last]
    return {
        "month": str(pd.Timestamp(last).date()),
        "trend": [dso_record(r) for _, r in whole.tail(TREND_MONTHS).iterrows()],
        "by_segment": {
            level: [
                {"segment": str(r["segment"]), **dso_record(r)}
                for _, r in _segment_order(latest[latest["level"] == level], level).iterrows()
            ]
            for level in DSO_LEVELS
        },
    }


def cash_figures(cash: pd.DataFrame, inv: InvoiceFigures) -> dict[str, Any]:
    """Per currency (in it) and for all of them (`TOTAL`, in the reporting currency, first):
    the 13 weeks' expected receipts with their 80 % interval, their total and the open balance
    they come from."""
    out: dict[str, Any] = {}
    for currency, rows in sorted(cash.groupby("currency"), key=lambda kv: kv[0] != TOTAL):
        code = str(currency)
        balance = (
            sum(c["outstanding"] for c in inv.by_currency.values())
            if code == TOTAL
            else inv.by_currency.get(code, {}).get("outstanding_in_currency", 0.0)
        )
        out[code] = {
            "unit": str(rows["unit"].iloc[0]),
            "open_balance": float(balance),
            "expected_13_weeks": float(rows["expected"].sum()),
            "weeks": [
                {
                    "week": int(r.week),
                    "from": str(pd.Timestamp(r.week_start).date()),
                    "to": str(pd.Timestamp(r.week_end).date()),
                    "expected": float(r.expected),
                    "low": float(r.low),
                    "high": float(r.high),
                }
                for r in rows.sort_values("week").itertuples()
            ],
        }
    return out


def insurance_figures(
    clients: pd.DataFrame, inv: InvoiceFigures, grade: pd.Series, policy: InsurancePolicy
) -> dict[str, Any]:
    """The insured share of the book, uninsured exposure by grade, expected loss gross and net of
    the indemnity (with the policy's annual first loss borne across the portfolio), the claims
    pipeline by cover, and the clients whose cover needs an action."""
    book = float(clients["open_balance"].sum())
    insured = float(clients["insured_exposure"].sum())
    gross = float(clients["expected_loss"].sum())
    net_of_indemnity = float(clients["expected_loss_net"].sum())
    retained = min(policy.annual_first_loss, gross - net_of_indemnity)
    notes = clients["insurance_note"].value_counts()
    return {
        "insurer": policy.insurer,
        "indemnity": policy.indemnity,
        "annual_first_loss": policy.annual_first_loss,
        "book": book,
        "insured_exposure": insured,
        "insured_share": insured / book if book else None,
        "clients_with_insurer_limit": int(np.isfinite(clients["insurer_limit"]).sum()),
        "uninsured_by_grade": {
            g: float(clients.loc[grade == g, "uninsured_exposure"].sum()) for g in GRADES
        },
        "expected_loss_gross": gross,
        "expected_loss_net": net_of_indemnity + retained,
        "first_loss_retained": retained,
        "pipeline": {
            k: {"invoices": int(v["invoices"]), "outstanding": v["outstanding"]}
            for k, v in sorted(inv.by_cover.items(), key=lambda kv: COVER.index(kv[0]))
        },
        "clients_to_act_on": {str(k): int(v) for k, v in notes.items() if k},
    }


def currency_figures(inv: InvoiceFigures) -> list[dict[str, Any]]:
    """Per invoice currency: open invoices, outstanding in the currency and in the reporting
    currency at today's rate, its share of the book, and what it gained or lost in reporting
    currency since the invoices were issued; largest first."""
    book = sum(c["outstanding"] for c in inv.by_currency.values())
    out = [
        {
            "currency": code,
            "open_invoices": int(c["open_invoices"]),
            "outstanding_in_currency": c["outstanding_in_currency"],
            "rate": c["outstanding"] / c["outstanding_in_currency"]
            if c["outstanding_in_currency"]
            else None,
            "outstanding": c["outstanding"],
            "share": c["outstanding"] / book if book else None,
            "fx_change": c["fx_change"],
        }
        for code, c in inv.by_currency.items()
    ]
    return sorted(out, key=lambda r: -r["outstanding"])


def country_figures(clients: pd.DataFrame, dso: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per country: clients, exposure, overdue share, DSO at the last month, expected loss;
    largest exposure first."""
    if "country" not in clients:
        return []
    latest = {}
    if dso is not None and len(dso):
        rows = dso[(dso["level"] == "country") & (dso["month"] == dso["month"].max())]
        latest = dict(zip(rows["segment"], rows["dso"], strict=True))
    out = []
    columns = ["country", "open_balance", "overdue_balance", "expected_loss"]
    columns += [c for c in ("country_risk", "transfer_risk") if c in clients]
    # the few columns it reads: grouping the whole table copies every client's reasons
    for country, group in clients[columns].groupby("country", sort=True):
        book = float(group["open_balance"].sum())
        overdue = float(group["overdue_balance"].sum())
        out.append(
            {
                "country": str(country),
                "risk_class": str(group["country_risk"].iloc[0]) if "country_risk" in group else "",
                "transfer_risk": bool(group["transfer_risk"].any())
                if "transfer_risk" in group
                else False,
                "clients": len(group),
                "exposure": book,
                "overdue_share": overdue / book if book else None,
                "dso": _number(latest.get(country, float("nan"))),
                "expected_loss": float(group["expected_loss"].sum()),
            }
        )
    return sorted(out, key=lambda r: -r["exposure"])


def _plot(draw: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bars(title: str, by_grade: dict[str, float], label: str, color: str) -> str:
    """A section with a bar chart of a figure per grade 1..10 and D."""

    def draw(ax: Any) -> None:
        ax.bar(list(by_grade), list(by_grade.values()), color=color)
        ax.set_xlabel("grade (1 best, 10 worst, D in default)")
        ax.set_ylabel(label)

    return f"<h2>{html.escape(title)}</h2><img alt='{html.escape(label)}' src='{_plot(draw)}'>"


class _Format:
    """How the page writes numbers: amounts with separators and the currency, PDs in percent."""

    def __init__(self, currency: str, officer_url: str) -> None:
        self.currency, self.officer_url = currency, officer_url

    def money(self, value: float) -> str:
        if value != value:
            return "–"
        return f"{value:,.0f} {self.currency}".strip()

    @staticmethod
    def pct(value: float, digits: int = 1) -> str:
        return "–" if value != value else f"{value * 100:.{digits}f} %"

    def client(self, client_id: str) -> str:
        e = html.escape(client_id)
        return f"<a href='{html.escape(self.officer_url)}#client/{quote(client_id)}'>{e}</a>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table of cells already escaped or formatted."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='t'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:75em;color:#222}"
    "table.t{border-collapse:collapse;font-size:90%;margin:.5em 0}"
    ".t td,.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
    ".t td:not(:first-child){font-variant-numeric:tabular-nums}"
    "h2{margin-top:1.6em}.kpi{display:flex;flex-wrap:wrap;gap:1em}"
    ".kpi div{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:10em}"
    ".kpi b{display:block;font-size:130%}.critical{color:#a00}.high{color:#c50}.medium{color:#776}"
)


def render_html(
    figures: dict[str, Any],
    first_invoices: pd.DataFrame | None,
    worklist: pd.DataFrame | None = None,
    *,
    officer_url: str | None = None,
    letters: set[str] | None = None,
) -> str:
    """A self-contained page: headline, warnings, collections, grades, limits, migration,
    monitoring. `first_invoices`: the first open invoices by collection priority; `worklist`:
    the first rows of the collections worklist (`figures` counts them all); `letters`: the
    clients written to (their letter is `letters/` beside the page, named by `letter_file`)."""
    e = html.escape
    f = _Format(
        figures.get("currency", ""),
        officer_url or os.environ.get("CREDITGUARD_OFFICER_URL", OFFICER_URL),
    )
    status = figures["clients_by_status"]
    by_sev = figures["warnings_by_severity"]
    book, overdue = figures["total_open_balance"], figures["overdue_balance"]
    versions = ", ".join(f"{k} v{v}" for k, v in figures["model_versions"].items())
    kpis = [
        ("clients", f"{figures['clients']:,}"),
        ("open balance (book)", f.money(book)),
        ("overdue", f"{f.money(overdue)} ({f.pct(overdue / book if book else float('nan'))})"),
        ("expected loss", f.money(figures["total_expected_loss"])),
        ("clients in default", f"{status.get('in_default', 0):,}"),
        (
            "early warnings",
            " / ".join(f"<span class='{s}'>{by_sev.get(s, 0)} {s}</span>" for s in SEVERITIES),
        ),
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>creditguard portfolio "
        f"{e(figures['as_of'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>Portfolio as of {e(figures['as_of'])}</h1>",
        "<div class='kpi'>" + "".join(f"<div>{e(k)}<b>{v}</b></div>" for k, v in kpis) + "</div>",
        "<p>Clients by status: "
        + ", ".join(f"{e(k.replace('_', ' '))} {v:,}" for k, v in status.items())
        + f". Mean PD of live clients {f.pct(figures['mean_pd'], 2)} (decision PD "
        f"{f.pct(figures['mean_decision_pd'], 2)}). {figures['open_invoices']:,} open invoices; "
        f"{figures['rejected_rows']:,} ledger rows rejected (rejects.parquet). Models: {e(versions)}.</p>",
    ]
    parts.append(_warnings(figures["early_warnings"], f))
    if worklist is not None:
        parts.append(
            _worklist(
                worklist, f, figures.get("worklist", {}), letters or set(), figures.get("letters")
            )
        )
    parts.append(_bars("Clients by grade", figures["grade_distribution"], "clients", "#4a7"))
    parts.append(
        _bars("Expected loss by grade", figures["expected_loss_by_grade"], "expected loss", "#c64")
    )
    parts.append(_profit(figures.get("profit_by_grade") or {}, f))
    parts.append(_referrals(figures.get("referrals") or {}, f))
    over = figures["over_limit"]
    parts.append(
        "<h2>Limit decisions on current limits</h2>"
        + _table(
            ["decision", "clients"],
            [[e(k.replace("_", " ")), f"{v:,}"] for k, v in figures["limit_decisions"].items()],
        )
        + f"<p>{over['clients']:,} clients are over their limit, by {f.money(over['amount'])} in all.</p>"
    )
    parts.append(_cash(figures.get("cash_forecast"), f))
    parts.append(_dso(figures.get("dso"), f))
    parts.append(_countries(figures.get("countries", []), f))
    parts.append(_currencies(figures.get("currencies", []), f))
    parts.append(_insurance(figures.get("insurance"), f))
    if "migration_matrix" in figures:
        m = figures["migration_matrix"]
        rows = [[f"<b>{g}</b>", *(str(m[g][h]) if m[g][h] else "" for h in GRADES)] for g in GRADES]
        parts.append(
            f"<h2>Grade migration since {e(figures['previous_as_of'])}</h2>"
            f"<p>{f.pct(figures['grades_kept'], 0)} of clients kept their grade; "
            f"{figures['downgraded']:,} downgraded, {figures['upgraded']:,} upgraded "
            "(rows: then, columns: now).</p>" + _table(["from \\ to", *GRADES], rows)
        )
    if first_invoices is not None and len(first_invoices):
        rows = [
            [
                str(r.collection_priority_rank),
                e(str(r.invoice_id)),
                f.client(str(r.client_id)),
                f.money(r.outstanding),
                f"{r.days_past_due:,}",
                e(str(r.action)),
                f.money(r.avoidable_loss),
            ]
            for r in first_invoices.head(SHOWN_WORK).itertuples()
        ]
        parts.append(
            "<h2>Open invoices: first 25 by priority</h2>"
            + _table(
                [
                    "rank",
                    "invoice",
                    "client",
                    "outstanding",
                    "days past due",
                    "action",
                    "avoidable loss",
                ],
                rows,
            )
        )
    parts.append(_monitoring(figures.get("monitoring")))
    parts.append("</body></html>")
    return "\n".join(parts)


def _profit(by_grade: dict[str, dict[str, float]], f: _Format) -> str:
    """Both sides of the recommended limits beside the risk: sales let through and blocked over
    a year, expected loss and profit, per grade."""
    if not by_grade:
        return ""
    rows = [
        [
            f"<b>{g}</b>",
            f"{v['clients']:,.0f}",
            f.money(v["recommended_limits"]),
            f.money(v["sales_enabled"]),
            f.money(v["sales_blocked"]),
            f.money(v["expected_loss"]),
            f.money(v["profit"]),
        ]
        for g, v in by_grade.items()
    ]
    total = {k: sum(v[k] for v in by_grade.values()) for k in next(iter(by_grade.values()))}
    rows.append(
        [
            "<b>all</b>",
            f"{total['clients']:,.0f}",
            f.money(total["recommended_limits"]),
            f.money(total["sales_enabled"]),
            f.money(total["sales_blocked"]),
            f.money(total["expected_loss"]),
            f.money(total["profit"]),
        ]
    )
    return (
        "<h2>Sales and profit under the recommended limits (a year)</h2><p>A credit manager is "
        "judged on bad debt and on the sales the limits let through: each grade's usual purchases "
        "a year, the share its limits cover (a limit below a client's usual need over its terms "
        "and grace lets that share through), the expected loss, and the profit at the policy's "
        "gross margin. The decisions benchmark measures the same on outcomes.</p>"
        + _table(
            [
                "grade",
                "clients",
                "recommended limits",
                "sales enabled",
                "sales blocked",
                "expected loss",
                "profit",
            ],
            rows,
        )
    )


def _referrals(referrals: dict[str, Any], f: _Format) -> str:
    """The analyst's list: referred clients, the most money at stake first."""
    if not referrals.get("clients"):
        return "<h2>Referred to an analyst</h2><p>No client is referred tonight.</p>"
    rows = [
        [
            f.client(r["client_id"]),
            html.escape(r["grade"]),
            f.money(r["at_stake"]),
            f.money(r["open_balance"]),
            html.escape(r["why"]),
        ]
        for r in referrals["first"]
    ]
    return (
        f"<h2>Referred to an analyst ({referrals['clients']:,}, "
        f"{f.money(referrals['at_stake'])} at stake)</h2><p>Only what an analyst can add to: "
        "contradictory records, or a cut or hold of a material exposure with no recent statement. "
        f"The most money at stake first (the first {REFERRALS_SHOWN}; all in clients.parquet, "
        "limit_decision = refer).</p>"
        + _table(["client", "grade", "at stake", "open balance", "why"], rows)
    )


def _warnings(warnings: list[dict[str, Any]], f: _Format) -> str:
    out = [f"<h2>Early warnings ({len(warnings):,})</h2>"]
    if not warnings:
        return out[0] + "<p>None (early warnings compare with a previous run: --previous DIR).</p>"
    for severity in SEVERITIES:
        group = [w for w in warnings if w["severity"] == severity]
        if not group:
            continue
        actions = sorted({w["action"] for w in group})
        out.append(
            f"<h3 class='{severity}'>{severity.capitalize()} ({len(group):,}): "
            f"{html.escape('; '.join(actions))}</h3>"
        )
        rows = [
            [
                f.client(w["client_id"]),
                html.escape(w["grade"]),
                f.pct(w["decision_pd"]),
                f.money(w["open_balance"]),
                html.escape("; ".join(w["flags"])),
                html.escape(w["action"]),
            ]
            for w in group[:SHOWN_WARNINGS]
        ]
        more = len(group) - len(rows)
        out.append(
            _table(
                ["client", "grade", "decision PD", "open balance", "what changed", "action"], rows
            )
            + (f"<p>… and {more:,} more in report.json.</p>" if more > 0 else "")
        )
    return "".join(out)


def _worklist(
    worklist: pd.DataFrame,
    f: _Format,
    summary: dict[str, Any],
    letters: set[str],
    written: dict[str, int] | None,
) -> str:
    head = ", ".join(
        f"{html.escape(q)} {s['clients']:,} ({f.money(s['overdue'])} overdue)"
        for q, s in summary.items()
    )
    sent = ", ".join(f"{html.escape(k)} {v:,}" for k, v in (written or {}).items())

    def letter(client_id: str) -> str:
        if client_id not in letters:
            return ""
        return f"<a href='letters/{quote(letter_file(client_id))}'>letter</a>"

    rows = [
        [
            str(r.priority_rank),
            f.client(str(r.client_id)),
            html.escape(f"{r.jurisdiction} ({r.language})"),
            html.escape(str(r.queue)),
            str(r.stage),
            f.money(r.overdue_amount),
            f"{r.invoices:,}",
            html.escape(str(r.action)),
            f"{html.escape(str(r.next_step))} on {pd.Timestamp(r.next_step_on).date()}",
            f.money(r.late_interest + float(np.nan_to_num(r.late_compensation))),
            f.money(r.avoidable_loss),
            f.money(r.over_limit_amount) if r.over_limit_amount > 0 else "",
            letter(str(r.client_id)),
        ]
        for r in worklist.head(SHOWN_WORK).itertuples()
    ]
    total = sum(s["clients"] for s in summary.values())
    return (
        f"<h2>Collections worklist ({total:,} rows)</h2><p>By queue: {head or 'none'}. "
        f"Dunning letters written ({sum((written or {}).values()):,}, under letters/ beside this "
        f"page): {sent or 'none'}.</p>"
        + _table(
            [
                "rank",
                "client",
                "country (letters)",
                "queue",
                "stage",
                "overdue",
                "invoices",
                "action now",
                "next step",
                "late interest and fees",
                "avoidable loss",
                "over limit by",
                "letter",
            ],
            rows,
        )
    )


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _dso_cells(r: dict[str, Any], f: _Format) -> list[str]:
    return [
        f.money(r["receivables"]),
        f.money(r["sales_3m"]),
        _days(r["dso"]),
        _days(r["countback_dso"]),
        _days(r["best_possible_dso"]),
        _days(r["average_days_delinquent"]),
    ]


DSO_HEADER = ["receivables", "sales, 3 months", "DSO", "countback DSO", "best possible", "ADD"]


def _dso(dso: dict[str, Any] | None, f: _Format) -> str:
    """The portfolio's DSO trend (table and plot) and the segments' figures."""
    if not dso:
        return ""
    trend = dso["trend"]

    def draw(ax: Any) -> None:
        months = [r["month"][:7] for r in trend]
        for key, label in (
            ("dso", "DSO"),
            ("countback_dso", "countback"),
            ("best_possible_dso", "best possible"),
        ):
            ax.plot(months, [np.nan if r[key] is None else r[key] for r in trend], label=label)
        ax.set_ylabel("days")
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
        ax.legend(fontsize=7)

    out = [
        "<h2>DSO and working capital</h2>",
        "<p>Standard DSO: receivables at the month's end over the last three months' credit "
        "sales, times their days; countback: the days of sales the receivables amount to, "
        "walking back month by month; best possible: the not-yet-due part alone; ADD (average "
        "days delinquent) = DSO − best possible. Definitions: the README's DSO section.</p>",
        f"<img alt='DSO trend' src='{_plot(draw)}'>",
        _table(["month", *DSO_HEADER], [[r["month"], *_dso_cells(r, f)] for r in trend]),
    ]
    for level, rows in dso["by_segment"].items():
        out.append(f"<h3>By {html.escape(level)}, {html.escape(dso['month'])}</h3>")
        out.append(
            _table(
                [level, *DSO_HEADER],
                [[html.escape(r["segment"]), *_dso_cells(r, f)] for r in rows],
            )
        )
    return "".join(out)


def _cash(cash: dict[str, Any] | None, f: _Format) -> str:
    """The 13-week collection forecast: the plot and weekly table of all currencies together in
    the reporting currency, then each currency's own expected receipts."""
    if not cash:
        return ""
    total = cash.get(TOTAL) or next(iter(cash.values()))
    weeks = total["weeks"]

    def draw(ax: Any) -> None:
        x = [w["week"] for w in weeks]
        ax.fill_between(
            x, [w["low"] for w in weeks], [w["high"] for w in weeks], alpha=0.3, label="80 %"
        )
        ax.plot(x, [w["expected"] for w in weeks], marker="o", label="expected")
        ax.set_xlabel("week")
        ax.set_ylabel(f"receipts ({total['unit']})")
        ax.legend(fontsize=7)

    share = total["expected_13_weeks"] / total["open_balance"] if total["open_balance"] else 0
    out = [
        "<h2>Cash collection forecast, next 13 weeks</h2>",
        "<p>Receipts expected from the invoices open today (not from later sales), by week, with "
        "an 80 % interval from simulated settlements (a client's invoices move together); from "
        "the payment-timing model. Invoices of insolvent clients count for nothing here. All "
        "currencies together, in the reporting currency at today's rates.</p>",
        f"<h3>{f.money(total['expected_13_weeks'])} expected within 13 weeks of an open balance "
        f"of {f.money(total['open_balance'])} ({f.pct(share)})</h3>"
        f"<img alt='cash forecast' src='{_plot(draw)}'>",
        _table(
            ["week", "from", "to", "expected", "low (10 %)", "high (90 %)"],
            [
                [
                    str(w["week"]),
                    w["from"],
                    w["to"],
                    f.money(w["expected"]),
                    f.money(w["low"]),
                    f.money(w["high"]),
                ]
                for w in weeks
            ],
        ),
    ]
    own = {k: v for k, v in cash.items() if k != TOTAL}
    if len(own) > 1:
        out.append("<h3>By invoice currency, in the currency</h3>")
        out.append(
            _table(
                ["currency", "open balance", "expected in 13 weeks", "share", "weeks 1-4"],
                [
                    [
                        html.escape(code),
                        _amount(b["open_balance"], code),
                        _amount(b["expected_13_weeks"], code),
                        f.pct(b["expected_13_weeks"] / b["open_balance"])
                        if b["open_balance"]
                        else "–",
                        " / ".join(f"{w['expected']:,.0f}" for w in b["weeks"][:4]),
                    ]
                    for code, b in own.items()
                ],
            )
        )
    return "".join(out)


def _insurance(ins: dict[str, Any] | None, f: _Format) -> str:
    """Insured share, expected loss gross and net, uninsured exposure by grade, the pipeline."""
    if not ins:
        return ""
    share = ins["insured_share"]
    out = [
        "<h2>Credit insurance</h2>",
        f"<p>{html.escape(ins['insurer'])}: {f.money(ins['insured_exposure'])} of the "
        f"{f.money(ins['book'])} book is insured ({f.pct(share) if share is not None else '–'}; "
        f"{ins['clients_with_insurer_limit']:,} clients with an insurer limit). Expected loss "
        f"{f.money(ins['expected_loss_gross'])} gross, <b>{f.money(ins['expected_loss_net'])} net"
        f"</b> of the {f.pct(ins['indemnity'], 0)} indemnity, of which "
        f"{f.money(ins['first_loss_retained'])} is the annual first loss the policy leaves to us "
        f"(at most {f.money(ins['annual_first_loss'])} a year across the portfolio).</p>",
        _bars("Uninsured exposure by grade", ins["uninsured_by_grade"], "uninsured", "#a64"),
        "<h3>Claims pipeline (open invoices by cover)</h3>",
        _table(
            ["cover", "invoices", "outstanding"],
            [
                [html.escape(k), f"{v['invoices']:,}", f.money(v["outstanding"])]
                for k, v in ins["pipeline"].items()
            ],
        ),
    ]
    if ins["clients_to_act_on"]:
        out.append(
            "<p>Clients whose cover needs an action: "
            + ", ".join(f"{html.escape(k)} {v:,}" for k, v in ins["clients_to_act_on"].items())
            + " (clients.parquet: insurance_note).</p>"
        )
    return "".join(out)


def _amount(value: float, currency: str) -> str:
    return f"{value:,.0f} {html.escape(currency)}"


def _currencies(currencies: list[dict[str, Any]], f: _Format) -> str:
    """Exposure by invoice currency and its change in reporting-currency value since issue."""
    if len(currencies) < 2:
        return ""
    rows = [
        [
            html.escape(r["currency"]),
            f"{r['open_invoices']:,}",
            _amount(r["outstanding_in_currency"], r["currency"]),
            "–" if r["rate"] is None else f"{r['rate']:.6g}",
            f.money(r["outstanding"]),
            f.pct(r["share"]) if r["share"] is not None else "–",
            ("+" if r["fx_change"] > 0 else "") + f.money(r["fx_change"]),
        ]
        for r in currencies
    ]
    return (
        "<h2>Exposure by currency</h2><p>Open invoices by the currency they were issued in, "
        "converted at the latest rate known today; the last column is what the open amounts "
        "gained (+) or lost in reporting currency since each invoice's issue date.</p>"
        + _table(
            [
                "currency",
                "open invoices",
                "outstanding",
                "rate",
                "in reporting currency",
                "share",
                "change since issue",
            ],
            rows,
        )
    )


def _countries(countries: list[dict[str, Any]], f: _Format) -> str:
    if not countries:
        return ""
    rows = [
        [
            html.escape(r["country"]),
            html.escape(r["risk_class"]) + (" (transfer risk)" if r["transfer_risk"] else ""),
            f"{r['clients']:,}",
            f.money(r["exposure"]),
            "–" if r["overdue_share"] is None else f.pct(r["overdue_share"]),
            _days(r["dso"]),
            f.money(r["expected_loss"]),
        ]
        for r in countries
    ]
    return (
        "<h2>Exposure by country</h2><p>Risk class: the OECD country risk classification "
        "(0 lowest to 7; high-income OECD and euro-area members count as 0; models/"
        "country_risk.csv). Limits are capped by class (credit_policy.yaml, country).</p>"
    ) + _table(
        ["country", "OECD risk class", "clients", "exposure", "overdue", "DSO", "expected loss"],
        rows,
    )


def _monitoring(monitoring: dict[str, Any] | None) -> str:
    if not monitoring:
        return ""
    e = html.escape
    out = ["<h2>Monitoring</h2>"]
    retraining = monitoring.get("retraining")
    if retraining and retraining.get("recommended"):
        reasons = "; ".join(e(r) for r in retraining["reasons"])
        out.append(
            f'<p class="warn"><strong>Retraining recommended</strong>: {reasons} '
            "(<code>creditguard retrain --ledger DIR</code>)</p>"
        )
    elif retraining:
        out.append("<p>No retraining needed: the score, the features and the backtest hold.</p>")
    for ref, block in monitoring.get("stability", {}).items():
        out.append(
            f"<h3>against {e(ref)}</h3><p>score PSI {block['score_psi']:.4f} "
            f"({e(block['score_verdict'])}); {block['features_shifted']} feature(s) shifted, "
            f"{block['features_watch']} to watch</p>"
        )
        csi = sorted(block["csi"], key=lambda r: -r["csi"])[:15]
        out.append(
            _table(
                ["feature", "CSI", "verdict"],
                [[e(r["feature"]), f"{r['csi']:.3f}", e(r["verdict"])] for r in csi],
            )
        )
    if monitoring.get("backtest"):
        of = monitoring.get("backtest_of")
        out.append(
            "<h3>Realised default rate per grade"
            + (f" (the run of {e(str(of))}, 12 months on)" if of else "")
            + "</h3>"
        )
        out.append(
            _table(
                ["grade", "clients", "predicted PD", "realised", "p-value", "verdict"],
                [
                    [
                        str(r["grade"]),
                        f"{r['clients']:,}",
                        f"{r['predicted_pd'] * 100:.2f} %",
                        f"{r['realised_rate'] * 100:.2f} %",
                        f"{r['p_value']:.3f}",
                        e(r["verdict"]),
                    ]
                    for r in monitoring["backtest"]
                ],
            )
        )
    return "".join(out)
