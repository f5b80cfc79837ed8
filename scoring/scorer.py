"""The scoring core, shared by the HTTP service, batch scoring and Spark: client features in,
PD, late-payment probability, grade, reasons, expected loss and limit decision out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from scoring.bundle import ModelBundle, empty_matrix
from scoring.limits import ClientExposure, LimitPolicy, decide_limit, recommend_limits
from scoring.reasons import top_reasons
from scoring.store import CHAMPION, DEFAULT_MODEL, LATE_MODEL, load_bundle, resolve_version

TYPICAL_TERMS_DAYS = 30.0
TOP_REASONS = 3  # risk reasons shown in tables


@dataclass
class Scorer:
    """The champions (or pinned versions) of both models and the limit policy."""

    default: ModelBundle
    late: ModelBundle
    policy: LimitPolicy
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_registry(cls, *, default: str = CHAMPION, late: str = CHAMPION) -> Scorer:
        """Load `models:/creditguard-default@champion` and `creditguard-late@champion` (or versions)."""
        default_version = resolve_version(DEFAULT_MODEL, default)
        late_version = resolve_version(LATE_MODEL, late)
        return cls(
            default=load_bundle(DEFAULT_MODEL, default_version),
            late=load_bundle(LATE_MODEL, late_version),
            policy=LimitPolicy.load(),
            versions={DEFAULT_MODEL: default_version, LATE_MODEL: late_version},
        )

    def to_plain(self) -> dict[str, Any]:
        """The scorer as plain data (to ship to Spark executors without pickling a model)."""
        return {
            "default": {"bundle": self.default.to_dict(), "model": self.default.model_string},
            "late": {"bundle": self.late.to_dict(), "model": self.late.model_string},
            "policy": asdict(self.policy),
            "versions": dict(self.versions),
        }

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Scorer:
        def bundle(part: dict[str, Any]) -> ModelBundle:
            return ModelBundle.from_dict(part["bundle"], part["model"])

        return cls(
            default=bundle(data["default"]),
            late=bundle(data["late"]),
            policy=LimitPolicy.from_dict(data["policy"]),
            versions=dict(data["versions"]),
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
        return ClientRows(
            client_id=clients["client_id"].to_numpy(dtype=object),
            as_of=clients["as_of"].to_numpy(),
            x_default=x[:, : len(own)],
            x_late=x,
            late_columns=np.array([at[name] for name in self.late.features], dtype="int64"),
            open_balance=clients["open_balance"].to_numpy(dtype="float64"),
            exposure=_exposures(clients),
            labels={name: clients[name].to_numpy(dtype=object) for name in self.default.categories},
        )

    def score(
        self,
        clients: pd.DataFrame,
        *,
        reasons: bool = True,
        top: int = 3,
        requested_limits: pd.Series | None = None,
        threads: int = 1,
    ) -> pd.DataFrame:
        """One row per client feature row, vectorised: the same numbers online and in batch."""
        requested = (
            requested_limits.to_numpy(dtype="float64") if requested_limits is not None else None
        )
        scored = self.score_rows(
            self.prepare(clients), reasons=reasons, top=top, requested=requested, threads=threads
        )
        return pd.DataFrame(scored)

    def score_rows(
        self,
        rows: ClientRows,
        *,
        reasons: bool = True,
        top: int = 3,
        requested: np.ndarray | None = None,
        threads: int = 1,
    ) -> dict[str, Any]:
        """`score` on prepared rows, as columns (one array or list per output column)."""
        x = rows.x_default
        raw = self.default.raw_score(x, threads=threads)  # LightGBM's own number, reasons or not
        if reasons:
            contrib = self.default.contributions(x, threads=threads)
        pd_ = self.default.probability(raw)
        grade = self.default.master_scale.grade(pd_)
        late_p = self.late.probability(
            self.late.raw_score(rows.x_late, threads=threads, columns=rows.late_columns)
        )
        exposure = rows.exposure
        thin = exposure["thin_file"]
        out: dict[str, Any] = {
            "client_id": rows.client_id,
            "as_of": rows.as_of,
            "pd_12m": pd_,
            "grade": grade,
            "late_payment_probability": late_p,
            "raw_score": raw,
            "thin_file": thin,
            "data_sufficiency": np.where(
                thin, "thin file: too little payment history for a full profile", "full"
            ),
            "open_balance": rows.open_balance,
        }
        policy_view = {k: v for k, v in exposure.items() if k != "open_balance"}
        limits = recommend_limits(self.policy, pd_=pd_, grade=grade, **policy_view)
        ead = exposure_at_default(exposure["open_balance"], limits, self.policy.ccf)
        decisions: list[dict[str, Any] | None] = [None] * len(rows)
        asked = (
            np.flatnonzero(np.isfinite(requested)) if requested is not None else np.zeros(0, int)
        )
        for i in asked:  # only rows with a request pay for the rule-by-rule decision and wording
            assert requested is not None
            d = decide_limit(
                self.policy,
                requested=float(requested[i]),
                pd_=float(pd_[i]),
                grade=int(grade[i]),
                client=ClientExposure(**{k: v[i].item() for k, v in exposure.items()}),
            )
            decisions[i] = {
                "requested_amount": float(requested[i]),
                "decision": d.decision,
                "approved_amount": d.approved_amount,
                "rules": d.rules,
            }
        out["recommended_limit"] = limits
        out["expected_loss"] = pd_ * self.policy.lgd * ead
        out["limit_decision"] = decisions
        if reasons:
            names = self.default.features
            risks, strengths = [], []
            for i in range(len(rows)):
                r, s = top_reasons(
                    self.default.catalog,
                    names,
                    partial(rows.value, self.default, i),
                    contrib[i, :-1],
                    top=top,
                )
                risks.append([_reason(x) for x in r])
                strengths.append([_reason(x) for x in s])
            out["risk_reasons"] = risks
            out["strengths"] = strengths
            out["expected_value"] = contrib[:, -1]
        out["model_versions"] = [dict(self.versions)] * len(rows)
        return out


def client_table(scored: pd.DataFrame, current_limits: pd.Series) -> pd.DataFrame:
    """Scored rows as a run's client table: one flat row per client, reasons as their words, the
    decision on each client's current limit (`current_limits`, NaN for none)."""
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
    out["model_default_version"] = [v.get(DEFAULT_MODEL, "") for v in versions]
    out["model_late_version"] = [v.get(LATE_MODEL, "") for v in versions]
    return out


@dataclass(frozen=True)
class ClientRows:
    """What the scoring core reads of a client feature table: both models' matrices (the late
    model's with a typical new invoice: `x_late`, whose first columns are `x_default`, read
    through `late_columns`), the policy's view of each client and the category labels the
    reasons show. `Scorer.prepare` builds it once per table; the service prepares its
    default-day table at start and a request takes its client's row (converting a one-row frame
    costs milliseconds of pandas per request, taking a row microseconds)."""

    client_id: np.ndarray
    as_of: np.ndarray
    x_default: np.ndarray
    x_late: np.ndarray
    late_columns: np.ndarray  # the late model's feature j is column late_columns[j] of x_late
    open_balance: np.ndarray  # as in the table (missing stays missing); the exposure fills 0
    exposure: dict[str, np.ndarray]  # `ClientExposure` fields, plus `open_balance`
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
            open_balance=self.open_balance[at],
            exposure={k: v[at] for k, v in self.exposure.items()},
            labels={k: v[at] for k, v in self.labels.items()},
        )

    def value(self, bundle: ModelBundle, i: int, j: int) -> object:
        """Row i's value of the default model's feature j: the matrix holds it, except for a
        category, whose label is kept as given (an unseen label is missing to the model)."""
        name = bundle.features[j]
        if name in self.labels:
            return self.labels[name][i]
        return self.x_default[i, j]


def _reason(r: Any) -> dict[str, Any]:
    value = r.value if not isinstance(r.value, np.generic) else r.value.item()
    return {
        "feature": r.feature,
        "value": value,
        "contribution": round(r.contribution, 6),
        "text": r.text,
    }


def exposure_at_default(open_balance: np.ndarray, limit: np.ndarray, ccf: float) -> np.ndarray:
    """What is drawn at default: today's balance plus a share of the undrawn limit."""
    return open_balance + ccf * np.maximum(limit - open_balance, 0.0)


def _exposures(clients: pd.DataFrame) -> dict[str, np.ndarray]:
    """The policy's view of each client (`ClientExposure` fields), as arrays."""

    def col(name: str) -> np.ndarray:
        if name not in clients:
            return np.full(len(clients), np.nan)
        return clients[name].to_numpy(dtype="float64")

    tenure = col("tenure_days")
    months = np.where(np.isfinite(tenure), np.clip(tenure, 0.0, None) / 30.44, 0.0)
    months = np.minimum(months, 120.0)
    late_share = np.where(np.isfinite(col("late_share_365")), col("late_share_365"), 1.0)
    volume = col("invoice_amount_365") / 12.0
    expected = col("expected_monthly_purchases")
    volume = np.where(np.isfinite(volume), volume, expected)  # an applicant's own estimate
    log_revenue = col("log_revenue")
    balance = col("open_balance")
    return {
        "monthly_volume": volume,
        "open_balance": np.where(np.isfinite(balance), balance, 0.0),
        "tenure_days": np.where(np.isfinite(tenure), tenure, 0.0),
        "on_time_months": months * (1.0 - late_share),
        "revenue": np.where(np.isfinite(log_revenue), np.expm1(log_revenue), np.nan),
        "equity": np.full(len(clients), np.nan),
        "thin_file": col("thin_file") >= 0.5,
    }
