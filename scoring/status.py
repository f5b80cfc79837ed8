"""Client status, decided before any score: in default, undetermined, dormant, new or active.

A model's PD means something only for clients like those it learned from (active ones). A client
in default (the default label's own events, `features.labels.in_default`) is grade D with PD 1,
no new credit and goes to recovery; a client whose records contradict themselves (a payment on
an invoice already written off) is *undetermined* and goes to an analyst, never guessed; a
dormant client's limit is reviewed down; a new one starts small.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from features.labels import in_default
from scoring.policy import StatusPolicy


class Status(StrEnum):
    IN_DEFAULT = "in_default"
    UNDETERMINED = "undetermined"
    DORMANT = "dormant"
    NEW = "new"
    ACTIVE = "active"


def client_status(features: pd.DataFrame, policy: StatusPolicy) -> tuple[np.ndarray, np.ndarray]:
    """Each feature row's status and why, in words (arrays of str)."""
    n = len(features)

    def col(name: str) -> np.ndarray:
        return features[name].to_numpy(dtype="float64") if n else np.zeros(0)

    as_of = pd.DatetimeIndex(features["as_of"]) if n else pd.DatetimeIndex([])
    status = np.full(n, Status.ACTIVE.value, dtype=object)
    reason = np.full(n, "", dtype=object)

    def since(days: np.ndarray) -> np.ndarray:
        dates = as_of - pd.to_timedelta(np.nan_to_num(days), unit="D")
        return np.asarray(dates.strftime("%Y-%m-%d"), dtype=object)

    tenure, last_invoice = col("tenure_days"), col("days_since_last_invoice")
    # no invoice for months outweighs a thin file: the limit is reviewed down, not ramped up
    idle = np.where(np.isfinite(last_invoice), last_invoice, tenure) > policy.dormant_days
    new = ((tenure < policy.new_client_days) | (col("thin_file") >= 0.5)) & ~idle
    status[new], reason[new] = Status.NEW.value, "a new client: start cap and ramp-up"
    status[idle] = Status.DORMANT.value
    reason[idle] = [
        f"no invoice for {d:,.0f} days" if np.isfinite(d) else "never invoiced"
        for d in last_invoice[idle]
    ]
    # in default: the causes, most serious last so that its words win
    defaulted = in_default(features, cure_days=policy.cure_days)
    dpd90, writeoff, insolvency = col("dpd90_days"), col("writeoff_days"), col("insolvency_days")
    recent = np.isfinite(dpd90) & (dpd90 < policy.cure_days)
    reason[recent] = np.where(
        dpd90[recent] == 0,
        "an invoice is more than 90 days past due",
        "an invoice was more than 90 days past due until " + since(dpd90)[recent],
    )
    written = np.isfinite(writeoff) & (writeoff < policy.cure_days)
    reason[written] = "an invoice was written off on " + since(writeoff)[written]
    insolvent = np.isfinite(insolvency)
    reason[insolvent] = "insolvency declared on " + since(insolvency)[insolvent]
    status[defaulted] = Status.IN_DEFAULT.value
    # a payment on an invoice already written off: which is true is not ours to guess
    contradicts = (col("paid_after_writeoff") > 0) & ~insolvent
    status[contradicts] = Status.UNDETERMINED.value
    reason[contradicts] = [
        f"{k:.0f} payment(s) recorded on invoices already written off: status cannot be "
        "determined until the records are corrected"
        for k in col("paid_after_writeoff")[contradicts]
    ]
    return status.astype(str), reason.astype(str)
