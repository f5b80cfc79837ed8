"""The scoring core, shared by the HTTP service, batch scoring and Spark: client features in,
status, PDs, grade, reasons, expected loss and limit decisions out, as typed `Scores`.

Status comes first (`scoring.status`): a client in default is grade D with PD 1, no limit and no
model explanation; the model's PD is read only for the others. The decision PD smooths the
point-in-time PD over the previous runs (`scoring.grades`) and drives grade, limit and warnings;
the point-in-time PD drives expected loss. Both models read one matrix built once per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle, empty_matrix
from scoring.country import country_cap, country_risk_label, transfer_risk
from scoring.grades import decision_grade, decision_pd
from scoring.insurance import INSURANCE_FILE, InsurancePolicy
from scoring.limits import (
    ClientExposure,
    LimitDecision,
    decide_limit,
    over_limit,
    recommend_limit,
    recommend_limits,
)
from scoring.policy import CreditPolicy
from scoring.reasons import Reason, top_reasons
from scoring.status import Status, client_status
from scoring.store import (
    CHAMPION,
    DEFAULT_MODEL,
    LATE_MODEL,
    TIMING_MODEL,
    load_bundle,
    resolve_version,
)
from scoring.terms import Economics, Terms, TermsPolicy

TYPICAL_TERMS_DAYS = 30.0
TOP_REASONS = 3  # risk reasons shown in tables
DEFAULT_GRADE = "D"  # how documents show the grade of a client in default
HISTORY_COLUMNS = ("client_id", "as_of", "decision_pd", "grade", "max_days_past_due")


@dataclass(frozen=True)
class History:
    """What the previous run said of each client: decision PD (NaN: no history), grade (0: none
    or D), the most days past due, and the days since that run."""

    decision_pd: np.ndarray
    grade: np.ndarray
    max_days_past_due: np.ndarray
    days_since: np.ndarray

    @classmethod
    def none(cls, n: int) -> History:
        nan = np.full(n, np.nan)
        return cls(nan, np.zeros(n, dtype=np.int64), nan.copy(), nan.copy())

    @classmethod
    def of(cls, previous: pd.DataFrame | None, client_id: np.ndarray, as_of: np.ndarray) -> History:
        """The rows of a previous run's clients table (client_id, as_of, decision_pd, grade) for
        these clients; a client the run did not score has no history."""
        n = len(client_id)
        if previous is None or previous.empty or not n:
            return cls.none(n)
        prev = previous.drop_duplicates("client_id", keep="last").set_index("client_id")
        at = prev.index.get_indexer(pd.Index(client_id, dtype=object))
        found = at >= 0
        pick = np.where(found, at, 0)
        pd_ = np.where(found, prev["decision_pd"].to_numpy(dtype="float64")[pick], np.nan)
        grade = np.where(
            found, pd.to_numeric(prev["grade"], errors="coerce").fillna(0).to_numpy()[pick], 0
        ).astype(np.int64)
        dpd = np.where(found, prev["max_days_past_due"].to_numpy(dtype="float64")[pick], np.nan)
        then = pd.DatetimeIndex(prev["as_of"]).to_numpy()[pick]
        days = (pd.DatetimeIndex(as_of) - pd.DatetimeIndex(then)).days.to_numpy(dtype="float64")
        return cls(pd_, grade, dpd, np.where(found, days, np.nan))

    def take(self, at: np.ndarray) -> History:
        return History(
            self.decision_pd[at], self.grade[at], self.max_days_past_due[at], self.days_since[at]
        )


@dataclass
class Scores:
    """The scoring core's answer for a batch of clients, column by column (row i of each array
    or list is client i). `grade` is 1..10, 0 for a client in default (grade D)."""

    client_id: np.ndarray
    as_of: np.ndarray
    status: np.ndarray
    status_reason: np.ndarray
    pd_12m: np.ndarray  # point in time; drives expected loss (1 in default)
    decision_pd: np.ndarray  # smoothed over runs; drives grade, limit and warnings
    grade: np.ndarray
    late_payment_probability: np.ndarray
    raw_score: np.ndarray
    thin_file: np.ndarray
    data_sufficiency: np.ndarray
    open_balance: np.ndarray
    overdue_balance: np.ndarray
    max_days_past_due: np.ndarray
    usual_terms_days: np.ndarray
    monthly_purchases: np.ndarray  # usual monthly purchases (NaN: unknown)
    insolvent: np.ndarray
    equity: np.ndarray  # the latest statement's highlights (NaN: none)
    country_risk: np.ndarray  # OECD class '0'..'7' or 'unrated' (`features.country_risk`)
    transfer_risk: np.ndarray
    revenue_growth: np.ndarray
    current_ratio: np.ndarray
    statement_age_days: np.ndarray
    current_limit: np.ndarray  # NaN: none granted
    recommended_limit: np.ndarray
    over_limit: np.ndarray
    over_limit_amount: np.ndarray
    expected_loss: np.ndarray
    terms: Terms  # recommended payment terms and the rule that fired, beside the current ones
    limit_decision: list[LimitDecision | None]
    risk_reasons: list[list[Reason]]
    strengths: list[list[Reason]]
    expected_value: np.ndarray  # the model's average raw score (the waterfall's first step)
    model_versions: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.client_id)

    def grade_label(self, i: int) -> str:
        return DEFAULT_GRADE if self.grade[i] == 0 else str(int(self.grade[i]))


@dataclass
class Scorer:
    """The champions (or pinned versions) of both models and the credit policy."""

    default: ModelBundle
    late: ModelBundle
    policy: CreditPolicy
    versions: dict[str, str] = field(default_factory=dict)
    # the payment-timing model (`scoring.timing`), for the cash forecast; None: not registered
    timing: ModelBundle | None = None
    terms: TermsPolicy = field(default_factory=TermsPolicy.load)  # payment terms by risk
    # the trade credit insurance policy (`scoring.insurance`); None: the receivables are not insured
    insurance: InsurancePolicy | None = None

    @classmethod
    def from_registry(cls, *, default: str = CHAMPION, late: str = CHAMPION) -> Scorer:
        """Load `models:/creditguard-default@champion` and `creditguard-late@champion` (or
        versions), and the timing model's champion when one is registered."""
        default_version = resolve_version(DEFAULT_MODEL, default)
        late_version = resolve_version(LATE_MODEL, late)
        versions = {DEFAULT_MODEL: default_version, LATE_MODEL: late_version}
        from mlflow.exceptions import MlflowException

        timing = None
        try:
            versions[TIMING_MODEL] = resolve_version(TIMING_MODEL, CHAMPION)
        except MlflowException:  # none registered: no cash forecast
            pass
        else:
            timing = load_bundle(TIMING_MODEL, versions[TIMING_MODEL])
        return cls(
            default=load_bundle(DEFAULT_MODEL, default_version),
            late=load_bundle(LATE_MODEL, late_version),
            policy=CreditPolicy.load(),
            versions=versions,
            timing=timing,
            terms=TermsPolicy.load(),
            insurance=InsurancePolicy.load() if INSURANCE_FILE.exists() else None,
        )

    def to_plain(self) -> dict[str, Any]:
        """The scorer as plain data (to ship to Spark executors without pickling a model)."""
        return {
            "default": {"bundle": self.default.to_dict(), "model": self.default.model_string},
            "late": {"bundle": self.late.to_dict(), "model": self.late.model_string},
            "timing": (
                {"bundle": self.timing.to_dict(), "model": self.timing.model_string}
                if self.timing is not None
                else None
            ),
            "policy": self.policy.to_dict(),
            "terms": self.terms.to_dict(),
            "insurance": self.insurance.to_dict() if self.insurance is not None else None,
            "versions": dict(self.versions),
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Scorer:
        def bundle(part: dict[str, Any]) -> ModelBundle:
            return ModelBundle.from_dict(part["bundle"], part["model"])

        return cls(
            default=bundle(data["default"]),
            late=bundle(data["late"]),
            policy=CreditPolicy.from_dict(data["policy"]),
            versions=dict(data["versions"]),
            timing=bundle(data["timing"]) if data.get("timing") else None,
            terms=TermsPolicy.from_dict(data["terms"]),
            insurance=(
                InsurancePolicy.from_dict(data["insurance"]) if data.get("insurance") else None
            ),
        )

    def typical_invoices(self, clients: pd.DataFrame) -> dict[str, np.ndarray]:
        """A typical new invoice per client: its usual amount, 30-day terms, issued at `as_of`;
        the invoice's own columns, to go with the client's features."""
        count = clients["invoice_count_365"].to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            usual = np.where(
                count > 0, clients["invoice_amount_365"].to_numpy(dtype="float64") / count, np.nan
            )
        currencies = self.late.categories.get("invoice_currency", [])
        return {
            "invoice_amount": usual,
            "invoice_amount_to_usual": np.where(np.isfinite(usual), 1.0, np.nan),
            "invoice_terms_days": np.full(len(clients), TYPICAL_TERMS_DAYS),
            "invoice_issue_month": pd.DatetimeIndex(clients["as_of"]).month.to_numpy(
                dtype="float64"
            ),
            "invoice_currency": np.full(
                len(clients), currencies[0] if currencies else None, dtype=object
            ),
        }

    def prepare(self, clients: pd.DataFrame) -> ClientRows:
        """What scoring reads of a client feature table, converted once (see `ClientRows`)."""
        # One matrix for both models: the default model's columns, then the late model's
        # others (its invoice fields, and categories, whose codes are its own); the late model
        # reads its features through `late_columns`, so the client columns are built once.
        own = self.default.features
        categories = self.default.categories.keys() | self.late.categories.keys()
        at = {name: j for j, name in enumerate(own) if name not in categories}
        extra = [name for name in self.late.features if name not in at]
        x = empty_matrix(len(clients), len(own) + len(extra))
        self.default.matrix(clients, out=x[:, : len(own)])
        self.late.matrix(
            clients, self.typical_invoices(clients), features=extra, out=x[:, len(own) :]
        )
        at.update((name, len(own) + i) for i, name in enumerate(extra))
        status, reason = client_status(clients, self.policy.status)
        return ClientRows(
            client_id=clients["client_id"].to_numpy(dtype=object),
            as_of=clients["as_of"].to_numpy(),
            x_default=x[:, : len(own)],
            x_late=x,
            late_columns=np.array([at[name] for name in self.late.features], dtype="int64"),
            status=status,
            status_reason=reason,
            standing=_standing(clients, self.policy),
            labels={name: clients[name].to_numpy(dtype=object) for name in self.default.categories},
        )

    def score(
        self,
        clients: pd.DataFrame,
        *,
        history: pd.DataFrame | None = None,
        current_limits: np.ndarray | None = None,
        requested_limits: np.ndarray | None = None,
        reasons: bool = True,
        top: int = TOP_REASONS,
        threads: int = 1,
    ) -> Scores:
        """Every client feature row, vectorised: the same numbers online and in batch.
        `history`: the previous run's clients table; `current_limits`: each client's limit
        today (NaN: none); `requested_limits`: a limit to decide on (NaN: none)."""
        rows = self.prepare(clients)
        return self.score_rows(
            rows,
            history=History.of(history, rows.client_id, rows.as_of),
            current_limits=current_limits,
            requested=requested_limits,
            reasons=reasons,
            top=top,
            threads=threads,
        )

    def score_rows(
        self,
        rows: ClientRows,
        *,
        history: History | None = None,
        current_limits: np.ndarray | None = None,
        requested: np.ndarray | None = None,
        reasons: bool = True,
        top: int = TOP_REASONS,
        threads: int = 1,
    ) -> Scores:
        """`score` on prepared rows."""
        n = len(rows)
        history = history if history is not None else History.none(n)
        policy, limits = self.policy, self.policy.limits
        defaulted = rows.status == Status.IN_DEFAULT.value
        x = rows.x_default
        raw = self.default.raw_score(x, threads=threads)  # LightGBM's own number, reasons or not
        contrib = self.default.contributions(x, threads=threads) if reasons else None
        pit = np.where(defaulted, 1.0, self.default.probability(raw))
        hard = _hard_events(rows.standing, history, policy.grades.hard_event_dpd) | defaulted
        smoothed = decision_pd(pit, history.decision_pd, history.days_since, hard, policy.grades)
        grade = decision_grade(
            smoothed, history.grade, hard, self.default.master_scale, policy.grades
        )
        grade = np.where(defaulted, 0, grade)
        late_p = self.late.probability(
            self.late.raw_score(rows.x_late, threads=threads, columns=rows.late_columns)
        )
        standing = rows.standing
        recommended = recommend_limits(
            limits,
            pd_=smoothed,
            grade=np.maximum(grade, 1),
            status=rows.status,
            **{k: standing[k] for k in _POLICY_VIEW},
        )
        current = (
            np.asarray(current_limits, dtype="float64")
            if current_limits is not None
            else np.full(n, np.nan)
        )
        balance = standing["open_balance"]
        against = np.where(np.isfinite(current), current, recommended)
        over = over_limit(limits, balance, against)
        ead = np.where(
            defaulted, balance, balance + limits.ccf * np.maximum(recommended - balance, 0.0)
        )
        thin = standing["thin_file"]
        scores = Scores(
            client_id=rows.client_id,
            as_of=rows.as_of,
            status=rows.status,
            status_reason=rows.status_reason,
            pd_12m=pit,
            decision_pd=smoothed,
            grade=grade.astype(np.int64),
            late_payment_probability=np.where(defaulted, 1.0, late_p),
            raw_score=raw,
            thin_file=thin,
            data_sufficiency=np.where(
                thin, "thin file: too little payment history for a full profile", "full"
            ),
            open_balance=balance,
            overdue_balance=standing["overdue_balance"],
            max_days_past_due=standing["max_days_past_due"],
            usual_terms_days=standing["usual_terms_days"],
            monthly_purchases=standing["monthly_volume"],
            insolvent=standing["insolvent"],
            equity=standing["equity"],
            country_risk=country_risk_label(standing["country_class"]),
            transfer_risk=standing["transfer_risk"],
            revenue_growth=standing["revenue_growth"],
            current_ratio=standing["current_ratio"],
            statement_age_days=standing["statement_age_days"],
            current_limit=current,
            recommended_limit=recommended,
            over_limit=over,
            over_limit_amount=np.where(over, balance - against, 0.0),
            expected_loss=pit * limits.lgd * ead,
            terms=self.terms.recommend(
                rows.status,
                np.where(defaulted, 0, grade).astype("float64"),
                standing["country_class"],
                standing["usual_terms_days"],
                Economics(
                    pd_=smoothed,
                    monthly_volume=standing["monthly_volume"],
                    limit=recommended,
                    margin=limits.gross_margin,
                    lgd=limits.lgd,
                    grace_days=limits.grace_days,
                ),
            ),
            limit_decision=[None] * n,
            risk_reasons=[[] for _ in range(n)],
            strengths=[[] for _ in range(n)],
            expected_value=contrib[:, -1] if contrib is not None else np.full(n, np.nan),
            model_versions=dict(self.versions),
        )
        asked = (
            np.flatnonzero(np.isfinite(requested)) if requested is not None else np.zeros(0, int)
        )
        for i in asked.tolist():  # only rows with a request pay for the rule-by-rule decision
            assert requested is not None
            scores.limit_decision[i] = decide_limit(
                limits,
                requested=float(requested[i]),
                pd_=float(smoothed[i]),
                grade=int(max(grade[i], 1)),
                client=self.exposure(rows, i),
                # the batch decides on the limit in force: above the recommendation, a stepped cut
                current=bool(requested[i] == current[i]),
            )
        if contrib is not None:
            names, typical = self.default.features, self.default.metadata.get("typical", {})
            for i in np.flatnonzero(~defaulted).tolist():  # in default: its status explains it
                scores.risk_reasons[i], scores.strengths[i] = top_reasons(
                    self.default.catalog,
                    names,
                    partial(rows.value, self.default, i),
                    contrib[i, :-1],
                    top=top,
                    typical=typical,  # type: ignore[arg-type]
                )
        return scores

    def exposure(self, rows: ClientRows, i: int) -> ClientExposure:
        """Row i as the limit policy sees it."""
        s = rows.standing
        return ClientExposure(
            **{k: float(s[k][i]) for k in _POLICY_VIEW}, status=str(rows.status[i])
        )

    def limit_rule(self, scores: Scores, rows: ClientRows, i: int) -> str:
        """The rule that set row i's recommended limit, in words."""
        rec = recommend_limit(
            self.policy.limits,
            pd_=float(scores.decision_pd[i]),
            grade=int(max(scores.grade[i], 1)),
            client=self.exposure(rows, i),
        )
        return "; ".join(rec.rules)


# the `ClientExposure` fields the limit policy reads, besides status
_POLICY_VIEW = (
    "monthly_volume",
    "usual_terms_days",
    "open_balance",
    "revenue",
    "equity",
    "tenure_days",
    "on_time_months",
    "country_class",
    "country_cap",
    "overdue_balance",
    "max_days_past_due",
    "statement_age_days",
)


def client_table(scores: Scores) -> pd.DataFrame:
    """Scores as a run's client table: one flat row per client, reasons as their words, the
    grade empty for a client in default (its status says so), the decision on its current
    limit."""
    decisions = scores.limit_decision
    out = pd.DataFrame(
        {
            "client_id": scores.client_id,
            "as_of": scores.as_of,
            "status": scores.status,
            "status_reason": scores.status_reason,
            "pd_12m": scores.pd_12m,
            "decision_pd": scores.decision_pd,
            "grade": pd.Series(scores.grade, dtype="Int64").where(scores.grade > 0).array,
            "late_payment_probability": scores.late_payment_probability,
            "expected_loss": scores.expected_loss,
            "open_balance": scores.open_balance,
            "overdue_balance": scores.overdue_balance,
            "max_days_past_due": scores.max_days_past_due,
            "usual_terms_days": scores.usual_terms_days,
            "monthly_purchases": scores.monthly_purchases,
            "insolvent": scores.insolvent,
            "equity": scores.equity,
            "country_risk": scores.country_risk,
            "transfer_risk": scores.transfer_risk,
            "revenue_growth": scores.revenue_growth,
            "current_ratio": scores.current_ratio,
            "statement_age_days": scores.statement_age_days,
            "current_limit": scores.current_limit,
            "recommended_limit": scores.recommended_limit,
            "over_limit": scores.over_limit,
            "over_limit_amount": scores.over_limit_amount,
            "thin_file": scores.thin_file,
            "data_sufficiency": scores.data_sufficiency,
            "limit_decision": [d.decision if d else "no current limit" for d in decisions],
            "limit_decision_amount": [d.approved_amount if d else np.nan for d in decisions],
            "limit_rules": ["; ".join(d.rules) if d else "" for d in decisions],
            "current_terms": scores.terms.current,
            "recommended_terms": scores.terms.text,
            "terms_kind": scores.terms.kind,
            "terms_rule": scores.terms.rule,
        }
    )
    for i in range(TOP_REASONS):
        out[f"reason_{i + 1}"] = [r[i].text if len(r) > i else "" for r in scores.risk_reasons]
    out["strength_1"] = [s[0].text if s else "" for s in scores.strengths]
    out["model_default_version"] = scores.model_versions.get(DEFAULT_MODEL, "")
    out["model_late_version"] = scores.model_versions.get(LATE_MODEL, "")
    return out


@dataclass(frozen=True)
class ClientRows:
    """What the scoring core reads of a client feature table: both models' matrices (the late
    model's with a typical new invoice: `x_late`, whose first columns are `x_default`, read
    through `late_columns`), each client's status and standing (what the policy reads), and
    the category labels the reasons show. `Scorer.prepare` builds it once per table; the service
    prepares its default-day table at start and a request takes its client's row (converting a
    one-row frame costs milliseconds of pandas per request, taking a row microseconds)."""

    client_id: np.ndarray
    as_of: np.ndarray
    x_default: np.ndarray
    x_late: np.ndarray
    late_columns: np.ndarray  # the late model's feature j is column late_columns[j] of x_late
    status: np.ndarray
    status_reason: np.ndarray
    standing: dict[str, np.ndarray]  # `_standing`: the policy's view and a few figures
    labels: dict[str, np.ndarray]  # the default model's categorical features, as given

    def __len__(self) -> int:
        return len(self.client_id)

    def take(self, index: list[int] | np.ndarray) -> ClientRows:
        at = np.asarray(index, dtype=np.intp)
        return ClientRows(
            client_id=self.client_id[at],
            as_of=self.as_of[at],
            x_default=self.x_default[at],
            x_late=self.x_late[at],
            late_columns=self.late_columns,
            status=self.status[at],
            status_reason=self.status_reason[at],
            standing={k: v[at] for k, v in self.standing.items()},
            labels={k: v[at] for k, v in self.labels.items()},
        )

    def value(self, bundle: ModelBundle, i: int, j: int) -> object:
        """Row i's value of the default model's feature j: the matrix holds it, except for a
        category, whose label is kept as given (an unseen label is missing to the model)."""
        name = bundle.features[j]
        if name in self.labels:
            return self.labels[name][i]
        return self.x_default[i, j]


def _hard_events(standing: dict[str, np.ndarray], history: History, dpd: int) -> np.ndarray:
    """What moves a grade at once: an invoice newly `dpd` days past due, or a statement with
    negative equity published since the previous run (with no previous run: either, now)."""
    newly_late = (standing["max_days_past_due"] > dpd) & ~(history.max_days_past_due > dpd)
    published = standing["statement_age_days"]
    new_statement = ~(published >= history.days_since)  # NaN history: any statement is new
    negative = np.isfinite(standing["equity"]) & (standing["equity"] < 0) & new_statement
    return newly_late | negative


def _standing(clients: pd.DataFrame, policy: CreditPolicy) -> dict[str, np.ndarray]:
    """The policy's view of each client (`ClientExposure` fields) and the figures the outputs
    show, as arrays."""

    def col(name: str) -> np.ndarray:
        if name not in clients:
            return np.full(len(clients), np.nan)
        return clients[name].to_numpy(dtype="float64")

    tenure = col("tenure_days")
    months = np.minimum(
        np.where(np.isfinite(tenure), np.clip(tenure, 0.0, None) / 30.44, 0.0), 120.0
    )
    late_share = np.where(np.isfinite(col("late_share_365")), col("late_share_365"), 1.0)
    # the months of the last year the client was with us: a new client's volume is not diluted
    covered = np.clip(np.where(np.isfinite(tenure), tenure, 0.0) / 30.44, 1.0, 12.0)
    volume = col("invoice_amount_365") / covered
    expected = col("expected_monthly_purchases")
    # no invoice yet (an applicant, a client onboarded but not yet buying): its own estimate
    none_yet = np.nan_to_num(col("invoice_count_365"), nan=0.0) == 0
    volume = np.where(none_yet & np.isfinite(expected), expected, np.nan_to_num(volume, nan=0.0))
    balance = np.nan_to_num(col("open_balance"), nan=0.0)
    max_dpd = np.nan_to_num(col("max_open_dpd"), nan=0.0)
    equity = col("equity")
    country_class = col("country_risk_class")
    return {
        "country_class": country_class,
        "country_cap": country_cap(country_class, policy.country),
        "transfer_risk": transfer_risk(country_class, policy.country),
        "monthly_volume": volume,
        "usual_terms_days": col("usual_terms_days"),
        "open_balance": balance,
        "revenue": col("revenue"),
        "equity": equity,
        "tenure_days": np.where(np.isfinite(tenure), tenure, 0.0),
        "on_time_months": months * (1.0 - late_share),
        "thin_file": col("thin_file") >= 0.5,
        "overdue_balance": np.nan_to_num(col("overdue_balance"), nan=0.0),
        "max_days_past_due": np.maximum(max_dpd, 0.0),
        "insolvent": np.isfinite(col("insolvency_days")),
        "revenue_growth": col("revenue_growth"),
        "current_ratio": col("current_ratio"),
        "statement_age_days": col("statement_age_days"),
    }
