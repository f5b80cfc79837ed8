"""Commands on portfolio runs: score and monitor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from creditguard.app import app, console, parse_day, print_mapping


@app.command()
def score(
    ledger: Annotated[Path, typer.Option(help="Ledger folder to score.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Runs root: the run is published as OUT/<as-of> in one step, and OUT/latest "
            "points at the newest (see portfolio/layout.py)."
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(help="Scoring date YYYY-MM-DD (default: the day after the extraction)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="local, or spark for Apache Spark.")] = "local",
    master: Annotated[
        str, typer.Option(help="Spark master URL (with --engine spark).")
    ] = "local[2]",
    previous: Annotated[
        Path | None,
        typer.Option(
            help="The run to continue (decision PD, migration, early warnings); default: the "
            "latest earlier run under --out."
        ),
    ] = None,
    history: Annotated[
        bool,
        typer.Option(help="Continue the previous run; --no-history scores as if none existed."),
    ] = True,
    max_reject_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Stop (exit 2, nothing published) when a table loses more than this share of "
            "its rows to the data contract.",
        ),
    ] = 0.05,
    scratch: Annotated[
        Path | None,
        typer.Option(
            help="Scratch folder: the ledger spilled in parts (local), or bucketed for Spark "
            "(readable by every executor)."
        ),
    ] = None,
    insurance: Annotated[
        Path | None,
        typer.Option(
            help="Credit insurance policy (YAML; default models/insurance_policy.yaml when "
            "there is one)."
        ),
    ] = None,
) -> None:
    """Score the whole portfolio into a run: clients, invoices, collections, rejects, report."""
    if engine not in ("local", "spark"):
        raise typer.BadParameter("must be local or spark", param_hint="--engine")
    day = parse_day(as_of)
    from portfolio.run import run_scoring

    run, figures = run_scoring(
        ledger,
        day,
        out,
        engine=engine,
        master=master,
        previous=previous,
        history=history,
        max_reject_share=max_reject_share,
        scratch=scratch,
        insurance=insurance,
    )
    print_report(figures, run)


def print_report(figures: dict[str, Any], out: Path) -> None:
    cur = figures.get("currency", "")
    book, overdue = figures["total_open_balance"], figures["overdue_balance"]
    status = figures["clients_by_status"]
    summary: dict[str, object] = {
        "as of": figures["as_of"],
        "clients": ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in status.items()),
        "open invoices": f"{figures['open_invoices']:,}",
        "ledger rows rejected": f"{figures['rejected_rows']:,}",
        "open balance": f"{book:,.0f} {cur}",
        "overdue": f"{overdue:,.0f} {cur} ({overdue / book:.1%})" if book else "0",
        "expected loss": f"{figures['total_expected_loss']:,.0f} {cur} "
        f"({figures['expected_loss_in_default']:,.0f} on clients in default)",
        "mean PD of live clients": f"{figures['mean_pd']:.2%} (decision PD {figures['mean_decision_pd']:.2%})",
        "grades 1..10, D": " ".join(str(v) for v in figures["grade_distribution"].values()),
        "limit decisions": ", ".join(f"{k} {v}" for k, v in figures["limit_decisions"].items()),
        "over their limit": f"{figures['over_limit']['clients']:,} clients, "
        f"{figures['over_limit']['amount']:,.0f} {cur}",
        "early warnings": ", ".join(f"{n} {s}" for s, n in figures["warnings_by_severity"].items())
        + f" ({len(figures['early_warnings'])} clients)",
        "collections worklist": ", ".join(
            f"{q} {w['clients']}" for q, w in figures["worklist"].items()
        ),
    }
    if figures.get("dso"):
        trend = figures["dso"]["trend"]

        def days(v: float | None) -> str:
            return "–" if v is None else f"{v:.1f}"

        last = trend[-1]
        summary[f"DSO at {last['month']}"] = (
            f"{days(last['dso'])} days (countback {days(last['countback_dso'])}, best possible "
            f"{days(last['best_possible_dso'])}, delinquent {days(last['average_days_delinquent'])})"
        )
        summary["DSO, last 6 month-ends"] = " ".join(days(r["dso"]) for r in trend[-6:])
    cash = figures.get("cash_forecast") or {}
    total = cash.get("total") or next(iter(cash.values()), None)
    if total is not None:  # all currencies, in the reporting currency
        first = total["weeks"][:4]
        summary[f"cash forecast ({total['unit']})"] = (
            f"{total['expected_13_weeks']:,.0f} expected within 13 weeks of "
            f"{total['open_balance']:,.0f} open; weeks 1-4: "
            + ", ".join(f"{w['expected']:,.0f} [{w['low']:,.0f}-{w['high']:,.0f}]" for w in first)
        )
    currencies = figures.get("currencies") or []
    if len(currencies) > 1:
        summary["open balance by currency"] = ", ".join(
            f"{c['currency']} {c['share']:.0%}"
            + (f" ({c['fx_change']:+,.0f} {cur} since issue)" if c["currency"] != cur else "")
            for c in currencies
        )
    ins = figures.get("insurance")
    if ins:
        pipeline = ins["pipeline"]
        at_risk = pipeline.get("cover at risk", {}).get("invoices", 0)
        share = f"{ins['insured_share']:.0%}" if ins["insured_share"] is not None else "–"
        summary["credit insurance"] = (
            f"{share} of the book insured; expected loss net of the indemnity "
            f"{ins['expected_loss_net']:,.0f} {cur}; {at_risk:,} invoices with cover at risk, "
            f"{pipeline.get('claim due', {}).get('invoices', 0):,} claims due"
        )
    letters = figures.get("letters")
    if letters is not None:
        summary["dunning letters written"] = f"{sum(letters.values()):,}" + (
            " (" + ", ".join(f"{k} {v}" for k, v in letters.items()) + ")" if letters else ""
        )
    if "downgraded" in figures:
        summary["grades kept / down / up"] = (
            f"{figures['grades_kept']:.0%} / {figures['downgraded']} / {figures['upgraded']}"
        )
    print_mapping("portfolio", summary)
    console.print(f"report: {out / 'report.html'} (figures: {out / 'report.json'})")


@app.command()
def monitor(
    run: Annotated[
        Path,
        typer.Option(help="A run from `creditguard score`, or a runs root (its latest run)."),
    ],
    previous: Annotated[
        Path | None, typer.Option(help="Compare with this run (default: the run's --previous).")
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(help="A later ledger with the outcomes, for the per-grade backtest."),
    ] = None,
    log: Annotated[
        bool, typer.Option(help="Log the results to MLflow against the champion.")
    ] = True,
) -> None:
    """PSI of the score and CSI of every feature (0.10 / 0.25 verdicts) and the backtest per grade."""
    import json

    from portfolio.monitor import monitor_run

    if (run / "latest" / "run.json").exists():
        run = run / "latest"
    if not (run / "run.json").exists():
        raise typer.BadParameter(f"{run} is not a scoring run", param_hint="--run")
    if previous is None:
        recorded = json.loads((run / "run.json").read_text()).get("previous")
        previous = Path(recorded) if recorded and Path(recorded).exists() else None
    result = monitor_run(run, previous=previous, ledger=ledger, log=log)
    table = Table(
        title=f"monitoring {result['as_of']} (creditguard-default v{result['model_version']})"
    )
    for col in (
        "against",
        "score PSI",
        "verdict",
        "features shifted",
        "features to watch",
        "top CSI",
    ):
        table.add_column(col)
    for ref, block in result["stability"].items():
        top = block["csi"][0] if block["csi"] else {"feature": "", "csi": 0.0}
        table.add_row(
            ref,
            f"{block['score_psi']:.4f}",
            block["score_verdict"],
            str(block["features_shifted"]),
            str(block["features_watch"]),
            f"{top['feature']} {top['csi']:.3f}",
        )
    console.print(table)
    if result.get("backtest"):
        bt = Table(title="realised default rate per grade")
        for col in ("grade", "clients", "predicted PD", "realised", "p-value", "verdict"):
            bt.add_column(col)
        for r in result["backtest"]:
            bt.add_row(
                str(r["grade"]),
                str(r["clients"]),
                f"{r['predicted_pd']:.2%}",
                f"{r['realised_rate']:.2%}",
                f"{r['p_value']:.3f}",
                r["verdict"],
            )
        console.print(bt)
    elif result.get("backtest_note"):
        console.print(f"backtest: {result['backtest_note']}")
    console.print(f"written: {run / 'monitoring.json'}, {run / 'report.html'}")
