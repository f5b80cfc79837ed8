"""The scoring core, shared by the HTTP service, batch scoring and Spark: client features in,
PD, late-payment probability, grade, reasons, expected loss and limit decision out."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from serving.bundle import ModelBundle
from serving.limits import ClientExposure, LimitPolicy, decide_limit, recommend_limit
from serving.reasons import top_reasons

TYPICAL_TERMS_DAYS = 30.0


@dataclass
class Scorer:
    """The champions (or pinned versions) of both models and the limit policy."""

    default: ModelBundle
    late: ModelBundle
    policy: LimitPolicy
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_registry(cls, *, default: str = "champion", late: str = "champion") -> Scorer:
        """Load `models:/creditguard-default@champion` and `creditguard-late@champion` (or versions)."""
        from training.registry import load_bundle, resolve_version

        return cls(
            default=load_bundle("creditguard-default", default),
            late=load_bundle("creditguard-late", late),
            policy=LimitPolicy.load(),
            versions={
                "creditguard-default": resolve_version("creditguard-default", default),
                "creditguard-late": resolve_version("creditguard-late", late),
            },
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
        x = self.default.matrix(clients)
        if reasons:
            contrib = self.default.contributions(x, threads=threads)
            raw = contrib.sum(axis=1)
        else:
            raw = self.default.raw_score(x, threads=threads)
        pd_ = self.default.probability(raw)
        grade = self.default.master_scale.grade(pd_)
        late_p = self.late.probability(
            self.late.raw_score(
                self.late.matrix(clients, self.typical_invoices(clients)), threads=threads
            )
        )
        out = pd.DataFrame(
            {
                "client_id": clients["client_id"].to_numpy(),
                "as_of": clients["as_of"].to_numpy(),
                "pd_12m": pd_,
                "grade": grade,
                "late_payment_probability": late_p,
                "raw_score": raw,
                "thin_file": clients["thin_file"].to_numpy() >= 0.5,
                "data_sufficiency": np.where(
                    clients["thin_file"].to_numpy() >= 0.5,
                    "thin file: too little payment history for a full profile",
                    "full",
                ),
                "open_balance": clients["open_balance"].to_numpy(),
            }
        )
        limits: list[float] = []
        el: list[float] = []
        decisions: list[dict[str, Any] | None] = []
        requested = requested_limits.to_numpy() if requested_limits is not None else None
        needed = [
            "tenure_days",
            "late_share_365",
            "invoice_amount_365",
            "log_revenue",
            "open_balance",
            "thin_file",
        ]
        if "expected_monthly_purchases" in clients:
            needed.append("expected_monthly_purchases")
        columns = {c: clients[c].to_numpy(dtype="float64") for c in needed}
        for i in range(len(clients)):
            exposure = _exposure(SimpleNamespace(**{c: v[i] for c, v in columns.items()}))
            rec = recommend_limit(
                self.policy, pd_=float(pd_[i]), grade=int(grade[i]), client=exposure
            )
            limits.append(rec.limit)
            ead = exposure.open_balance + self.policy.ccf * max(
                rec.limit - exposure.open_balance, 0.0
            )
            el.append(float(pd_[i]) * self.policy.lgd * ead)
            if requested is not None and np.isfinite(requested[i]):
                d = decide_limit(
                    self.policy,
                    requested=float(requested[i]),
                    pd_=float(pd_[i]),
                    grade=int(grade[i]),
                    client=exposure,
                )
                decisions.append(
                    {"decision": d.decision, "approved_amount": d.approved_amount, "rules": d.rules}
                )
            else:
                decisions.append(None)
        out["recommended_limit"] = limits
        out["expected_loss"] = el
        out["limit_decision"] = decisions
        if reasons:
            names = self.default.features
            values = clients[names].to_numpy(dtype=object)
            risks, strengths = [], []
            for i in range(len(clients)):
                r, s = top_reasons(names, list(values[i]), contrib[i, :-1], top=top)
                risks.append([_reason(x) for x in r])
                strengths.append([_reason(x) for x in s])
            out["risk_reasons"] = risks
            out["strengths"] = strengths
            out["expected_value"] = contrib[:, -1]
        out["model_versions"] = [dict(self.versions)] * len(out)
        return out


def _reason(r: Any) -> dict[str, Any]:
    value = r.value if not isinstance(r.value, np.generic) else r.value.item()
    return {
        "feature": r.feature,
        "value": value,
        "contribution": round(r.contribution, 6),
        "text": r.text,
    }


def _exposure(row: Any) -> ClientExposure:
    months = min(max(row.tenure_days, 0.0) / 30.44, 120.0) if np.isfinite(row.tenure_days) else 0.0
    late_share = row.late_share_365 if np.isfinite(row.late_share_365) else 1.0
    volume = row.invoice_amount_365 / 12.0 if np.isfinite(row.invoice_amount_365) else float("nan")
    expected = getattr(row, "expected_monthly_purchases", float("nan"))
    if not np.isfinite(volume) and expected is not None and np.isfinite(expected):
        volume = float(expected)  # an applicant's own estimate, until we have history
    revenue = float(np.expm1(row.log_revenue)) if np.isfinite(row.log_revenue) else float("nan")
    return ClientExposure(
        monthly_volume=volume,
        open_balance=float(row.open_balance) if np.isfinite(row.open_balance) else 0.0,
        tenure_days=float(row.tenure_days) if np.isfinite(row.tenure_days) else 0.0,
        on_time_months=months * (1.0 - late_share),
        revenue=revenue,
        equity=float("nan"),
        thin_file=bool(row.thin_file >= 0.5),
    )
