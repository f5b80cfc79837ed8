"""The BentoML service: validates, calls the scoring core, shapes the response. No business logic here.

creditguard serve [--host 127.0.0.1] [--port 3000]   # or: bentoml serve serving.service:CreditGuard

What reaches a handler has passed `serving.guard` (a valid key of the right role, a body under the
size limit) and BentoML's validation of the request models in `serving.schemas` (strict types, no
unknown field).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import gc
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import BentoMLException
from pydantic import ValidationError
from starlette.staticfiles import StaticFiles

from features.actions import record_action
from features.contract import LedgerValidationError, empty_table
from features.errors import InputError
from features.payment_behaviour import build_client_features
from portfolio.layout import LATEST
from portfolio.run import scored_ledger
from portfolio.runs import RunHistory
from scoring.applicant import TradeReference, applicant_ledger, apply_trade_references
from scoring.reasons import Reason as ScoredReason
from scoring.scorer import ClientRows, History, Scorer, Scores
from serving.audit import AuditLog, audit_path
from serving.auth import KeyConfigError, KeyRing
from serving.guard import Guard
from serving.metrics import RequestMetrics, exposition
from serving.officer import client_view, search
from serving.offline import OfflineStore
from serving.online import DEFAULT_LEDGER, DEFAULT_RUNS, OnlineLedger, cache_root
from serving.openapi import ConformingResponses
from serving.schemas import (
    ActionIn,
    ActionRecorded,
    ApplicantDocument,
    ApplicantIn,
    ApplicantProfile,
    BatchIn,
    BatchItem,
    BatchOut,
    ClientMatch,
    ClientView,
    LimitDecisionOut,
    Reason,
    ReloadIn,
    ScoreDocument,
    ScoreIn,
    SearchIn,
    SearchOut,
    Statement,
    TradeReferenceIn,
    ViewIn,
)

UI_DIR = Path(__file__).parent / "ui"
# The action each endpoint's role must allow (`serving.auth.ROLES`)
ACTIONS = {
    "/score": "score",
    "/score_applicant": "score",
    "/score_batch": "score_batch",
    "/search_clients": "score",
    "/client_view": "score",
    "/reload": "reload",
    "/record_action": "act",
}
KNOWN_PATHS = ("/", "/docs.json", "/livez", "/readyz", "/healthz", "/metrics", "/ui")
KEYS = KeyRing()  # this worker's keys: read at start, when the key file changes, on /reload
RELOAD_WAIT_S = 120  # the longest a /reload waits for this worker to finish following another
# after a reload, how long the ledger copy in use before stays held (requests still reading it)
COPY_GRACE_S = float(os.environ.get("CREDITGUARD_COPY_GRACE_S", "60"))
METRICS = RequestMetrics()
log = logging.getLogger("creditguard.service")


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


class _OneLine(logging.Filter):
    """BentoML logs every refused request (4xx) with its 29-line traceback at ERROR; such a
    refusal is the client's mistake, not the service's: one line at WARNING instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = getattr(getattr(exc, "error_code", None), "value", None)
        if isinstance(exc, ValidationError) or (isinstance(status, int) and status < 500):
            record.msg = f"{record.getMessage()}: {status or 400} {str(exc).splitlines()[0]}"
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


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
        country_risk=str(scores.country_risk[i]),
        transfer_risk=bool(scores.transfer_risk[i]),
        current_terms=str(scores.terms.current[i]),
        recommended_terms=str(scores.terms.text[i]),
        terms_rule=str(scores.terms.rule[i]),
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
    """What a reload swaps at once: the champions, the nightly runs' history, the ledger (read
    a client at a time) and the latest run's clients prepared for the champions."""

    scorer: Scorer
    history: RunHistory
    ledger: OnlineLedger
    store: OfflineStore | None  # the latest nightly run (None: no run yet)
    run: Path | None  # its folder
    stamp: float  # when it was loaded (workers follow a newer reload, `_follow`)


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
    # BentoML labels its metrics by the raw request path: 300 random paths grew /metrics from
    # 70 KB to 1.2 MB. `serving.metrics` counts them under one label instead.
    metrics={"enabled": False},
)
class CreditGuard:
    """Scores clients of the configured ledger with the champion models."""

    def __init__(self) -> None:
        for name in ("bentoml._internal.server.http_app", "bentoml.serve"):
            logging.getLogger(name).addFilter(_OneLine())
        KEYS.reload()  # bad keys stop the start here, with the reason
        self.audit = AuditLog(audit_path())
        self.ledger_dir = Path(os.environ.get("CREDITGUARD_LEDGER", DEFAULT_LEDGER))
        self.runs = Path(os.environ.get("CREDITGUARD_RUNS", DEFAULT_RUNS))
        self.cache = cache_root()
        # CREDITGUARD_FOLLOW_LATEST=1: a new nightly run (the runs root's `latest` moved) is
        # loaded as a reload would, without one
        self.follow_latest = os.environ.get("CREDITGUARD_FOLLOW_LATEST", "0") == "1"
        # every worker follows a reload made by any of them (see `_follow`)
        self.reload_stamp = audit_path().parent / "reload.json"
        self.lock = threading.Lock()
        self.reloading = threading.Lock()
        self.following = False  # the reload running is this worker following another's
        self.loaded = self._load()
        _settle_heap()

    def _load(self) -> _Loaded:
        """The champions, the runs' history, the ledger's clients and the latest nightly run
        as the offline store (a request on its day takes its client's prepared row: no pandas
        per request, no feature built at start)."""
        scorer = Scorer.from_registry()
        history = RunHistory.load(self.runs)
        ledger = OnlineLedger(self.ledger_dir, self.cache)
        run = history.latest()
        store = None
        if run is not None and scored_ledger(run, ledger.files, ledger.extracted_on):
            store = OfflineStore.open(run, scorer, history, self.cache / "offline")
        elif run is not None:
            log.warning("the latest run %s scored another ledger: every request is built", run)
        if store is not None and store.index:  # compile the trees now, not on a request
            rows, before = store.take([0])
            scorer.score_rows(rows, history=before)
        return _Loaded(scorer, history, ledger, store, run, time.time())

    @property
    def ledger(self) -> OnlineLedger:
        return self._current().ledger

    def _current(self) -> _Loaded:
        self._follow()
        with self.lock:
            return self.loaded

    def _follow(self) -> None:
        """Another worker reloaded (its stamp is newer than what this one holds): reload here
        too, beside the models in use, in the background; requests keep the old ones until the
        swap."""
        try:
            stamp = self.reload_stamp.stat().st_mtime
        except OSError:
            stamp = 0.0
        held = self.loaded.run.resolve() if self.loaded.run is not None else None
        moved = self.follow_latest and self._latest() != held
        if (stamp <= self.loaded.stamp and not moved) or not self.reloading.acquire(blocking=False):
            return

        def reload() -> None:
            self.following = True
            try:
                try:
                    KEYS.reload()
                except KeyConfigError as exc:  # the reloading worker refused them: keep ours
                    log.warning("keys not reloaded: %s", exc)
                self._swap(self._load())
            except Exception:
                log.exception("following a reload failed; the models in use stay")
            finally:
                self.following = False
                self.reloading.release()

        threading.Thread(target=reload, name="creditguard-reload", daemon=True).start()

    def _latest(self) -> Path | None:
        """The run the runs root's `latest` points at (None: none)."""
        pointer = self.runs / LATEST
        return pointer.resolve() if pointer.exists() else None

    def _swap(self, fresh: _Loaded) -> None:
        with self.lock:
            old, self.loaded = self.loaded, fresh
        # the old ledger's copy may be removed once requests still reading it are done
        # (they are answered within the 60 s traffic timeout)
        if old.ledger is not fresh.ledger:
            release = threading.Timer(COPY_GRACE_S, old.ledger.release)
            release.daemon = True
            release.start()
        gc.unfreeze()  # the old champions become garbage; one full collection, then settle again
        _settle_heap()

    def _score(
        self,
        client_ids: list[str],
        day: pd.Timestamp,
        requested: np.ndarray | None = None,
        reasons: bool = True,
    ) -> tuple[Scorer, ClientRows, Scores]:
        """These clients scored on `day` (every one onboarded before it): their rows taken from
        the default-day table, or built by the online path; the decision PD continues the latest
        nightly run before `day`."""
        loaded = self._current()
        scorer = loaded.scorer
        at = loaded.store.rows_of(client_ids, day) if loaded.store is not None else None
        if at is not None:
            rows, history = loaded.store.take(at)  # type: ignore[union-attr]
        else:
            rows = scorer.prepare(loaded.ledger.batch_features(client_ids, day))
            history = History.of(loaded.history.before(day), rows.client_id, rows.as_of)
        scores = scorer.score_rows(
            rows,
            history=history,
            current_limits=loaded.ledger.current_limits(rows.client_id),
            requested=requested,
            reasons=reasons,
        )
        return scorer, rows, scores

    def _authorize(self, ctx: bentoml.Context, action: str) -> str:
        """The key id for the audit log (the guard has already refused a wrong key)."""
        status, detail = KEYS.check(ctx.request.headers.get("authorization"), action)
        if status:
            raise ApiError(HTTPStatus(status), detail)
        return detail

    def _as_of(self, as_of: dt.date | None) -> pd.Timestamp:
        """The scoring day: given, or the day after the extraction; refused outside the ledger's
        dates (before its first record, after the day after its extraction)."""
        first, last = self.ledger.first_day, self.ledger.default_day
        day = pd.Timestamp(as_of) if as_of else last
        if not first <= day <= last:
            raise ApiError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"as_of {day.date()} is outside the ledger's dates ({first.date()} to "
                f"{last.date()})",
            )
        return day

    def _onboarded(self, client_id: str, day: pd.Timestamp) -> str | None:
        """Why this client has no score on `day` (None: it has one)."""
        if client_id not in self.ledger.clients:
            return f"client_id {client_id!r} is not in the ledger"
        if not self.ledger.onboarded_before(client_id, day):
            return f"client {client_id!r} was not yet onboarded on {day.date()}"
        return None

    @bentoml.api(input_spec=ScoreIn)
    def score(
        self,
        ctx: bentoml.Context,
        client_id: str,
        as_of: dt.date | None = None,
        requested_limit: float | None = None,
    ) -> ScoreDocument:
        """Status, PDs, grade, reasons in words, expected loss, limits and, when asked, a decision
        on a requested limit."""
        key_id = self._authorize(ctx, "score")
        if client_id not in self.ledger.clients:
            raise ApiError(HTTPStatus.NOT_FOUND, f"client_id {client_id!r} is not in the ledger")
        day = self._as_of(as_of)
        missing = self._onboarded(client_id, day)
        if missing:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, missing)
        requested = np.array([requested_limit if requested_limit is not None else np.nan])
        scorer, rows, scores = self._score([client_id], day, requested)
        doc = _document(scorer, rows, scores, 0)
        self.audit.append(key_id=key_id, endpoint="score", doc=doc.model_dump(mode="json"))
        return doc

    @bentoml.api(input_spec=ApplicantIn)
    def score_applicant(
        self,
        ctx: bentoml.Context,
        profile: ApplicantProfile,
        financials: list[Statement] | None = None,
        trade_references: list[TradeReferenceIn] | None = None,
        expected_monthly_purchases: float | None = None,
        requested_limit: float | None = None,
        as_of: dt.date | None = None,
    ) -> ApplicantDocument:
        """A prospective client not in the ledger: scored from its profile and financial
        statements (a thin file by definition), with what its trade references say."""
        key_id = self._authorize(ctx, "score")
        day = self._as_of(as_of)
        try:
            ledger = applicant_ledger(
                profile.model_dump(),
                [s.model_dump() for s in financials or []],
                day,
            )
        except LedgerValidationError as exc:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, _applicant_violations(exc)) from None
        features = build_client_features(ledger, as_of_dates=[day])
        features["expected_monthly_purchases"] = (
            expected_monthly_purchases if expected_monthly_purchases is not None else float("nan")
        )
        requested = np.array([requested_limit if requested_limit is not None else np.nan])
        scorer = self._current().scorer
        rows = scorer.prepare(features)
        scores = scorer.score_rows(rows, requested=requested)
        refs = [TradeReference(**r.model_dump()) for r in trade_references or []]
        scores.limit_decision[0], findings = apply_trade_references(scores.limit_decision[0], refs)
        scores.data_sufficiency[0] = "thin file: a prospective client, no payment history with us"
        doc = ApplicantDocument(
            **_document(scorer, rows, scores, 0).model_dump(), trade_reference_findings=findings
        )
        audited = doc.model_dump(mode="json") | {"client_id": f"applicant:{profile.name}"}
        self.audit.append(key_id=key_id, endpoint="score_applicant", doc=audited)
        return doc

    @bentoml.api(input_spec=BatchIn)
    def score_batch(
        self, ctx: bentoml.Context, client_ids: list[str], as_of: dt.date | None = None
    ) -> BatchOut:
        """Many clients in one vectorised call of the scoring core: one answer per requested
        id, in request order, a score or why there is none."""
        key_id = self._authorize(ctx, "score_batch")
        day = self._as_of(as_of)
        why = {c: self._onboarded(c, day) for c in dict.fromkeys(client_ids)}
        ready = sorted(c for c, reason in why.items() if reason is None)
        docs: dict[str, ScoreDocument] = {}
        if ready:
            scorer, rows, scores = self._score(ready, day)
            for i in range(len(rows)):
                doc = _document(scorer, rows, scores, i)
                docs[doc.client_id] = doc
                self.audit.append(
                    key_id=key_id, endpoint="score_batch", doc=doc.model_dump(mode="json")
                )
        return BatchOut(
            results=[BatchItem(client_id=c, score=docs.get(c), error=why[c]) for c in client_ids]
        )

    @bentoml.api(input_spec=SearchIn)
    def search_clients(self, ctx: bentoml.Context, query: str) -> SearchOut:
        """Clients whose id or name contains the query (case-insensitive)."""
        self._authorize(ctx, "score")
        if not query.strip():
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "query must not be blank")
        return SearchOut(matches=[ClientMatch(**m) for m in search(self.ledger.table, query)])

    @bentoml.api(input_spec=ViewIn)
    def client_view(
        self, ctx: bentoml.Context, client_id: str, as_of: dt.date | None = None
    ) -> ClientView:
        """The client page: score and reasons as a waterfall, payment history, aging, financial
        highlights, early warnings, collections and limits. Looking is not deciding: nothing is
        audited."""
        self._authorize(ctx, "score")
        if client_id not in self.ledger.clients:
            raise ApiError(HTTPStatus.NOT_FOUND, f"client_id {client_id!r} is not in the ledger")
        day = self._as_of(as_of)
        missing = self._onboarded(client_id, day)
        if missing:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, missing)
        loaded = self._current()
        view = client_view(loaded.ledger.client(client_id), loaded.scorer, day, loaded.history)
        scores: Scores = view.pop("scores")
        rows: ClientRows = view.pop("rows")
        return ClientView(score=_document(loaded.scorer, rows, scores, 0), **view)

    @bentoml.api(input_spec=ActionIn)
    def record_action(
        self,
        ctx: bentoml.Context,
        client_id: str,
        action: str,
        on: dt.date,
        invoice_id: str | None = None,
        amount: float | None = None,
        note: str | None = None,
    ) -> ActionRecorded:
        """Record what was done (a letter sent, a promise to pay, the insurer notified, ...) in
        the ledger's action log, checked against the contract, and in the audit log with the key
        that recorded it. The deadlines, the worklist and the letters read it."""
        key_id = self._authorize(ctx, "act")
        if client_id not in self.ledger.clients:
            raise ApiError(HTTPStatus.NOT_FOUND, f"client_id {client_id!r} is not in the ledger")
        try:
            row = record_action(
                self.ledger.folder,
                client_id=client_id,
                action=action,
                on=on.isoformat(),
                invoice_id=invoice_id,
                amount=amount,
                note=note,
            )
        except InputError as exc:
            raise ApiError(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc)) from None
        replayed = bool(row.pop("replayed"))
        if not replayed:
            self.ledger.add_action(pd.DataFrame([row]).astype(empty_table("actions").dtypes))
        self.audit.append_action(key_id=key_id, row=row)
        return ActionRecorded(
            client_id=client_id,
            invoice_id=invoice_id,
            action=action,
            on=row["on"],
            amount=amount,
            note=note,
            replayed=replayed,
        )

    @bentoml.api(input_spec=ReloadIn)
    def reload(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Read the keys, the current champions and the runs again without a restart (admin):
        loaded beside the ones in use and swapped, one reload at a time; the other workers
        follow. Keys that cannot be read are refused (4xx) and the keys in force stay. Answers
        the champions' versions and the nightly run now answering its day (null: none)."""
        self._authorize(ctx, "reload")
        # A reload asked of this worker while another runs is refused (409); while this worker
        # only follows another's reload in the background, it waits for that instead (a 409
        # would refuse a reload nobody else asked for of it).
        if not self.reloading.acquire(blocking=False) and not (
            self.following and self.reloading.acquire(timeout=RELOAD_WAIT_S)
        ):
            raise ApiError(HTTPStatus.CONFLICT, "a reload is already running; try again shortly")
        try:
            with _exclusive(self.reload_stamp.with_suffix(".lock")) as got:
                if not got:
                    raise ApiError(
                        HTTPStatus.CONFLICT, "a reload is already running; try again shortly"
                    )
                try:
                    KEYS.reload()
                except KeyConfigError as exc:
                    raise ApiError(
                        HTTPStatus.BAD_REQUEST, f"keys not reloaded, the old ones stay: {exc}"
                    ) from None
                fresh = self._load()
                self.reload_stamp.parent.mkdir(parents=True, exist_ok=True)
                self.reload_stamp.write_text(json.dumps({"versions": fresh.scorer.versions}))
                # this worker holds what the stamp announces: it must not follow it again
                self._swap(replace(fresh, stamp=self.reload_stamp.stat().st_mtime))
        finally:
            self.reloading.release()
        return {"model_versions": fresh.scorer.versions, "nightly_run": _day(fresh)}


def _day(loaded: _Loaded) -> str | None:
    """The day of the nightly run whose store answers (None: no run of this ledger)."""
    return str(loaded.store.day.date()) if loaded.store is not None else None


class _exclusive:
    """An flock on `path` across worker processes, not waited for (`got` says whether held)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.path.open("a")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        self.handle.close()  # closing releases the lock


# The credit officer's page: static files that ship with the project (no CDN), calling the API above
CreditGuard.mount_asgi_app(StaticFiles(directory=UI_DIR, html=True), path="/ui")  # type: ignore[attr-defined]


def _explain_auth(path: str, authorization: str | None) -> str:
    """Why a request was refused (BentoML itself only says 'Authorization error')."""
    status, detail = KEYS.check(authorization, ACTIONS.get(path, "score"))
    return detail if status else "not authorised"


# The front door (auth before the body, size limit, headers, bounded metrics), then BentoML's
# responses made to match its own OpenAPI document (see serving/openapi.py)
CreditGuard.add_asgi_middleware(  # type: ignore[attr-defined]
    Guard,
    keys=KEYS,
    actions=ACTIONS,
    known=KNOWN_PATHS,
    metrics=METRICS.record,
    exposition=exposition,
)
CreditGuard.add_asgi_middleware(ConformingResponses, explain_auth=_explain_auth)  # type: ignore[attr-defined]
