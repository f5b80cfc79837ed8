"""Commands on ledgers and feature tables: generate, validate, import-ibm, profile, features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from creditguard.app import app, console, print_mapping, print_violations


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option(help="Folder to write the ledger into (replaced atomically).")
    ],
    clients: Annotated[int, typer.Option(min=1, help="Number of clients.")] = 2000,
    months: Annotated[
        int, typer.Option(min=1, max=240, help="Months of history to simulate.")
    ] = 36,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives identical files.")
    ] = 42,
    start: Annotated[
        str, typer.Option(help="First month of the ledger (YYYY-MM-DD).")
    ] = "2023-01-01",
    buckets: Annotated[
        int | None,
        typer.Option(
            min=1, help="Write it partitioned in this many client buckets (see `partition`)."
        ),
    ] = None,
) -> None:
    """Generate a synthetic receivables ledger (the embedded default data)."""
    import tempfile

    from features.partitioned import partition_folder
    from features.synthetic import GeneratorConfig, generate_ledger

    cfg = GeneratorConfig(clients=clients, months=months, seed=seed, start=start)
    if buckets is None:
        counts = generate_ledger(cfg, out)
    else:
        with tempfile.TemporaryDirectory(prefix="creditguard-generate-") as work:
            counts = generate_ledger(cfg, Path(work) / "ledger")
            partition_folder(Path(work) / "ledger", out, buckets=buckets, scratch=work)
    console.print(
        f"wrote {out}: "
        + ", ".join(f"{n:,} {name}" for name, n in counts.items())
        + f"; extracted on {cfg.extracted_on.date()}"
        + (f"; in {buckets} client buckets" if buckets else "")
    )


@app.command()
def partition(
    ledger: Annotated[Path, typer.Argument(help="Ledger folder of CSV or Parquet tables.")],
    out: Annotated[
        Path, typer.Argument(help="Folder to write the partitioned ledger into (atomically).")
    ],
    buckets: Annotated[int, typer.Option(min=1, help="Client buckets.")] = 8,
    scratch: Annotated[
        Path | None, typer.Option(help="Scratch folder for the streaming pass.")
    ] = None,
) -> None:
    """Write a ledger as Parquet datasets in client buckets (hive style), the layout Spark
    executors and the service read a bucket or a client at a time."""
    from features.partitioned import partition_folder

    layout = partition_folder(ledger, out, buckets=buckets, scratch=scratch)
    filled = sum(1 for first, _ in layout.clients if first is not None)
    console.print(
        f"wrote {out}: {', '.join(layout.tables)} in {layout.buckets} client buckets "
        f"({filled} with clients) and one of rows that belong to no client"
    )


@app.command()
def validate(
    ledger: Annotated[Path, typer.Argument(help="Ledger folder of CSV or Parquet tables.")],
    extracted_on: Annotated[
        str | None,
        typer.Option(help="Extraction date (YYYY-MM-DD); read from manifest.json when absent."),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Write offending rows with their reasons to DIR/rejects, all violations to "
            "DIR/violations.csv and the valid rest as a ledger to DIR/ledger."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every violation to this CSV file.")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="How many single violations to print.")] = 20,
) -> None:
    """Check a ledger against the data contract; exit 2 when any rule is broken."""
    from features.contract import split_quarantine
    from features.io import atomic_directory, atomic_file, inspect_ledger, write_ledger

    typed, violations = inspect_ledger(ledger, extracted_on=extracted_on)
    if report is not None:
        with atomic_file(report) as tmp:
            violations.to_csv(tmp, index=False)
    if quarantine is not None:
        clean, rejected = split_quarantine(typed, violations)
        write_ledger(clean, quarantine / "ledger")
        with atomic_directory(quarantine / "rejects") as tmp:
            for name, rows in rejected.items():
                if len(rows):
                    rows.to_parquet(tmp / f"{name}.parquet", index=False)
        with atomic_file(quarantine / "violations.csv") as tmp:
            violations.to_csv(tmp, index=False)
        kept = ", ".join(f"{len(f):,} {n}" for n, f in clean.tables().items())
        dropped = sum(len(r) for r in rejected.values())
        console.print(f"quarantined {dropped:,} rows to {quarantine / 'rejects'}; kept {kept}")
    if len(violations) == 0:
        console.print(f"{ledger}: no contract violations", style="green")
        return
    print_violations(violations, limit=limit)
    raise typer.Exit(code=2)


@app.command("import-ibm")
def import_ibm(
    source: Annotated[
        Path,
        typer.Argument(exists=True, help="The IBM accounts-receivable CSV or its folder."),
    ],
    out: Annotated[Path, typer.Option(help="Ledger folder to write.")],
) -> None:
    """Map the IBM accounts-receivable sample onto the ledger contract."""
    from features.adapters import load_ibm_accounts_receivable
    from features.io import write_ledger

    ledger = load_ibm_accounts_receivable(source)
    write_ledger(
        ledger, out, manifest={"source": "IBM Watson Analytics accounts receivable sample"}
    )
    console.print(f"wrote {out}: {len(ledger.clients)} clients, {len(ledger.invoices)} invoices")


@app.command()
def profile(ledger: Annotated[Path, typer.Argument(help="Ledger folder.")]) -> None:
    """Print the headline figures of a valid ledger."""
    from features.io import load_ledger
    from features.profile import profile_ledger

    print_mapping("ledger profile", profile_ledger(load_ledger(ledger)))


@app.command()
def features(
    ledger: Annotated[Path | None, typer.Option(help="Ledger folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Parquet file to write (atomically).")] = None,
    unit: Annotated[
        str, typer.Option(help="client: (client, as_of) snapshots; invoice: invoices at issue.")
    ] = "client",
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="Snapshot date (repeatable).")
    ] = None,
    monthly: Annotated[
        tuple[str, str] | None,
        typer.Option(help="Month-end snapshots from FROM to TO.", metavar="FROM TO"),
    ] = None,
    grace_days: Annotated[
        int, typer.Option(min=0, help="Days after due before an invoice counts as late.")
    ] = 0,
    issued_from: Annotated[
        str | None, typer.Option(help="Invoice unit: only invoices issued on or after this date.")
    ] = None,
    partitions: Annotated[
        int | None, typer.Option(min=1, help="Client partitions (default: by ledger size).")
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="local, or spark: executors build each client bucket's rows (a plain ledger "
            "is partitioned first)."
        ),
    ] = "local",
    master: Annotated[
        str, typer.Option(help="Spark master URL (with --engine spark).")
    ] = "local[2]",
    scratch: Annotated[
        Path | None,
        typer.Option(help="Scratch folder (with --engine spark: readable by every executor)."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print the feature catalog and exit.")
    ] = False,
) -> None:
    """Build point-in-time features with labels, or list the feature catalog."""
    from features.catalog import catalog_frame, feature_specs
    from features.io import load_ledger, read_layout
    from features.pipeline import (
        iter_bucket_features,
        month_ends,
        write_feature_table,
        write_frames,
    )

    if unit not in ("client", "invoice"):
        raise typer.BadParameter("must be client or invoice", param_hint="--unit")
    if list_:
        catalog = catalog_frame(feature_specs(unit))  # type: ignore[arg-type]
        table = Table(title=f"{len(catalog)} {unit} features")
        for col in ("name", "family", "window", "direction", "description"):
            table.add_column(col)
        for r in catalog.itertuples():
            window = "" if pd.isna(r.window) else str(int(r.window))
            table.add_row(
                r.name,
                r.family,
                window,
                {1: "+ risk", -1: "- risk"}.get(int(r.direction), ""),
                r.description,
            )
        console.print(table)
        return
    if ledger is None or out is None:
        raise typer.BadParameter("--ledger and --out are required unless --list is given")
    dates: list[object] = list(as_of or [])
    if monthly is not None:
        dates += month_ends(*monthly)
    if unit == "client" and not dates:
        raise typer.BadParameter(
            "give --as-of DATE (repeatable) or --monthly FROM TO", param_hint="--as-of"
        )
    if engine not in ("local", "spark"):
        raise typer.BadParameter("must be local or spark", param_hint="--engine")
    since = pd.Timestamp(issued_from) if issued_from is not None else None
    options = {"as_of_dates": dates, "grace_days": grace_days, "issued_from": since}
    if engine == "spark":
        from portfolio.spark import features_spark

        stats = features_spark(
            ledger,
            out,
            unit=unit,  # type: ignore[arg-type]
            master=master,
            scratch=scratch,
            **options,
        )
    elif read_layout(ledger) is not None:  # bucket by bucket, as the Spark executors build it
        stats = write_frames(
            iter_bucket_features(ledger, unit=unit, progress=True, **options),  # type: ignore[arg-type]
            out,
            unit=unit,  # type: ignore[arg-type]
        )
    else:
        loaded = load_ledger(ledger)
        chosen = None
        if since is not None:
            inv = loaded.invoices
            chosen = inv.loc[inv["issued_on"] >= since, "invoice_id"]
        stats = write_feature_table(
            loaded,
            out,
            unit=unit,  # type: ignore[arg-type]
            as_of_dates=dates,
            invoices=chosen,
            grace_days=grace_days,
            partitions=partitions,
            progress=True,
        )
    label = "default_12m" if unit == "client" else "late"
    console.print(
        f"wrote {out}: {stats['rows']:,} rows; {stats['uncensored']:,} uncensored with a {label} rate of {stats['rate']:.2%}"
    )


@app.command("record-action")
def record_action_command(
    ledger: Annotated[Path, typer.Option(help="Ledger folder whose action log it joins.")],
    client: Annotated[str, typer.Option(help="Client id.")],
    action: Annotated[
        str,
        typer.Option(help="What was done: letter_sent, promise_to_pay, insurer_notified, ..."),
    ],
    on: Annotated[str, typer.Option(help="When (YYYY-MM-DD).")],
    invoice: Annotated[str | None, typer.Option(help="The invoice, when it is about one.")] = None,
    amount: Annotated[
        float | None, typer.Option(help="An amount it names (days for an extension).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Free text.")] = None,
) -> None:
    """Record an action in the ledger's action log (checked against the contract first)."""
    from features.actions import record_action

    row = record_action(
        ledger,
        client_id=client,
        action=action,
        on=on,
        invoice_id=invoice,
        amount=amount,
        note=note,
    )
    replayed = row.pop("replayed")
    shown = {k: ("" if pd.isna(v) else v) for k, v in row.items()}
    print_mapping(
        "already in the log: not recorded twice" if replayed else "action recorded", shown
    )
