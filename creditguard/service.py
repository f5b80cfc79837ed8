"""Commands of the HTTP service: serve, and the audit log of its decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditguard.app import app, console, error


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind: loopback by default; 0.0.0.0 to listen on every interface "
            "(put TLS in front of it)."
        ),
    ] = "127.0.0.1",
    ledger: Annotated[
        Path | None, typer.Option(help="Ledger to score against (default: the demo ledger).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (each holds the models and ledger); 2 on two cores for throughput.",
        ),
    ] = 1,
    threads: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Request threads per worker (the tree kernels release the GIL)."
        ),
    ] = 2,
) -> None:
    """Start the BentoML service (`bentoml serve serving.service:CreditGuard`) with the champions."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["CREDITGUARD_WORKERS"] = str(workers)
    env["CREDITGUARD_THREADS"] = str(threads)
    if ledger is not None:
        env["CREDITGUARD_LEDGER"] = str(ledger.resolve())
    if not env.get("CREDITGUARD_API_KEYS") and not env.get("CREDITGUARD_API_KEYS_FILE"):
        console.print(
            "no API keys configured: set CREDITGUARD_API_KEYS=role:key,... (see `make serve`)",
            style="yellow",
        )
    from serving.auth import ApiKeys, KeyConfigError

    try:  # the service refuses them too; said here at once, before minutes of loading
        ApiKeys.from_env()
    except KeyConfigError as exc:
        error(exc)
        raise typer.Exit(2) from None
    bentoml = Path(sys.executable).with_name("bentoml")
    from scoring.paths import REPO

    raise typer.Exit(
        subprocess.call(
            [
                str(bentoml),
                "serve",
                "serving.service:CreditGuard",
                "--host",
                host,
                "--port",
                str(port),
                "--working-dir",
                str(REPO),
            ],
            env=env,
        )
    )


@app.command()
def audit(
    client: Annotated[str, typer.Option(help="Client id whose decision history to show.")],
) -> None:
    """Every audited decision for a client: time, key id, models, PD, grade, decision, reasons."""
    import json

    from serving.audit import AuditLog, audit_path

    history = AuditLog(audit_path()).history(client)
    if history.empty:
        console.print(f"no audited decisions for {client}")
        return
    table = Table(title=f"decisions for {client}")
    for col in ("at", "key", "endpoint", "models", "PD", "grade", "decision", "reasons"):
        table.add_column(col)
    for r in history.itertuples():
        decision = json.loads(r.decision) or {}
        table.add_row(
            r.at,
            r.key_id,
            r.endpoint,
            r.model_versions,
            f"{r.pd:.2%}",
            str(r.grade),
            (
                f"{decision.get('requested_amount', float('nan')):,.0f} asked: "
                f"{decision['decision']} {decision['approved_amount']:,.0f}"
                if decision
                else "-"
            ),
            "; ".join(json.loads(r.reasons)),
        )
    console.print(table)
