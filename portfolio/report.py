"""The portfolio report: figures as JSON and a self-contained HTML page (plots inlined, no CDN)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from portfolio.outputs import InvoiceFigures
from scoring.early_warnings import early_warnings


@dataclass
class RunResult:
    """What the report is built from: the clients, figures of the open invoices (not the
    invoices themselves) and the rejects."""

    clients: pd.DataFrame
    invoices: InvoiceFigures
    rejects: pd.DataFrame
    as_of: pd.Timestamp
    versions: dict[str, str]


def build_report(
    result: RunResult, prev_clients: pd.DataFrame | None, prev_max_dpd: pd.Series | None
) -> dict[str, Any]:
    """Grade distribution, expected loss, migration against the previous run and early warnings.
    `prev_max_dpd`: the previous run's largest days past due per client."""
    c, inv = result.clients, result.invoices
    grades = list(range(1, 11))
    counts = c["grade"].value_counts().reindex(grades, fill_value=0)
    figures: dict[str, Any] = {
        "as_of": str(result.as_of.date()),
        "model_versions": result.versions,
        "clients": len(c),
        "open_invoices": inv.count,
        "rejected_rows": len(result.rejects),
        "total_expected_loss": float(c["expected_loss"].sum()),
        "total_open_balance": float(c["open_balance"].fillna(0).sum()),
        "mean_pd": float(c["pd_12m"].mean()) if len(c) else float("nan"),
        "thin_file_share": float(c["thin_file"].mean()) if len(c) else float("nan"),
        "grade_distribution": {str(g): int(n) for g, n in counts.items()},
        "expected_loss_by_grade": {
            str(g): float(v)
            for g, v in c.groupby("grade")["expected_loss"]
            .sum()
            .reindex(grades, fill_value=0)
            .items()
        },
        "limit_decisions": {str(k): int(v) for k, v in c["limit_decision"].value_counts().items()},
        "escalation_stages": {str(k): int(v) for k, v in sorted(inv.stages.items())},
        "overdue_balance": inv.overdue_balance,
    }
    if prev_clients is not None:
        both = c.merge(prev_clients, on="client_id", suffixes=("", "_prev"))
        matrix = pd.crosstab(both["grade_prev"], both["grade"]).reindex(
            index=grades, columns=grades, fill_value=0
        )
        figures["previous_as_of"] = str(pd.Timestamp(prev_clients["as_of"].iloc[0]).date())
        figures["migration_matrix"] = {
            str(g): {str(h): int(matrix.loc[g, h]) for h in grades} for g in grades
        }
        figures["downgraded"] = int((both["grade"] > both["grade_prev"]).sum())
        figures["upgraded"] = int((both["grade"] < both["grade_prev"]).sum())
    figures["early_warnings"] = early_warnings(c, inv.days_past_due(), prev_clients, prev_max_dpd)
    return figures


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
    """A section with a bar chart of a figure per grade 1..10."""

    def draw(ax: Any) -> None:
        ax.bar([int(g) for g in by_grade], list(by_grade.values()), color=color)
        ax.set_xlabel("grade (1 best, 10 worst)")
        ax.set_ylabel(label)
        ax.set_xticks(range(1, 11))

    return f"<h2>{html.escape(title)}</h2><img alt='{html.escape(label)}' src='{_plot(draw)}'>"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, classes="t", float_format=lambda v: f"{v:,.4g}")


def render_html(figures: dict[str, Any], first_invoices: pd.DataFrame | None, folder: Path) -> str:
    """A self-contained page: summary, plots, migration, early warnings, collections, monitoring.
    `first_invoices`: the first open invoices by collection priority."""
    e = html.escape
    grades = figures["grade_distribution"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>creditguard portfolio "
        f"{e(figures['as_of'])}</title><style>body{{font-family:sans-serif;margin:2em;max-width:70em}}"
        "table.t{border-collapse:collapse;font-size:90%}.t td,.t th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:right}h2{margin-top:1.5em}</style></head><body>",
        f"<h1>Portfolio as of {e(figures['as_of'])}</h1>",
        f"<p>{figures['clients']:,} clients, {figures['open_invoices']:,} open invoices, "
        f"total expected loss <b>{figures['total_expected_loss']:,.0f}</b> on an open balance of "
        f"{figures['total_open_balance']:,.0f}; mean PD {figures['mean_pd']:.2%}; "
        f"{figures['rejected_rows']:,} ledger rows rejected (rejects.parquet). Models: "
        f"{e(str(figures['model_versions']))}.</p>",
    ]
    parts.append(_bars("Grade distribution", grades, "clients", "#4a7"))
    parts.append(
        _bars("Expected loss by grade", figures["expected_loss_by_grade"], "expected loss", "#c64")
    )
    parts.append(
        "<h2>Limit decisions on current limits</h2>"
        + _table(
            pd.DataFrame(list(figures["limit_decisions"].items()), columns=["decision", "clients"])
        )
    )
    if "migration_matrix" in figures:
        m = pd.DataFrame(figures["migration_matrix"]).T
        m.index.name = "from \\ to"
        parts.append(
            f"<h2>Grade migration since {e(figures['previous_as_of'])}</h2>"
            f"<p>{figures['downgraded']:,} downgraded, {figures['upgraded']:,} upgraded.</p>"
            + m.reset_index().to_html(index=False, border=0, classes="t")
        )
    warnings = figures["early_warnings"]
    parts.append(f"<h2>Early warnings ({len(warnings):,})</h2>")
    if warnings:
        w = pd.DataFrame(warnings[:100])
        w["flags"] = w["flags"].map("; ".join)
        parts.append(_table(w))
    else:
        parts.append("<p>None (early warnings need a previous run: --previous DIR).</p>")
    if first_invoices is not None and len(first_invoices):
        top = first_invoices.head(25)[
            [
                "collection_priority_rank",
                "invoice_id",
                "client_id",
                "outstanding",
                "days_past_due",
                "escalation_action",
                "late_payment_probability",
                "expected_loss",
            ]
        ]
        parts.append("<h2>Collections: first 25 by priority</h2>" + _table(top))
    monitoring = figures.get("monitoring")
    if monitoring:
        parts.append("<h2>Monitoring</h2>")
        for ref, block in monitoring.get("stability", {}).items():
            parts.append(
                f"<h3>against {e(ref)}</h3><p>score PSI {block['score_psi']:.4f} "
                f"({e(block['score_verdict'])})</p>"
            )
            csi = pd.DataFrame(block["csi"]).sort_values("csi", ascending=False).head(15)
            parts.append(_table(csi))
        if monitoring.get("backtest"):
            parts.append("<h3>Realised default rate per grade</h3>")
            parts.append(_table(pd.DataFrame(monitoring["backtest"])))
    parts.append("</body></html>")
    return "\n".join(parts)
