"""Trade credit insurance: the policy's terms, the insurer's limit per buyer, and what of each
invoice and client is covered.

The policy (`models/insurance_policy.yaml`, or `--insurance FILE`) pays `indemnity` (up to 90 %)
of an insured loss, above an annual first loss borne by the seller across the whole portfolio.
An invoice is insured when its client is not excluded and has an insurer limit, its credit period
is within the policy's maximum (and any extension of its due date, recorded in the action log,
within the maximum extension), and, once overdue, it was notified to the insurer within
`notify_overdue_days` of its due date: an overdue invoice not notified by then has its cover at
risk. A claim can be filed `waiting_period_days` after the due date (protracted default), or at
once when the client is insolvent. A client's insured exposure is what its insured invoices owe,
up to the insurer's limit in force at `as_of` (the latest decision made before it; a cancelled
limit is 0); the rest is uninsured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.arrays import isin
from features.fx import Rates
from scoring.collections import WORKLIST_COLUMNS, with_jurisdiction
from scoring.paths import MODELS_DIR
from scoring.policy import GRADES, PolicyError

INSURANCE_FILE = MODELS_DIR / "insurance_policy.yaml"
DEADLINE_SOON_DAYS = 14  # a notification deadline this close is on the worklist
# the cover of an open invoice at `as_of`, from the seller's side
COVER = (
    "not insured",  # no insurer limit, an excluded buyer, or no policy
    "outside cover",  # credit period or extension beyond the policy's maximum
    "covered",  # not overdue, or overdue and still within the notification window
    "notify soon",  # overdue, not notified, the deadline within DEADLINE_SOON_DAYS
    "notified",  # notified in time, no claim yet (and none due)
    "claim due",  # notified, the waiting period over (or the client insolvent): file the claim
    "claim filed",
    "cover at risk",  # overdue and not notified by the deadline
)
INSURED = ("covered", "notify soon", "notified", "claim due", "claim filed")


@dataclass(frozen=True)
class InsurancePolicy:
    insurer: str
    indemnity: float = field(metadata={"min": 0.0, "max": 1.0})
    annual_first_loss: float = field(metadata={"min": 0.0})
    max_credit_period_days: int = field(metadata={"min": 1, "max": 720})
    max_extension_days: int = field(metadata={"min": 0, "max": 365})
    notify_overdue_days: int = field(metadata={"min": 1, "max": 365})
    waiting_period_days: int = field(metadata={"min": 0, "max": 720})
    # a higher insurer limit is worth requesting for a client of this grade or better
    request_grade_max: int = field(metadata={"min": 1, "max": GRADES})
    excluded_buyers: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path | None = None) -> InsurancePolicy:
        path = path or INSURANCE_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{path}: cannot read the insurance policy ({exc})") from None
        return cls.from_dict(raw, path.name)

    @classmethod
    def from_dict(cls, raw: object, file: str = "insurance policy") -> InsurancePolicy:
        if not isinstance(raw, dict):
            raise PolicyError(f"{file}: must be a mapping of keys, got {raw!r}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise PolicyError(
                f"{file}: {unknown[0]} is not a known key (known: {', '.join(known)})"
            )
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw:
                if f.name == "excluded_buyers":
                    continue
                raise PolicyError(f"{file}: {f.name} is missing")
            value = raw[f.name]
            if f.name == "insurer":
                if not isinstance(value, str) or not value.strip():
                    raise PolicyError(f"{file}: insurer must be the insurer's name, got {value!r}")
            elif f.name == "excluded_buyers":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise PolicyError(f"{file}: excluded_buyers must be a list of client ids")
                value = tuple(value)
            else:
                whole = f.type in (int, "int")
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or (whole and not float(value).is_integer())
                ):
                    kind = "a whole number" if whole else "a number"
                    raise PolicyError(f"{file}: {f.name} must be {kind}, got {value!r}")
                low, high = f.metadata.get("min"), f.metadata.get("max")
                if (low is not None and value < low) or (high is not None and value > high):
                    raise PolicyError(
                        f"{file}: {f.name} must be between {low:g} and "
                        f"{high if high is not None else 'any'}, got {value!r}"
                    )
                value = int(value) if whole else float(value)
            values[f.name] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["excluded_buyers"] = list(self.excluded_buyers)
        return out


@dataclass(frozen=True)
class InsurerLimits:
    """Each client's insurer limit in force at `as_of` (reporting currency; NaN: none)."""

    limit: pd.Series
    status: pd.Series  # granted / reduced / cancelled ("" none)
    decided_on: pd.Series


def insurer_limits_at(
    table: pd.DataFrame, client_ids: pd.Series, as_of: pd.Timestamp, rates: Rates
) -> InsurerLimits:
    """The latest decision made before `as_of` and still valid on it, per client."""
    known = table[(table["decided_on"] < as_of)]
    known = known[~(known["valid_until"] < as_of)]
    latest = known.sort_values(["client_id", "decided_on"], kind="stable").drop_duplicates(
        "client_id", keep="last"
    )
    latest = latest.set_index("client_id")
    amount = latest["limit"].to_numpy(dtype="float64") * rates.on(latest["currency"], as_of)
    amount = np.where(latest["status"].to_numpy() == "cancelled", 0.0, amount)
    by_client = pd.Series(amount, index=latest.index)
    ids = client_ids.to_numpy(dtype=object)
    return InsurerLimits(
        limit=pd.Series(by_client.reindex(ids).to_numpy(dtype="float64"), index=ids),
        status=pd.Series(
            latest["status"].reindex(ids).fillna("").to_numpy(dtype=object), index=ids
        ),
        decided_on=pd.Series(latest["decided_on"].reindex(ids).to_numpy(), index=ids),
    )


def invoice_cover(
    invoices: pd.DataFrame,
    policy: InsurancePolicy | None,
    has_limit: np.ndarray,
    insolvent_on: np.ndarray,
    actions: pd.DataFrame,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """Per open invoice: `notify_by` (the date the insurer must know of it, once overdue),
    `claim_from` (the date a claim can be filed) and `cover` (one of `COVER`). `has_limit`: its
    client has an insurer limit above 0; `insolvent_on`: its client's insolvency date (NaT: none);
    `actions`: the action log before `as_of` (`features.contract`)."""
    n = len(invoices)
    due = invoices["due_on"].to_numpy(dtype="datetime64[us]")
    if policy is None:
        nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
        return pd.DataFrame(
            {"notify_by": nat, "claim_from": nat, "cover": np.full(n, "not insured", dtype=object)}
        )
    notify_by = due + np.timedelta64(policy.notify_overdue_days, "D")
    claim_from = due + np.timedelta64(policy.waiting_period_days, "D")
    insolvent = ~np.isnat(insolvent_on)
    claim_from = np.where(insolvent, np.maximum(insolvent_on, due), claim_from)
    ids = invoices["invoice_id"].to_numpy(dtype=object)
    done = actions[actions["on"] < as_of]

    def did(action: str) -> np.ndarray:
        return isin(
            invoices["invoice_id"], done.loc[done["action"] == action, "invoice_id"].dropna()
        )

    notified, filed = did("insurer_notified"), did("claim_filed")
    extended = done[done["action"] == "due_date_extended"].groupby("invoice_id")["amount"].sum()
    extension = pd.Series(ids).map(extended).fillna(0.0).to_numpy()
    terms = (due - invoices["issued_on"].to_numpy(dtype="datetime64[us]")) / np.timedelta64(1, "D")
    day = np.datetime64(as_of.to_datetime64(), "us")
    overdue = due < day
    excluded = isin(invoices["client_id"], list(policy.excluded_buyers))
    cover = np.select(
        [
            ~has_limit | excluded,
            (terms > policy.max_credit_period_days) | (extension > policy.max_extension_days),
            filed,
            notified & (claim_from <= day),
            notified,
            overdue & (notify_by < day),
            overdue & (notify_by < day + np.timedelta64(DEADLINE_SOON_DAYS, "D")),
        ],
        [
            "not insured",
            "outside cover",
            "claim filed",
            "claim due",
            "notified",
            "cover at risk",
            "notify soon",
        ],
        "covered",
    )
    return pd.DataFrame({"notify_by": notify_by, "claim_from": claim_from, "cover": cover})


def client_insurance(
    clients: pd.DataFrame,
    invoices: pd.DataFrame,
    limits: InsurerLimits,
    policy: InsurancePolicy | None,
    lgd: float,
) -> pd.DataFrame:
    """Per client: the insurer's limit beside ours, insured and uninsured exposure, expected loss
    net of the indemnity, and what to do about the cover. `invoices`: the open invoices with
    their `cover` and `outstanding` (reporting currency)."""
    ids = clients["client_id"].to_numpy(dtype=object)
    insured_owed = (
        invoices.loc[invoices["cover"].isin(INSURED)].groupby("client_id")["outstanding"].sum()
    )
    limit = limits.limit.reindex(ids).to_numpy(dtype="float64")
    owed = pd.Series(ids).map(insured_owed).fillna(0.0).to_numpy()
    balance = clients["open_balance"].to_numpy(dtype="float64")
    insured = np.minimum(owed, np.nan_to_num(limit, nan=0.0)) if policy is not None else 0 * owed
    indemnity = policy.indemnity if policy is not None else 0.0
    pd_ = clients["pd_12m"].to_numpy(dtype="float64")
    gross = clients["expected_loss"].to_numpy(dtype="float64")
    net = np.maximum(gross - pd_ * lgd * indemnity * insured, 0.0)
    grade = pd.to_numeric(clients["grade"], errors="coerce").to_numpy(dtype="float64")
    recommended = clients["recommended_limit"].to_numpy(dtype="float64")
    note = np.full(len(ids), "", dtype=object)
    if policy is not None:
        has = np.isfinite(limit)
        above = has & (balance > limit + 0.5)
        ask = has & (recommended > limit + 0.5) & (grade <= policy.request_grade_max)
        none = ~has & (balance > 0) & (grade <= policy.request_grade_max)
        note = np.select(
            [above, ask, none],
            ["exposure above cover", "request a higher insurer limit", "request an insurer limit"],
            "",
        ).astype(object)
    return pd.DataFrame(
        {
            "client_id": ids,
            "insurer_limit": limit,
            "insurer_status": limits.status.reindex(ids).to_numpy(dtype=object),
            "insured_exposure": insured,
            "uninsured_exposure": np.maximum(balance - insured, 0.0),
            "expected_loss_net": net,
            "insurance_note": note,
        }
    )


def insurance_worklist(
    invoices: pd.DataFrame,
    as_of: pd.Timestamp,
    policy: InsurancePolicy | None,
    countries: pd.Series | None = None,
) -> pd.DataFrame:
    """The insurer's deadlines as worklist rows (queue "insurer"), one per client with an invoice
    whose notification deadline is near or passed unnotified, or whose claim is due. `invoices`:
    open invoices with `insurance_cover`, `insurer_notify_by`, `insurer_claim_from`, outstanding,
    pd_12m and days_past_due."""
    urgent = ("cover at risk", "claim due", "notify soon")
    work = invoices[invoices["insurance_cover"].isin(urgent)]
    if policy is None or work.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in WORKLIST_COLUMNS.items()})
    rank = {k: i for i, k in enumerate(urgent)}
    work = work.assign(
        urgency=work["insurance_cover"].map(rank),
        # what acting on it keeps: the indemnity on the expected loss of the invoice
        kept=policy.indemnity * work["pd_12m"] * work["outstanding"],
        deadline=np.where(
            work["insurance_cover"] == "claim due",
            work["insurer_claim_from"],
            work["insurer_notify_by"],
        ),
    ).sort_values(["client_id", "urgency", "deadline"])
    rows = []
    for client_id, group in work.groupby("client_id", sort=True):
        counts = group["insurance_cover"].value_counts()
        parts = []
        if counts.get("cover at risk"):
            parts.append(
                f"cover at risk: {counts['cover at risk']} invoice(s) not notified to "
                f"{policy.insurer} by the deadline: notify now and ask for the cover to be kept"
            )
        if counts.get("claim due"):
            parts.append(f"file the claim with {policy.insurer}: {counts['claim due']} invoice(s)")
        if counts.get("notify soon"):
            first = pd.Timestamp(
                group.loc[group["insurance_cover"] == "notify soon", "insurer_notify_by"].min()
            )
            parts.append(
                f"notify {policy.insurer} of {counts['notify soon']} overdue invoice(s) by "
                f"{first.date()}"
            )
        first_deadline = pd.Timestamp(group["deadline"].iloc[0])
        rows.append(
            {
                "client_id": client_id,
                "queue": "insurer",
                "stage": 0,
                "action": "; ".join(parts),
                "overdue_amount": float(group["outstanding"].sum()),
                "open_amount": float(group["outstanding"].sum()),
                "invoices": len(group),
                "invoice_ids": ", ".join(group["invoice_id"].head(5)),
                "oldest_days_past_due": int(group["days_past_due"].max()),
                "next_step": "deadline" if first_deadline >= as_of else "deadline passed",
                "next_step_on": first_deadline,
                "avoidable_loss": float(group["kept"].sum()),
                "late_interest": 0.0,
                "late_compensation": 0.0,
                "over_limit_amount": 0.0,
                "last_action": "",
            }
        )
    out = with_jurisdiction(pd.DataFrame(rows), countries)
    return out[list(WORKLIST_COLUMNS)].astype(
        {"stage": "int8", "oldest_days_past_due": "int64", "next_step_on": "datetime64[us]"}
    )
