"""Collections by client: one worklist row per client and queue, its worst stage, the next action
and its date, ranked by the loss that acting now can still avoid.

Stages follow days past due (`scoring.receivables`): 1-30 a friendly reminder, 31-60 a formal
dunning letter, 61-90 the final notice and a stop of deliveries, 90+ legal action or a claim. A
client's invoices share its worst stage. A client in default is never dunned: an insolvent one
goes to the *claim* queue (file with the administrator and the insurer), any other to *recovery*
(legal action); disputed invoices go to the *dispute* queue, out of the dunning run.

Priority is the loss collecting can still avoid: overdue amount x LGD x the fall in the chance of
collecting it if the client slips to the next stage (`collections.recovery_by_stage`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.policy import CreditPolicy
from scoring.receivables import STAGE_STARTS

QUEUES = ("claim", "recovery", "dispute", "dunning")
ACTIONS = {
    1: "send a friendly reminder",
    2: "send a formal dunning letter",
    3: "send the final notice and stop deliveries",
    4: "start legal action or claim from the insurer",
}
QUEUE_ACTIONS = {
    "claim": "file the claim with the administrator and the insurer",
    "recovery": "hand the debt to legal recovery",
    "dispute": "resolve the dispute (credit note or proof of delivery)",
}
WORKLIST_COLUMNS = {
    "client_id": "str",
    "queue": "str",
    "stage": "int8",
    "action": "str",
    "overdue_amount": "float64",
    "open_amount": "float64",
    "invoices": "int64",
    "invoice_ids": "str",
    "oldest_days_past_due": "int64",
    "next_step": "str",
    "next_step_on": "datetime64[us]",
    "avoidable_loss": "float64",
    "late_interest": "float64",  # what the overdue invoices carry (`scoring.interest`)
    "late_compensation": "float64",
    "over_limit_amount": "float64",  # the client's balance over its limit (a flag, not a queue)
    "last_action": "str",  # the client's latest recorded action (`last_actions`)
    "jurisdiction": "str",  # the client's country (ISO 3166 alpha-2): where a claim is brought
    "language": "str",  # of the client's letters: one the letters are written in, else English
}
LETTER_LANGUAGES = ("en", "zh", "de", "fr", "es")
# the official language of a country where it is one of the letters' languages (English
# elsewhere): the collection steps of a cross-border client follow its country
COUNTRY_LANGUAGE = {
    **dict.fromkeys(("DE", "AT", "CH", "LI"), "de"),
    **dict.fromkeys(("FR", "BE", "LU", "MC"), "fr"),
    **dict.fromkeys(("ES", "MX", "AR", "CO", "CL", "PE", "UY", "VE", "EC", "BO", "PY"), "es"),
    **dict.fromkeys(("CN", "TW", "HK", "MO", "SG"), "zh"),
}


def letter_language(countries: np.ndarray) -> np.ndarray:
    """The letters' language for each client country."""
    return np.array([COUNTRY_LANGUAGE.get(str(c), "en") for c in countries], dtype=object)


SHOWN_INVOICES = 20  # invoice ids listed on a worklist row
PROMISE_DAYS = 14  # a promise to pay is followed up this many days after it was made


def last_actions(actions: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each client's latest action before `as_of` (`features.contract` action log): action, on,
    and the words the worklist shows ("promise_to_pay on 2025-06-29 (1,200)")."""
    if actions is None or actions.empty:
        return pd.DataFrame(columns=["action", "on", "text"], index=pd.Index([], name="client_id"))
    done = actions[actions["on"] < as_of].sort_values(["client_id", "on"], kind="stable")
    last = done.drop_duplicates("client_id", keep="last").set_index("client_id")
    amount = last["amount"].to_numpy(dtype="float64")
    text = (
        last["action"].str.replace("_", " ")
        + " on "
        + last["on"].dt.strftime("%Y-%m-%d")
        + pd.Series(
            np.where(np.isfinite(amount), [f" ({a:,.0f})" for a in amount], ""), index=last.index
        )
    )
    return last[["action", "on"]].assign(text=text)


def queue_of(status: np.ndarray, insolvent: np.ndarray, disputed: np.ndarray) -> np.ndarray:
    """Each open invoice's queue from its client's standing and its own dispute flag."""
    defaulted = status == "in_default"
    return np.select(
        [defaulted & insolvent, defaulted, disputed], ["claim", "recovery", "dispute"], "dunning"
    ).astype(object)


def avoidable_loss(
    amount: np.ndarray, stage: np.ndarray, lgd: float, policy: CreditPolicy
) -> np.ndarray:
    """amount x LGD x (recovery chance at `stage` - at the next one); 0 while not yet due."""
    r = np.asarray(policy.collections.recovery_by_stage, dtype="float64")
    s = np.clip(np.asarray(stage, dtype=np.int64), 1, 4) - 1
    drop = r[s] - r[s + 1]
    return np.where(np.asarray(stage) > 0, amount * lgd * drop, 0.0)


def client_worklist(
    invoices: pd.DataFrame,
    as_of: pd.Timestamp,
    policy: CreditPolicy,
    over_limit: pd.Series | None = None,
    countries: pd.Series | None = None,
    actions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per client and queue with overdue invoices (every open invoice of a client in
    default). `invoices`: open invoices with client_id, invoice_id, due_on, outstanding,
    days_past_due, escalation_stage, collection_queue, client_stage and avoidable_loss;
    `over_limit`: each client's balance over its limit, `countries`: each client's country (by
    client id; the row's jurisdiction and letter language)."""
    due = invoices["escalation_stage"].to_numpy() > 0
    work = invoices[due | invoices["collection_queue"].isin(["claim", "recovery"]).to_numpy()]
    if work.empty:
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in WORKLIST_COLUMNS.items()})
    work = work.sort_values(["client_id", "days_past_due"], ascending=[True, False])
    overdue = work["escalation_stage"].to_numpy() > 0
    past = work["overdue"].to_numpy() if "overdue" in work else work["outstanding"].to_numpy()
    work = work.assign(overdue=np.where(overdue, past, 0.0))
    groups = work.groupby(["client_id", "collection_queue"], sort=True)
    rows = groups.agg(
        stage=("client_stage", "max"),
        overdue_amount=("overdue", "sum"),
        open_amount=("outstanding", "sum"),
        invoices=("invoice_id", "size"),
        invoice_ids=("invoice_id", lambda s: ", ".join(s.head(SHOWN_INVOICES))),
        oldest_days_past_due=("days_past_due", "max"),
        worst_due=("due_on", "min"),
        avoidable_loss=("avoidable_loss", "sum"),
        late_interest=("late_interest", "sum"),
        late_compensation=("late_compensation", "sum"),
    ).reset_index()
    rows = rows.rename(columns={"collection_queue": "queue"})
    stage = rows["stage"].to_numpy(dtype=np.int64)
    queue = rows["queue"].to_numpy(dtype=object)
    rows["action"] = [
        QUEUE_ACTIONS.get(q, ACTIONS.get(int(s), "")) for q, s in zip(queue, stage, strict=True)
    ]
    nxt = np.minimum(stage + 1, 4)
    starts = np.asarray(STAGE_STARTS, dtype=np.int64)
    step_on = pd.DatetimeIndex(rows["worst_due"]) + pd.to_timedelta(starts[nxt], unit="D")
    dunning = queue == "dunning"
    rows["next_step"] = np.where(
        dunning & (stage < 4), [ACTIONS[int(k)] for k in nxt], "follow up until settled"
    )
    rows["next_step_on"] = np.where(
        dunning & (stage < 4), step_on.to_numpy(), (as_of + pd.Timedelta(days=14)).to_datetime64()
    ).astype("datetime64[us]")
    rows["stage"] = rows["stage"].astype("int8")
    rows["over_limit_amount"] = (
        rows["client_id"].map(over_limit).fillna(0.0).to_numpy(dtype="float64")
        if over_limit is not None
        else 0.0
    )
    rows = with_jurisdiction(rows, countries)
    last = last_actions(actions, as_of)
    text = rows["client_id"].map(last["text"]).astype(object)
    rows["last_action"] = text.where(text.notna(), "").astype(str)
    promised = rows["client_id"].map(last["on"].where(last["action"] == "promise_to_pay"))
    follow = pd.to_datetime(promised) + pd.Timedelta(days=PROMISE_DAYS)
    keep = (rows["queue"] == "dunning").to_numpy() & (follow >= as_of).to_numpy()
    if keep.any():
        rows.loc[keep, "next_step"] = "follow up the promise to pay"
        rows.loc[keep, "next_step_on"] = follow[keep].to_numpy()
    return rows[list(WORKLIST_COLUMNS)].astype({"oldest_days_past_due": "int64"})


def with_jurisdiction(rows: pd.DataFrame, countries: pd.Series | None) -> pd.DataFrame:
    """Worklist rows with their client's country (where a claim is brought) and the language of
    its letters; `countries`: each client's country by client id (None: unknown)."""
    country = (
        rows["client_id"].map(countries).fillna("").astype(str).to_numpy(dtype=object)
        if countries is not None
        else np.full(len(rows), "", dtype=object)
    )
    return rows.assign(jurisdiction=country, language=letter_language(country))


def rank_worklist(rows: pd.DataFrame) -> pd.DataFrame:
    """The worklist in priority order (avoidable loss, then overdue amount, then client id), with
    its rank."""
    order = np.lexsort(
        (
            rows["queue"].to_numpy(dtype=str),
            rows["client_id"].to_numpy(dtype=str),
            -rows["overdue_amount"].to_numpy(dtype="float64"),
            -rows["avoidable_loss"].to_numpy(dtype="float64"),
        )
    )
    out = rows.take(order).reset_index(drop=True)
    return out.assign(priority_rank=np.arange(1, len(out) + 1, dtype=np.int64))
