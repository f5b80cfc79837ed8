"""The Typer application every command module registers on, and the console output they share."""

from __future__ import annotations

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="creditguard: payment-behaviour features, default models, explained scores and limits.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


def print_mapping(title: str, values: dict[str, object]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    console.print(table)


def print_violations(violations: pd.DataFrame, *, limit: int) -> None:
    summary = (
        violations.groupby(["table", "column", "rule"], sort=True)
        .agg(count=("row", "size"), first_row=("row", "min"))
        .reset_index()
    )
    table = Table(title=f"{len(violations):,} contract violations")
    for col in ("table", "column", "rule", "count", "first row"):
        table.add_column(col)
    for r in summary.itertuples():
        table.add_row(r.table, r.column, r.rule, f"{r.count:,}", str(r.first_row))
    console.print(table)
    detail = Table(title=f"first {min(limit, len(violations))} of {len(violations):,}")
    for col in ("table", "row", "key", "column", "rule", "value"):
        detail.add_column(col)
    for r in violations.head(limit).itertuples():
        detail.add_row(r.table, str(r.row), str(r.key), r.column, r.rule, str(r.value))
    if limit:
        console.print(detail)
