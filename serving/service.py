"""The BentoML service: validates, calls the scoring core, shapes the response. No business logic here.

creditguard serve [--port 3000]      # or: bentoml serve serving.service:CreditGuard
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import os
import threading
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import BentoMLException
from pydantic import Field
from starlette.staticfiles import StaticFiles

from features.contract import LedgerValidationError
from features.payment_behaviour import build_client_features
from portfolio.runs import RunHistory
from scoring.applicant import TradeReference, applicant_ledger, apply_trade_references
from scoring.reasons import Reason as ScoredReason
from scoring.scorer import ClientRows, History, Scorer, Scores
from serving.audit import AuditLog, audit_path
from serving.auth import ApiKeys
from serving.officer import client_view, search
from serving.online import DEFAULT_LEDGER, DEFAULT_RUNS, OnlineLedger
from serving.openapi import ConformingResponses
from serving.schemas import (
    ApplicantDocument,
    ApplicantProfile,
    BatchOut,
    ClientMatch,
    ClientView,
    LimitDecisionOut,
    Reason,
    ScoreDocument,
    SearchOut,
    Statement,
    TradeReferenceIn,
)

MAX_BATCH = 500
UI_DIR = Path(__file__).parent / "ui"


class ApiError(BentoMLException):
    """An error with its HTTP status; BentoML returns it as JSON, never as a 5xx."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message, error_code=status)


def _applicant_violations(exc: LedgerValidationError) -> str:
    """Contract violations in the request's own terms: profile.FIELD or financials[i].FIELD."""
    parts = []
    for v in exc.violations.head(10).to_dict("records"):
        # contract rows count from 1; request lists from 0
        where = "profile" if v["table"] == "clients" else f"{v['table']}[{int(v['row']) - 1}]"
        rule = str(v["rule"]).replace("the extraction date", "the day before as_of")
        parts.append(f"{where}.{v['column']} {rule} (value: {v['value']!r})")
    return "invalid applicant: " + "; ".join(parts)


def _settle_heap() -> None:
    """Hide everything loaded so far (ledger, models: ~600k objects on the demo) from the garbage
    collector. A full collection over them takes ~350 ms, and the ones that fell on requests were
    the whole p99 at concurrency 1 (159 ms with a p50 of 8 ms)."""
    gc.collect()
    gc.freeze()


def _num(v: Any) -> float:
    v = float(v)
    return 0.0 if math.isnan(v) else v


def _optional(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _reason(r: ScoredReason) -> Reason:
    value = r.value.item() if isinstance(r.value, np.generic) else r.value
    return Reason(
        feature=r.feature,
        value=value,
        contribution=round(r.contribution, 6),
        text=r.text,
        typical=r.typical,
    )


def _document(scorer: Scorer, rows: ClientRows, scores: Scores, i: int) -> ScoreDocument:
    """Row i of the scores as the service's document."""
    decision = scores.limit_decision[i]
    return ScoreDocument(
        client_id=str(scores.client_id[i]),
        as_of=pd.Timestamp(scores.as_of[i]).date(),
        status=str(scores.status[i]),
        status_reason=str(scores.status_reason[i]),
        pd_12m=float(scores.pd_12m[i]),
        decision_pd=float(scores.decision_pd[i]),
        grade=scores.grade_label(i),
        late_payment_probability=float(scores.late_payment_probability[i]),
        expected_loss=_num(scores.expected_loss[i]),
        recommended_limit=_num(scores.recommended_limit[i]),
        limit_rule=scorer.limit_rule(scores, rows, i),
        current_limit=_optional(scores.current_limit[i]),
        over_limit=bool(scores.over_limit[i]),
        over_limit_amount=_num(scores.over_limit_amount[i]),
        open_balance=_num(scores.open_balance[i]),
        overdue_balance=_num(scores.overdue_balance[i]),
        max_days_past_due=_num(scores.max_days_past_due[i]),
        usual_terms_days=_optional(scores.usual_terms_days[i]),
        thin_file=bool(scores.thin_file[i]),
        data_sufficiency=str(scores.data_sufficiency[i]),
        risk_reasons=[_reason(r) for r in scores.risk_reasons[i]],
        strengths=[_reason(r) for r in scores.strengths[i]],
        limit_decision=(
            LimitDecisionOut(
                requested_amount=decision.requested_amount,
                decision=decision.decision,
                approved_amount=decision.approved_amount,
                rules=decision.rules,
            )
            if decision
            else None
        ),
        model_versions={k: str(v) for k, v in scores.model_versions.items()},
    )


@dataclass(frozen=True)
class _Loaded:
    """What a reload swaps at once: the champions, the nightly runs' history, and every
    client's default-day row prepared for them with its history."""

    scorer: Scorer
    history: RunHistory
    prepared: ClientRows
    prepared_history: History


@bentoml.service(
    traffic={"timeout": 60},
    workers=int(os.environ.get("CREDITGUARD_WORKERS", "1")),
    # Threads per worker for the (sync) endpoints; BentoML's default of 1 runs one request at a
    # time. The compiled tree kernels release the GIL, so a second request's Python overlaps them.
    threads=int(os.environ.get("CREDITGUARD_THREADS", "2")),
    logging={"access": {"enabled": os.environ.get("CREDITGUARD_ACCESS_LOG", "0") == "1"}},
    # BentoML records an OpenTelemetry span for every request even when no trace is exported
    # (its sampler always records); that was a quarter of the event loop's time under load.
    # CREDITGUARD_TRACING=1 keeps the spans, for a BentoML configuration that exports them.
    tracing={} if os.environ.get("CREDITGUARD_TRACING", "0") == "1" else {"excluded_urls": ["."]},
)
class CreditGuard:
    """Scores clients of the configured ledger with the champion models."""

    def __init__(self) -> None:
        self.keys = ApiKeys.from_env()
        self.audit = AuditLog(audit_path())
        self.ledger = OnlineLedger(Path(os.environ.get("CREDITGUARD_LEDGER", DEFAULT_LEDGER)))
        self.runs = Path(os.environ.get("CREDITGUARD_RUNS", DEFAULT_RUNS))
        self.lock = threading.Lock()
        self.loaded = self._load()
        _settle_heap()

    def _load(self) -> _Loaded:
        """The champions, the runs' history, and every client's default-day row prepared for
        them (a request then takes its row: no pandas per request)."""
        scorer = Scorer.from_registry()
        history = RunHistory.load(self.runs)
        prepared = scorer.prepare(self.ledger.snapshot)
        before = History.of(
            history.before(self.ledger.default_day), prepared.client_id, prepared.as_of
        )
        if len(prepared):  # compile the trees and load the kernels now, not on a request
            scorer.score_rows(prepared.take([0]), history=before.take(np.array([0])))
        return _Loaded(scorer, history, prepared, before)

    def _score(
        self,
        client_ids: list[str],
        day: pd.Timestamp,
        requested: np.ndarray | None = None,
        reasons: bool = True,
    ) -> tuple[Scorer, ClientRows, Scores]:
        """These clients scored on `day` (clients not yet onboarded then have no row): their rows
        taken from the default-day table, or built by the online path; the decision PD continues
        the latest nightly run before `day`."""
        with self.lock:
            loaded = self.loaded
        scorer = loaded.scorer
        at = self.ledger.snapshot_rows(client_ids, day)
        if at is not None:
            rows, history = loaded.prepared.take(at), loaded.prepared_history.take(np.asarray(at))
        else:
            rows = scorer.prepare(self.ledger.batch_features(client_ids, day))
            history = History.of(loaded.history.before(day), rows.client_id, rows.as_of)
        scores = scorer.score_rows(
            rows,
            history=history,
            current_limits=self.ledger.current_limits(rows.client_id),
            requested=requested,
            reasons=reasons,
        )
        return scorer, rows, scores

    def _authorize(self, ctx: bentoml.Context, action: str) -> str:
        status, detail = self.keys.check(ctx.request.headers.get("authorization"), action)
        if status:
            raise ApiError(HTTPStatus(status), detail)
        return detail

    def _as_of(self, as_of: dt.date | None) -> pd.Timestamp:
        day = (
            pd.Timestamp(as_of) if as_of else self.ledger.ledger.extracted_on + pd.Timedelta(days=1)
        )
        if day > self.ledger.ledger.extracted_on + pd.Timedelta(days=1):
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"as_of {day.date()} is after the ledger's data ({self.ledger.ledger.extracted_on.date()})",
            )
        return day

    @bentoml.api
    def score(
        self,
        ctx: bentoml.Context,
        client_id: Annotated[
            str,
            Field(
                min_length=1,
                max_length=64,
                description="Client id in the ledger.",
                examples=["C0000042"],
            ),
        ],
        as_of: Annotated[
            dt.date | None,
            Field(
                description="Score as of this date (default: the day after the ledger's extraction)."
            ),
        ] = None,
        requested_limit: Annotated[
            float | None, Field(gt=0, le=1e12, description="A credit limit to decide on.")
        ] = None,
    ) -> ScoreDocument:
        """PD, grade, reasons in words, expected loss and, when asked, a decision on a requested limit."""
        key_id = self._authorize(ctx, "score")
        if client_id not in self.ledger.clients:
            raise ApiError(HTTPStatus.NOT_FOUND, f"client_id {client_id!r} is not in the ledger")
        day = self._as_of(as_of)
        if not self.ledger.onboarded_before(client_id, day):
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"client {client_id!r} was not yet onboarded on {day.date()}",
            )
        requested = np.array([requested_limit if requested_limit is not None else np.nan])
        scorer, rows, scores = self._score([client_id], day, requested)
        doc = _document(scorer, rows, scores, 0)
        self.audit.append(key_id=key_id, endpoint="score", doc=doc.model_dump(mode="json"))
        return doc

    @bentoml.api
    def score_applicant(
        self,
        ctx: bentoml.Context,
        profile: ApplicantProfile,
        financials: Annotated[
            list[Statement], Field(max_length=20, description="Financial statements, any order.")
        ] = [],  # noqa: B006  (pydantic copies defaults)
        trade_references: Annotated[list[TradeReferenceIn], Field(max_length=20)] = [],  # noqa: B006
        expected_monthly_purchases: Annotated[
            float | None,
            Field(gt=0, le=1e12, description="Expected purchases per month, for the limit."),
        ] = None,
        requested_limit: Annotated[
            float | None, Field(gt=0, le=1e12, description="A credit limit to decide on.")
        ] = None,
        as_of: Annotated[
            dt.date | None, Field(description="Score as of this date (default: as for /score).")
        ] = None,
    ) -> ApplicantDocument:
        """A prospective client not in the ledger: scored from its profile and financial
        statements (a thin file by definition), with what its trade references say."""
        key_id = self._authorize(ctx, "score")
        day = self._as_of(as_of)
        try:
            ledger = applicant_ledger(
                profile.model_dump(),
                [s.model_dump() for s in financials],
                day,
            )
        except LedgerValidationError as exc:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, _applicant_violations(exc)) from None
        features = build_client_features(ledger, as_of_dates=[day])
        features["expected_monthly_purchases"] = (
            expected_monthly_purchases if expected_monthly_purchases is not None else float("nan")
        )
        requested = np.array([requested_limit if requested_limit is not None else np.nan])
        with self.lock:
            scorer = self.loaded.scorer
        rows = scorer.prepare(features)
        scores = scorer.score_rows(rows, requested=requested)
        refs = [TradeReference(**r.model_dump()) for r in trade_references]
        scores.limit_decision[0], findings = apply_trade_references(scores.limit_decision[0], refs)
        scores.data_sufficiency[0] = "thin file: a prospective client, no payment history with us"
        doc = ApplicantDocument(
            **_document(scorer, rows, scores, 0).model_dump(), trade_reference_findings=findings
        )
        audited = doc.model_dump(mode="json") | {"client_id": f"applicant:{profile.name}"}
        self.audit.append(key_id=key_id, endpoint="score_applicant", doc=audited)
        return doc

    @bentoml.api
    def score_batch(
        self,
        ctx: bentoml.Context,
        client_ids: Annotated[
            list[str],
            Field(min_length=1, max_length=MAX_BATCH, description=f"Up to {MAX_BATCH} client ids."),
        ],
        as_of: Annotated[dt.date | None, Field(description="Score as of this date.")] = None,
    ) -> BatchOut:
        """Many clients in one vectorised call of the scoring core."""
        key_id = self._authorize(ctx, "score_batch")
        unknown = [c for c in client_ids if c not in self.ledger.clients]
        if unknown:
            raise ApiError(
                HTTPStatus.NOT_FOUND,
                f"{len(unknown)} unknown client_id(s): {', '.join(unknown[:5])}",
            )
        day = self._as_of(as_of)
        ready = sorted(c for c in set(client_ids) if self.ledger.onboarded_before(c, day))
        if not ready:
            return BatchOut(scores=[])
        scorer, rows, scores = self._score(ready, day)
        docs = [_document(scorer, rows, scores, i) for i in range(len(rows))]
        for d in docs:
            self.audit.append(key_id=key_id, endpoint="score_batch", doc=d.model_dump(mode="json"))
        return BatchOut(scores=docs)

    @bentoml.api
    def search_clients(
        self,
        ctx: bentoml.Context,
        query: Annotated[
            str,
            Field(min_length=1, max_length=100, description="Part of a client id or name."),
        ],
    ) -> SearchOut:
        """Clients whose id or name contains the query (case-insensitive)."""
        self._authorize(ctx, "score")
        if not query.strip():
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "query must not be blank")
        return SearchOut(
            matches=[ClientMatch(**m) for m in search(self.ledger.ledger.clients, query)]
        )

    @bentoml.api
    def client_view(
        self,
        ctx: bentoml.Context,
        client_id: Annotated[str, Field(min_length=1, max_length=64, examples=["C0000042"])],
        as_of: Annotated[dt.date | None, Field(description="View as of this date.")] = None,
    ) -> ClientView:
        """The client page: score and reasons as a waterfall, payment history, aging, financial
        highlights, early warnings and limits. Looking is not deciding: nothing is audited."""
        self._authorize(ctx, "score")
        if client_id not in self.ledger.clients:
            raise ApiError(HTTPStatus.NOT_FOUND, f"client_id {client_id!r} is not in the ledger")
        day = self._as_of(as_of)
        ledger = self.ledger.client(client_id)
        if not (ledger.clients["onboarded_on"] < day).any():
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"client {client_id!r} was not yet onboarded on {day.date()}",
            )
        with self.lock:
            loaded = self.loaded
        view = client_view(ledger, loaded.scorer, day, loaded.history)
        scores: Scores = view.pop("scores")
        rows: ClientRows = view.pop("rows")
        return ClientView(score=_document(loaded.scorer, rows, scores, 0), **view)

    @bentoml.api
    def reload(self, ctx: bentoml.Context) -> dict[str, dict[str, str]]:
        """Load the current champions without a restart (admin)."""
        self._authorize(ctx, "reload")
        fresh = self._load()
        with self.lock:
            self.loaded = fresh
        gc.unfreeze()  # the old champions become garbage; one full collection, then settle again
        _settle_heap()
        return {"model_versions": fresh.scorer.versions}


# The credit officer's page: static files that ship with the project (no CDN), calling the API above
CreditGuard.mount_asgi_app(StaticFiles(directory=UI_DIR, html=True), path="/ui")  # type: ignore[attr-defined]
# BentoML's responses, made to match its own OpenAPI document (see serving/openapi.py)
ACTIONS = {"/score_batch": "score_batch", "/reload": "reload"}  # every other endpoint: "score"


def _explain_auth(path: str, authorization: str | None) -> str:
    """Why a request was refused (BentoML itself only says 'Authorization error')."""
    status, detail = ApiKeys.from_env().check(authorization, ACTIONS.get(path, "score"))
    return detail if status else "not authorised"


CreditGuard.add_asgi_middleware(ConformingResponses, explain_auth=_explain_auth)  # type: ignore[attr-defined]
