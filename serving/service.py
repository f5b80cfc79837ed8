"""The BentoML service: validates, calls the scoring core, shapes the response. No business logic here.

creditguard serve [--port 3000]      # or: bentoml serve serving.service:CreditGuard
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import bentoml
import pandas as pd
from bentoml.exceptions import BentoMLException
from pydantic import BaseModel, Field

from serving.scoring import Scorer
from serving.state import DEFAULT_LEDGER, ApiKeys, AuditLog, OnlineLedger, audit_path

MAX_BATCH = 500


class ApiError(BentoMLException):
    """An error with its HTTP status; BentoML returns it as JSON, never as a 5xx."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message, error_code=status)


class Reason(BaseModel):
    feature: str = Field(description="Feature name in the catalog.")
    value: Any = Field(description="The client's value of the feature.")
    contribution: float = Field(
        description="Exact TreeSHAP contribution to the raw score (log-odds)."
    )
    text: str = Field(
        description="The reason in plain words.",
        examples=["34% of invoices paid in the last 90 days were paid more than 30 days late"],
    )


class LimitDecisionOut(BaseModel):
    decision: str = Field(description="approve, approve_in_part, refuse or refer.")
    approved_amount: float
    rules: list[str] = Field(description="The policy rules that fired.")


class ScoreDocument(BaseModel):
    client_id: str
    as_of: dt.date
    pd_12m: float = Field(description="Calibrated probability of default within 12 months.")
    grade: int = Field(description="Master-scale grade, 1 (best) to 10.")
    late_payment_probability: float = Field(
        description="Probability a typical new invoice is paid late."
    )
    expected_loss: float = Field(description="PD x LGD x EAD under the limit policy.")
    recommended_limit: float
    open_balance: float
    thin_file: bool = Field(
        description="Data sufficiency: too little history for a full payment profile."
    )
    risk_reasons: list[Reason] = Field(description="What raises the risk most.")
    strengths: list[Reason] = Field(description="What lowers the risk most.")
    limit_decision: LimitDecisionOut | None = None
    model_versions: dict[str, str]


class BatchOut(BaseModel):
    scores: list[ScoreDocument]


def _document(row: dict[str, Any]) -> ScoreDocument:
    def num(v: Any) -> float:
        v = float(v)
        return 0.0 if math.isnan(v) else v

    decision = row.get("limit_decision")
    return ScoreDocument(
        client_id=str(row["client_id"]),
        as_of=pd.Timestamp(row["as_of"]).date(),
        pd_12m=float(row["pd_12m"]),
        grade=int(row["grade"]),
        late_payment_probability=float(row["late_payment_probability"]),
        expected_loss=num(row["expected_loss"]),
        recommended_limit=num(row["recommended_limit"]),
        open_balance=num(row["open_balance"]),
        thin_file=bool(row["thin_file"]),
        risk_reasons=[Reason(**r) for r in row.get("risk_reasons", [])],
        strengths=[Reason(**r) for r in row.get("strengths", [])],
        limit_decision=LimitDecisionOut(**decision) if decision else None,
        model_versions={k: str(v) for k, v in row["model_versions"].items()},
    )


@bentoml.service(traffic={"timeout": 60})
class CreditGuard:
    """Scores clients of the configured ledger with the champion models."""

    def __init__(self) -> None:
        self.keys = ApiKeys.from_env()
        self.audit = AuditLog(audit_path())
        self.ledger = OnlineLedger(Path(os.environ.get("CREDITGUARD_LEDGER", DEFAULT_LEDGER)))
        self.lock = threading.Lock()
        self.scorer = Scorer.from_registry()

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
        features = self.ledger.features(client_id, day)
        if features.empty:
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"client {client_id!r} was not yet onboarded on {day.date()}",
            )
        requested = pd.Series([requested_limit if requested_limit is not None else float("nan")])
        with self.lock:
            scorer = self.scorer
        row = scorer.score(features, requested_limits=requested).iloc[0].to_dict()
        doc = _document(row)
        self.audit.append(key_id=key_id, endpoint="score", doc=doc.model_dump(mode="json"))
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
        features = self.ledger.batch_features(sorted(set(client_ids)), self._as_of(as_of))
        with self.lock:
            scorer = self.scorer
        scored = scorer.score(features)
        docs = [_document(r) for r in scored.to_dict("records")]
        for d in docs:
            self.audit.append(key_id=key_id, endpoint="score_batch", doc=d.model_dump(mode="json"))
        return BatchOut(scores=docs)

    @bentoml.api
    def reload(self, ctx: bentoml.Context) -> dict[str, dict[str, str]]:
        """Load the current champions without a restart (admin)."""
        self._authorize(ctx, "reload")
        fresh = Scorer.from_registry()
        with self.lock:
            self.scorer = fresh
        return {"model_versions": fresh.versions}
