"""Portfolio batch scoring: every client and open invoice of a ledger at one date, in chunks of
whole clients, through the same feature code and scoring core as the service.

One chunk is scored by `score_chunk`, a pure function of (ledger of some clients, scorer, date);
the local engine loops over chunks, the Spark engine (`serving/spark.py`) hands buckets of clients
to the same function on executors. Either way `write_run` writes the run folder atomically:

    clients.parquet    one row per client: PD, grade, late-payment probability, top reasons,
                       recommended limit and the decision on the current limit, expected loss
    invoices.parquet   one row per open invoice: late probability, days past due, escalation
                       stage, expected loss and collection priority rank
    features.parquet   the client features scored (for monitoring)
    rejects.parquet    ledger rows that broke the contract, with the reasons (the rest is scored)
    report.html, report.json, run.json
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from features.contract import TABLE_NAMES, Ledger, split_quarantine
from features.io import atomic_directory, inspect_ledger
from features.payment_behaviour import build_client_features, build_invoice_features
from features.pipeline import client_ledgers
from features.stream import PART_CLIENTS, ledger_parts
from serving.outputs import FIRST_ROWS, InvoiceFigures, RunTables, prioritise
from serving.scoring import Scorer

CHUNK_CLIENTS = 2048
TOP_REASONS = 3
STAGES = (
    (0, "not yet due"),
    (1, "reminder and grace (1-30 DPD)"),
    (2, "formal dunning letter (31-60 DPD)"),
    (3, "final notice, stop deliveries (61-90 DPD)"),
    (4, "legal action or insurer claim (90+ DPD)"),
)


def escalation_stage(dpd: np.ndarray) -> np.ndarray:
    """0 not due, 1: 1-30, 2: 31-60, 3: 61-90, 4: over 90 days past due."""
    return np.select([dpd > 90, dpd > 60, dpd > 30, dpd > 0], [4, 3, 2, 1], 0).astype("int8")


def open_invoices(ledger: Ledger, as_of: pd.Timestamp) -> pd.DataFrame:
    """Invoices issued before `as_of`, neither settled nor written off before it, with what was
    still outstanding that day (dated payments before `as_of` deducted)."""
    inv = ledger.invoices
    is_open = (
        (inv["issued_on"] < as_of)
        & (inv["paid_on"].isna() | (inv["paid_on"] >= as_of))
        & (inv["written_off_on"].isna() | (inv["written_off_on"] >= as_of))
    )
    out = inv.loc[is_open, ["invoice_id", "client_id", "issued_on", "due_on", "amount", "currency"]]
    pay = ledger.payments
    received = (
        pay.loc[pay["paid_on"] < as_of].groupby("invoice_id")["amount"].sum()
        if len(pay)
        else pd.Series(dtype="float64")
    )
    paid = out["invoice_id"].map(received).fillna(0.0).to_numpy()
    out = out.assign(outstanding=np.maximum(out["amount"].to_numpy() - paid, 0.0))
    return out.reset_index(drop=True)


def score_chunk(
    ledger: Ledger, scorer: Scorer, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clients, open invoices and client features of one chunk of whole clients at `as_of`."""
    features = build_client_features(ledger, as_of_dates=[as_of])
    current = (
        ledger.clients.set_index("client_id")["credit_limit"]
        if "credit_limit" in ledger.clients
        else pd.Series(dtype="float64")
    )
    limits = features["client_id"].map(current).astype("float64")
    scored = scorer.score(features, requested_limits=limits.where(limits > 0), top=TOP_REASONS)
    clients = client_rows(scored, limits)

    invoices = open_invoices(ledger, as_of)
    invoices = invoices[invoices["client_id"].isin(clients["client_id"])].reset_index(drop=True)
    if len(invoices):
        at_issue = build_invoice_features(ledger, invoices=invoices["invoice_id"])
        at_issue = at_issue.set_index("invoice_id").loc[invoices["invoice_id"]]
        late = scorer.late.probability(
            scorer.late.raw_score(scorer.late.matrix(at_issue.reset_index()), threads=1)
        )
    else:
        late = np.zeros(0)
    pd_by_client = clients.set_index("client_id")["pd_12m"]
    dpd = (as_of - invoices["due_on"]).dt.days.to_numpy()
    stage = escalation_stage(dpd)
    client_pd = invoices["client_id"].map(pd_by_client).to_numpy(dtype="float64")
    invoices = invoices.assign(
        as_of=as_of,
        late_payment_probability=late,
        days_past_due=np.maximum(dpd, 0).astype("int64"),
        escalation_stage=stage,
        escalation_action=np.asarray([s[1] for s in STAGES], dtype=object)[stage],
        pd_12m=client_pd,
        expected_loss=client_pd * scorer.policy.lgd * invoices["outstanding"].to_numpy(),
    )
    return clients, invoices, features


def client_rows(scored: pd.DataFrame, current_limits: pd.Series) -> pd.DataFrame:
    out = scored[
        [
            "client_id",
            "as_of",
            "pd_12m",
            "grade",
            "late_payment_probability",
            "expected_loss",
            "recommended_limit",
            "open_balance",
            "thin_file",
            "data_sufficiency",
        ]
    ].copy()
    out["current_limit"] = current_limits.to_numpy()
    decisions = scored["limit_decision"]
    out["limit_decision"] = [d["decision"] if d else "no current limit" for d in decisions]
    out["limit_decision_amount"] = [d["approved_amount"] if d else np.nan for d in decisions]
    out["limit_rules"] = ["; ".join(d["rules"]) if d else "" for d in decisions]
    for i in range(TOP_REASONS):
        out[f"reason_{i + 1}"] = [
            r[i]["text"] if len(r) > i else "" for r in scored["risk_reasons"]
        ]
    out["strength_1"] = [s[0]["text"] if s else "" for s in scored["strengths"]]
    versions = scored["model_versions"]
    out["model_default_version"] = [v.get("creditguard-default", "") for v in versions]
    out["model_late_version"] = [v.get("creditguard-late", "") for v in versions]
    return out


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class RunResult:
    """What the report is built from: the clients, figures of the open invoices (not the
    invoices themselves) and the rejects."""

    clients: pd.DataFrame
    invoices: InvoiceFigures
    rejects: pd.DataFrame
    as_of: pd.Timestamp
    versions: dict[str, str]


def load_for_scoring(ledger_dir: Path) -> tuple[Ledger, pd.DataFrame]:
    """The ledger with every contract-breaking row (and the rows it orphans) set aside."""
    ledger, violations = inspect_ledger(ledger_dir)
    if len(violations) == 0:
        return ledger, _rejects({})
    clean, rejected = split_quarantine(ledger, violations)
    return clean, _rejects(rejected)


def _rejects(rejected: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One table of rejected rows: table, row (1-based in its file), key, reasons, the row as JSON;
    in table order, then file order."""
    parts = []
    for name, frame in rejected.items():
        if frame.empty:
            continue
        frame = frame.sort_index(kind="stable")
        body = frame.drop(columns=["reasons"])
        parts.append(
            pd.DataFrame(
                {
                    "table": name,
                    "row": (frame.index.to_numpy() + 1).astype("int64"),
                    "key": body.iloc[:, 0].astype(str).to_numpy(),
                    "reasons": frame["reasons"].astype(str).to_numpy(),
                    "record": body.astype(str).to_json(orient="records", lines=True).splitlines(),
                }
            )
        )
    columns = {"table": "str", "row": "int64", "key": "str", "reasons": "str", "record": "str"}
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in columns.items()})
    return pd.concat(parts, ignore_index=True)


def chunks(ledger: Ledger, size: int = CHUNK_CLIENTS) -> Iterator[Ledger]:
    ids = np.sort(ledger.clients["client_id"].to_numpy(dtype=object))
    yield from client_ledgers(
        ledger, [ids[start : start + size] for start in range(0, len(ids), size)]
    )


def score_folder(
    folder: Path,
    scorer: Scorer,
    as_of: pd.Timestamp,
    tables: RunTables,
    *,
    part_clients: int = PART_CLIENTS,
    chunk_clients: int = CHUNK_CLIENTS,
    scratch: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """A ledger folder scored without ever holding it whole: read, validated and quarantined a
    part of the clients at a time (`features.stream`), each part scored in chunks whose results
    go to `tables` as they come. Returns the rejects. The same results as `load_for_scoring` +
    `score_local` (tested)."""
    rejected: dict[str, list[pd.DataFrame]] = {}
    for part in ledger_parts(folder, part_clients=part_clients, scratch=scratch):
        for name, frame in part.rejected.items():
            if len(frame):
                rejected.setdefault(name, []).append(frame)
        for chunk in chunks(part.ledger, chunk_clients):
            tables.add(*score_chunk(chunk, scorer, as_of))
            if progress:
                progress(len(chunk.clients))
    return _rejects({n: pd.concat(rejected[n]) for n in TABLE_NAMES if n in rejected})


def score_local(
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    *,
    chunk_clients: int = CHUNK_CLIENTS,
    progress: Callable[[int], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every chunk through `score_chunk`, concatenated in client order."""
    parts: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []
    for chunk in chunks(ledger, chunk_clients):
        parts.append(score_chunk(chunk, scorer, as_of))
        if progress:
            progress(len(chunk.clients))
    return finish(parts)


def finish(
    parts: list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenate chunk results in a canonical order and rank the open invoices portfolio-wide
    (in memory; `RunTables` does the same through scratch files)."""
    clients = pd.concat([p[0] for p in parts], ignore_index=True)
    invoices = pd.concat([p[1] for p in parts], ignore_index=True)
    features = pd.concat([p[2] for p in parts], ignore_index=True)
    clients = clients.sort_values("client_id", kind="stable").reset_index(drop=True)
    features = features.sort_values("client_id", kind="stable").reset_index(drop=True)
    invoices = prioritise(invoices)
    invoices["collection_priority_rank"] = np.arange(1, len(invoices) + 1, dtype=np.int64)
    return clients, invoices, features


def write_run(
    tables: RunTables,
    rejects: pd.DataFrame,
    as_of: pd.Timestamp,
    versions: dict[str, str],
    out: Path,
    *,
    previous: Path | None = None,
) -> dict[str, Any]:
    """Write the run folder atomically (a crash leaves the previous run intact), the invoices
    ranked portfolio-wide a block at a time; returns the report's figures."""
    from serving.report import build_report, max_days_past_due, render_html

    prev_clients = pd.read_parquet(previous / "clients.parquet") if previous else None
    prev_max_dpd = (  # only what the early warnings compare: not the whole previous run
        max_days_past_due(
            pd.read_parquet(previous / "invoices.parquet", columns=["client_id", "days_past_due"])
        )
        if previous
        else None
    )
    with atomic_directory(out) as tmp:
        clients = tables.client_table()
        clients.to_parquet(tmp / "clients.parquet", index=False)
        tables.write_features(tmp / "features.parquet")
        tables.write_invoices(tmp / "invoices.parquet")
        rejects.to_parquet(tmp / "rejects.parquet", index=False)
        first = first_invoices(tmp)
        result = RunResult(clients, tables.invoices, rejects, as_of, versions)
        figures = build_report(result, prev_clients, prev_max_dpd)
        run = {
            "as_of": str(as_of.date()),
            "model_versions": versions,
            "clients": len(clients),
            "open_invoices": tables.invoices.count,
            "rejected_rows": len(rejects),
            "previous": str(previous) if previous else None,
        }
        (tmp / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        (tmp / "report.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
        (tmp / "report.html").write_text(render_html(figures, first, tmp))
    return figures


def first_invoices(run: Path, rows: int = FIRST_ROWS) -> pd.DataFrame:
    """The first open invoices of a run by collection priority (its file is in that order)."""
    source = pq.ParquetFile(run / "invoices.parquet")
    batch = next(source.iter_batches(batch_size=rows), None)
    return batch.to_pandas() if batch is not None else source.schema_arrow.empty_table().to_pandas()
