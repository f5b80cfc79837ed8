"""Portfolio batch scoring: every client and open invoice of a ledger at one date, in chunks of
whole clients, through the same feature code and scoring core as the service.

One chunk is scored by `score_chunk`, a pure function of (ledger of some clients, scorer, date);
the local engine loops over chunks, the Spark engine (`portfolio/spark.py`) hands buckets of clients
to the same function on executors. Either way `portfolio.run.write_run` writes the run folder
atomically:

    clients.parquet    one row per client: PD, grade, late-payment probability, top reasons,
                       recommended limit and the decision on the current limit, expected loss
    invoices.parquet   one row per open invoice: late probability, days past due, escalation
                       stage, expected loss and collection priority rank
    features.parquet   the client features scored (for monitoring)
    rejects.parquet    ledger rows that broke the contract, with the reasons (the rest is scored)
    report.html, report.json, run.json
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd

from features.arrays import index_in, take
from features.contract import LEDGER_TABLES, Ledger, split_quarantine
from features.io import inspect_ledger
from features.partitioned import read_parts
from features.payment_behaviour import build_client_features, build_invoice_features
from features.pipeline import client_ledgers
from features.stream import PART_CLIENTS
from portfolio.letters import client_letters
from portfolio.outputs import (
    CASH_WEEKS,
    SEGMENT_KEYS,
    TOTAL,
    ChunkResult,
    RunTables,
    add_cash,
    add_positions,
    empty_cash,
    prioritise,
)
from scoring.collections import (
    ACTIONS,
    QUEUE_ACTIONS,
    avoidable_loss,
    client_worklist,
    queue_of,
    rank_worklist,
)
from scoring.dso import MEASURES, POSITION_COLUMNS, dso_measures, monthly_positions
from scoring.insurance import (
    client_insurance,
    insurance_worklist,
    insurer_limits_at,
    invoice_cover,
)
from scoring.interest import late_charges
from scoring.receivables import STAGES, days_past_due, escalation_stage, open_invoices
from scoring.scorer import Scorer, client_table
from scoring.timing import WEEKS, invoice_weeks, simulate

CHUNK_CLIENTS = 2048


def score_chunk(
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    previous: pd.DataFrame | None = None,
) -> ChunkResult:
    """Clients, open invoices, client features and the collections worklist of one chunk of
    whole clients at `as_of`; `previous`: the previous run's clients table (for the decision
    PD's history), or None."""
    features = build_client_features(ledger, as_of_dates=[as_of])
    current = (
        ledger.clients.set_index("client_id")["credit_limit"]
        if "credit_limit" in ledger.clients
        else pd.Series(dtype="float64")
    )
    limits = features["client_id"].map(current).to_numpy(dtype="float64")
    scores = scorer.score(
        features,
        history=previous,
        current_limits=limits,
        requested_limits=np.where(limits > 0, limits, np.nan),
    )
    clients = client_table(scores)
    invoices = open_invoices(ledger, as_of)
    invoices = invoices[invoices["client_id"].isin(clients["client_id"])].reset_index(drop=True)
    at_issue = issue_features(ledger, invoices)
    invoices = invoice_rows(invoices, clients, ledger, scorer, as_of, at_issue=at_issue)
    invoices, clients = with_insurance(invoices, clients, ledger, scorer, as_of)
    worklist = worklist_rows(invoices, clients, ledger, scorer, as_of)
    positions = monthly_positions(ledger, as_of)
    clients = with_client_dso(with_firmographics(clients, ledger), positions)
    invoices, cash = with_cash_forecast(invoices, at_issue, scorer, as_of)
    return ChunkResult(
        clients,
        invoices,
        features,
        worklist,
        segment_positions(positions, clients),
        cash,
        client_letters(worklist, invoices, ledger.clients, as_of, ledger.actions),
        ledger.reporting_currency,
    )


def worklist_rows(
    invoices: pd.DataFrame,
    clients: pd.DataFrame,
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """The collections worklist of some clients (`scoring.collections`, with their latest
    actions) and the insurer's deadlines (`scoring.insurance`), unranked."""
    countries = ledger.clients.set_index("client_id")["country"]
    return pd.concat(
        [
            client_worklist(
                invoices,
                as_of,
                scorer.policy,
                clients.set_index("client_id")["over_limit_amount"],
                countries,
                ledger.actions,
            ),
            insurance_worklist(invoices, as_of, scorer.insurance, countries),
        ],
        ignore_index=True,
    )


def with_insurance(
    invoices: pd.DataFrame,
    clients: pd.DataFrame,
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The open invoices with their insurer deadlines and cover, the clients with the insurer's
    limit beside ours, insured and uninsured exposure and expected loss net of the indemnity
    (`scoring.insurance`)."""
    limits = insurer_limits_at(ledger.insurer_limits, clients["client_id"], as_of, ledger.rates)
    of_client = invoices["client_id"]
    ins = ledger.insolvencies[ledger.insolvencies["declared_on"] < as_of]
    first = ins.groupby("client_id")["declared_on"].min()
    insolvent_on = take(
        first.to_numpy(dtype="datetime64[us]"),
        index_in(of_client, first.index.to_numpy(dtype=object)),
        np.datetime64("NaT"),
    )
    cover = invoice_cover(
        invoices,
        scorer.insurance,
        (of_client.map(limits.limit).fillna(0.0) > 0).to_numpy(),
        insolvent_on,
        ledger.actions,
        as_of,
    )
    invoices = invoices.assign(
        insurer_notify_by=cover["notify_by"].to_numpy(),
        insurer_claim_from=cover["claim_from"].to_numpy(),
        insurance_cover=cover["cover"].to_numpy(),
    )
    insured = client_insurance(
        clients,
        invoices.rename(columns={"insurance_cover": "cover"}),
        limits,
        scorer.insurance,
        scorer.policy.limits.lgd,
    )
    return invoices, clients.assign(**{c: insured[c].to_numpy() for c in insured.columns[1:]})


def issue_features(ledger: Ledger, invoices: pd.DataFrame) -> pd.DataFrame:
    """The open invoices' features at issue, in their order (what the late and timing models
    read)."""
    if not len(invoices):
        return pd.DataFrame({"invoice_id": pd.Series([], dtype="str")})
    at_issue = build_invoice_features(ledger, invoices=invoices["invoice_id"])
    return at_issue.set_index("invoice_id").loc[invoices["invoice_id"]].reset_index()


def with_cash_forecast(
    invoices: pd.DataFrame, at_issue: pd.DataFrame, scorer: Scorer, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The open invoices with their expected receipt within 13 weeks (in the reporting
    currency), and the chunk's receipts per week: expected (draw -1) and simulated (draws 0..),
    `scoring.timing`, per currency in that currency and in all (`TOTAL`) in the reporting
    currency at the rate known on `as_of`; a client's draws are the same in every currency, so the
    total's interval is that of the sum. Invoices of insolvent clients (the claim queue) are
    expected to bring nothing in 13 weeks (`scoring.timing.invoice_weeks`). Without a timing
    model: no forecast."""
    if scorer.timing is None:
        return invoices.assign(expected_receipt_13w=np.nan), empty_cash()
    weekly = np.zeros((len(invoices), WEEKS + 1))
    if len(invoices):
        insolvent = (invoices["collection_queue"] == "claim").to_numpy()
        weekly = invoice_weeks(scorer.timing, at_issue, invoices["due_on"], as_of, insolvent)
    left = invoices["outstanding_in_currency"].to_numpy(dtype="float64")
    rate = invoices["fx_rate"].to_numpy(dtype="float64")
    out = invoices.assign(expected_receipt_13w=(weekly[:, :WEEKS].sum(axis=1) * left * rate))
    frames = []
    clients = invoices["client_id"].to_numpy(dtype=object)
    total = None
    for currency, rows in invoices.groupby("currency", sort=True).indices.items():
        expected = (weekly[rows, :WEEKS] * left[rows, None]).sum(axis=0)
        block = np.vstack([expected[None, :], simulate(weekly[rows], left[rows], clients[rows])])
        frames.append(_cash_rows(str(currency), block))
        converted = block * rate[rows[0]]  # one rate per currency on `as_of`
        total = converted if total is None else total + converted
    if total is not None:
        frames.append(_cash_rows(TOTAL, total))
    return out, pd.concat(frames, ignore_index=True) if frames else empty_cash()


def _cash_rows(currency: str, block: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(block, columns=CASH_WEEKS)
    frame.insert(0, "draw", np.arange(-1, len(block) - 1, dtype=np.int64))
    frame.insert(0, "currency", currency)
    return frame


def with_firmographics(clients: pd.DataFrame, ledger: Ledger) -> pd.DataFrame:
    """The clients' country and industry beside their scores (segments of the report)."""
    known = ledger.clients.set_index("client_id")
    at = clients.columns.get_loc("status")
    out = clients.copy()
    for column in ("industry", "country"):
        out.insert(at, column, clients["client_id"].map(known[column]).astype("str"))
    return out


def with_client_dso(clients: pd.DataFrame, positions: pd.DataFrame) -> pd.DataFrame:
    """Each client's DSO, countback DSO, best possible DSO and average days delinquent at the
    last complete month before the run's date (`scoring.dso`)."""
    measures = dso_measures(positions, by=["client_id"])
    last = measures[measures["month"] == measures["month"].max()].set_index("client_id")
    return clients.assign(
        **{m: clients["client_id"].map(last[m]).astype("float64") for m in MEASURES}
    )


def segment_positions(positions: pd.DataFrame, clients: pd.DataFrame) -> pd.DataFrame:
    """The clients' monthly positions summed by segment: the portfolio, industry, country,
    grade (today's; D for clients in default)."""
    by_client = clients.set_index("client_id")
    grade = pd.Series(
        np.where(
            by_client["grade"].isna(),
            "D",
            by_client["grade"].astype("Float64").fillna(0).astype(int).astype(str),
        ),
        index=by_client.index,
    )
    keys = {
        "portfolio": pd.Series("all", index=by_client.index),
        "industry": by_client["industry"].astype(str),
        "country": by_client["country"].astype(str),
        "grade": grade,
    }
    parts = []
    for level, key in keys.items():
        part = positions.assign(level=level, segment=positions["client_id"].map(key).to_numpy())
        parts.append(
            part.groupby(SEGMENT_KEYS, sort=True, observed=True)[list(POSITION_COLUMNS)].sum()
        )
    return pd.concat(parts).reset_index()


def invoice_rows(
    invoices: pd.DataFrame,
    clients: pd.DataFrame,
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    *,
    at_issue: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Open invoices with their late-payment probability at issue, days past due, their own
    stage, their client's queue and stage, the next action, expected and avoidable loss, and
    the late-payment interest and fixed compensation they carry (`scoring.interest`, in the
    reporting currency).
    `at_issue`: their features at issue (`issue_features`), when the caller has them."""
    if len(invoices):
        if at_issue is None:
            at_issue = issue_features(ledger, invoices)
        late = scorer.late.probability(
            scorer.late.raw_score(scorer.late.matrix(at_issue), threads=1)
        )
    else:
        late = np.zeros(0)
    by_client = clients.set_index("client_id")
    of_client = invoices["client_id"]
    client_pd = of_client.map(by_client["pd_12m"]).to_numpy(dtype="float64")
    dpd = days_past_due(invoices, as_of)
    stage = escalation_stage(dpd)
    queue = queue_of(
        of_client.map(by_client["status"]).to_numpy(dtype=object),
        of_client.map(by_client["insolvent"]).to_numpy(dtype=bool),
        invoices["disputed"].to_numpy(dtype=bool),
    )
    in_default = np.isin(queue, ["claim", "recovery"])
    # the client's worst stage in each queue; a client in default: all of it, legal stage
    worst = pd.Series(stage).groupby([of_client.to_numpy(), queue]).transform("max").to_numpy()
    client_stage = np.where(in_default, 4, worst).astype("int8")
    action = np.where(
        in_default | (queue == "dispute"),
        [QUEUE_ACTIONS.get(q, "") for q in queue],
        np.asarray(["not yet due", *(ACTIONS[k] for k in (1, 2, 3, 4))], dtype=object)[
            np.where(stage > 0, client_stage, 0)
        ],
    )
    outstanding = invoices["outstanding"].to_numpy()
    lgd = scorer.policy.limits.lgd
    country = ledger.clients.set_index("client_id")["country"]
    charges = late_charges(
        invoices,
        of_client.map(country).to_numpy(dtype=object),
        as_of,
        scorer.policy.late_interest,
        ledger.rates,
    )
    fx = invoices["fx_rate"].to_numpy(dtype="float64")
    return invoices.assign(
        as_of=as_of,
        late_payment_probability=late,
        days_past_due=np.maximum(dpd, 0).astype("int64"),
        escalation_stage=stage,
        escalation_action=np.asarray([s[1] for s in STAGES], dtype=object)[stage],
        collection_queue=queue,
        client_stage=client_stage,
        action=action,
        pd_12m=client_pd,
        expected_loss=client_pd * lgd * outstanding,
        avoidable_loss=avoidable_loss(
            outstanding, np.where(in_default | (stage > 0), client_stage, 0), lgd, scorer.policy
        ),
        late_interest=charges.interest * fx,
        late_compensation=charges.compensation * fx,
        late_charges_rule=charges.rule,
    )


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
    previous: pd.DataFrame | None = None,
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
    # closed at once on an interrupt, so that its spill files go with it
    with closing(read_parts(folder, part_clients=part_clients, scratch=scratch)) as parts:
        for part in parts:
            for name, frame in part.rejected.items():
                if len(frame):
                    rejected.setdefault(name, []).append(frame)
            for result in score_part(part.ledger, scorer, as_of, previous, chunk_clients):
                tables.add(result)
                if progress:
                    progress(len(result.clients))
    return rejects_table(rejected)


def rejects_table(rejected: dict[str, list[pd.DataFrame]]) -> pd.DataFrame:
    """The run's rejects from each part's rejected rows per table."""
    return _rejects({n: pd.concat(rejected[n]) for n in LEDGER_TABLES if n in rejected})


def score_part(
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    previous: pd.DataFrame | None,
    chunk_clients: int = CHUNK_CLIENTS,
) -> Iterator[ChunkResult]:
    """One part's clients scored a chunk at a time (both engines add these to the run in the
    same order)."""
    for chunk in chunks(ledger, chunk_clients):
        yield score_chunk(chunk, scorer, as_of, previous)


def score_local(
    ledger: Ledger,
    scorer: Scorer,
    as_of: pd.Timestamp,
    *,
    previous: pd.DataFrame | None = None,
    chunk_clients: int = CHUNK_CLIENTS,
    progress: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Every chunk through `score_chunk`, concatenated in client order."""
    parts: list[ChunkResult] = []
    for chunk in chunks(ledger, chunk_clients):
        parts.append(score_chunk(chunk, scorer, as_of, previous))
        if progress:
            progress(len(chunk.clients))
    return finish(parts)


def finish(parts: list[ChunkResult]) -> ChunkResult:
    """Concatenate chunk results in a canonical order, rank the open invoices and the worklist
    portfolio-wide (in memory; `RunTables` does the same through scratch files)."""

    def stack(name: str) -> pd.DataFrame:
        return pd.concat([getattr(p, name) for p in parts], ignore_index=True)

    clients = stack("clients").sort_values("client_id", kind="stable").reset_index(drop=True)
    features = stack("features").sort_values("client_id", kind="stable").reset_index(drop=True)
    invoices = prioritise(stack("invoices"))
    invoices["collection_priority_rank"] = np.arange(1, len(invoices) + 1, dtype=np.int64)
    positions, cash = None, empty_cash()
    for part in parts:
        positions = add_positions(positions, part.positions)
        cash = add_cash(cash, part.cash)
    assert positions is not None
    reporting = next((p.reporting_currency for p in parts if p.reporting_currency), None)
    letters = stack("letters").sort_values("client_id", kind="stable").reset_index(drop=True)
    return ChunkResult(
        clients,
        invoices,
        features,
        rank_worklist(stack("worklist")),
        positions,
        cash,
        letters,
        reporting,
    )
