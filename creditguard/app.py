"""The Typer application every command module registers on, and the console output they share."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from features.errors import InputError


class App(typer.Typer):
    """Every command answers a wrong input (`features.errors.InputError`: a file, a folder, an
    option's value) with its message and exit 2, not a traceback; and SIGTERM stops it as
    Ctrl-C does, so that its scratch files are removed and nothing half-written is published."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(f)
            def checked(*a: Any, **k: Any) -> Any:
                previous = _stop_on_sigterm()
                try:
                    return f(*a, **k)
                except InputError as exc:
                    error(exc)
                    raise typer.Exit(code=2) from None
                finally:
                    if previous is not None:
                        _restore(previous)

            register(checked)
            return f

        return decorator


def _restore(handler: Any) -> None:
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm() -> Any:
    """SIGTERM raises KeyboardInterrupt in the main thread (elsewhere signals cannot be set)."""
    try:
        return signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread
        return signal.getsignal(signal.SIGTERM)


app = App(
    help="creditguard: payment-behaviour features, default models, explained scores and limits.",
    no_args_is_help=True,
    add_completion=False,
)
# Markup off: what is printed holds user text (ids, names, file contents, violation values), and
# a "[/x]" in it must print as it is, not stop the command. Styles are given as `style=`.
console = Console(markup=False, highlight=False)


def error(message: object) -> None:
    """An error line: 'error:' in red, then the message as plain text."""
    console.print(Text.assemble(("error: ", "red"), str(message)), soft_wrap=True)


def parse_day(value: str | None, option: str = "--as-of") -> pd.Timestamp | None:
    """An option's date (None when not given); a wrong one is a usage error naming it."""
    try:
        return pd.Timestamp(value) if value else None
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


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
