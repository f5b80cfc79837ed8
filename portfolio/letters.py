"""Dunning letters: one per client whose collections stage calls for one, rendered from the
templates under `models/letters/` (Jinja2, one file per stage and language, plain HTML that a
credit manager edits).

A client in the dunning queue gets the letter of its stage: a friendly reminder (stage 1, 1-30
days past due), a formal demand (stage 2), a final notice before legal action (stages 3 and 4);
a client in default that is not insolvent (the recovery queue) gets the final notice. Disputed
invoices get no letter (the dispute is resolved first) and neither do insolvent clients (the
claim goes to the administrator or the insurer). The language follows the client's country
(`scoring.collections.letter_language`, English where none of the letters' languages is spoken).
Each letter lists the overdue invoices in their own currency with the late-payment interest and
fixed compensation they carry (`scoring.interest`), the totals, where to pay, by when, and the
next step with its date. A template reading a name the letter does not provide stops the run.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from scoring.collections import LETTER_LANGUAGES
from scoring.paths import MODELS_DIR

LETTERS_DIR = MODELS_DIR / "letters"
TEMPLATES = ("reminder", "dunning", "final_notice")
QUEUES = ("dunning", "recovery")  # the queues whose clients are written to
PAY_WITHIN_DAYS = {"reminder": 10, "dunning": 10, "final_notice": 7}
RESEND_DAYS = 14  # no new letter to a client sent one this recently
SENDER_KEYS = ("name", "address", "contact", "bank_details", "signatory")
LETTER_COLUMNS = {"client_id": "str", "language": "str", "template": "str", "html": "str"}


_SAFE = re.compile(r"[A-Za-z0-9_-]")
_LONGEST_NAME = 120  # characters of a letter's file name before its id is hashed


def letter_file(client_id: str) -> str:
    """The file name of a client's letter: its id with every character but letters, digits, '_'
    and '-' percent-encoded (so "../x" is "%2E%2E%2Fx.html": an id never becomes a path), or,
    when that is too long for a file name, its first characters and a hash of the whole id."""
    name = "".join(
        ch if _SAFE.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode()) for ch in client_id
    )
    if len(name) > _LONGEST_NAME:
        digest = hashlib.sha256(client_id.encode()).hexdigest()[:16]
        head = name[: _LONGEST_NAME - 17]
        cut = head.rfind("%", len(head) - 2)  # not inside a %XX
        name = f"{head[:cut] if cut >= 0 else head}-{digest}"
    return f"{name}.html"


def template_of(queue: str, stage: int) -> str | None:
    """The letter a worklist row calls for, or None."""
    if queue == "recovery":
        return "final_notice"
    if queue != "dunning" or stage < 1:
        return None
    return TEMPLATES[min(stage, 3) - 1]


def _money(value: float, currency: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.2f} {currency}"


@functools.cache
def environment(folder: Path = LETTERS_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(folder),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _money
    return env


@functools.cache
def sender(folder: Path = LETTERS_DIR) -> dict[str, Any]:
    """Who the letters come from (`sender.yaml`), every key there."""
    from scoring.policy import PolicyError

    path = folder / "sender.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the letters' sender ({exc})") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: must be a mapping of {', '.join(SENDER_KEYS)}")
    missing = [k for k in SENDER_KEYS if not raw.get(k)]
    if missing:
        raise PolicyError(f"{path}: {missing[0]} is missing")
    if not isinstance(raw["address"], list):
        raise PolicyError(f"{path}: address must be a list of lines")
    return raw


def render(
    template: str,
    language: str,
    client: dict[str, str],
    invoices: pd.DataFrame,
    as_of: pd.Timestamp,
    next_step_on: pd.Timestamp,
) -> str:
    """One letter. `invoices`: the client's overdue invoices of the queue written about, with
    invoice_id, issued_on, due_on, days_past_due, currency, outstanding_in_currency, fx_rate,
    late_interest, late_compensation (reporting currency) and late_charges_rule."""
    if language not in LETTER_LANGUAGES:
        language = "en"
    # plain arrays: a letter is rendered for thousands of clients a run
    rate = invoices["fx_rate"].to_numpy(dtype="float64")
    due = invoices["due_on"].to_numpy(dtype="datetime64[D]")
    ids = invoices["invoice_id"].to_numpy(dtype=object)
    order = np.lexsort((ids.astype(str), due))
    issued = invoices["issued_on"].to_numpy(dtype="datetime64[D]")[order]
    currency = invoices["currency"].to_numpy(dtype=object)[order]
    outstanding = invoices["outstanding_in_currency"].to_numpy(dtype="float64")[order]
    interest = (invoices["late_interest"].to_numpy(dtype="float64") / rate)[order]
    compensation = (invoices["late_compensation"].to_numpy(dtype="float64") / rate)[order]
    days = invoices["days_past_due"].to_numpy()[order]
    items = [
        {
            "invoice_id": str(ids[order][j]),
            "issued_on": str(issued[j]),
            "due_on": str(due[order][j]),
            "days_past_due": int(days[j]),
            "currency": str(currency[j]),
            "outstanding": float(outstanding[j]),
            "interest": float(interest[j]),
            "compensation": float(compensation[j]),
        }
        for j in range(len(order))
    ]
    totals = []
    for code in sorted(set(currency.tolist())):
        mine = currency == code
        owed, late = float(outstanding[mine].sum()), float(interest[mine].sum())
        fixed = float(np.nansum(compensation[mine]))
        totals.append(
            {
                "currency": str(code),
                "outstanding": owed,
                "interest": late,
                "compensation": fixed,
                "total": owed + late + fixed,
            }
        )
    pay_by = as_of + pd.Timedelta(days=PAY_WITHIN_DAYS[template])
    after = max(pd.Timestamp(next_step_on), pay_by + pd.Timedelta(days=1))
    legal = sorted({str(r) for r in invoices["late_charges_rule"].tolist() if str(r)})
    return (
        environment()
        .get_template(f"{language}/{template}.html")
        .render(
            language=language,
            client=client,
            sender=sender(),
            date=_day(as_of),
            reference=f"{client['id']}-{as_of:%Y%m%d}",
            invoices=items,
            totals=totals,
            max_days=int(days.max()) if len(days) else 0,
            pay_by=_day(pay_by),
            next_step_on=_day(after),
            legal_basis=legal,
        )
    )


def _day(value: object) -> str:
    return pd.Timestamp(value).date().isoformat()


def client_letters(
    worklist: pd.DataFrame,
    invoices: pd.DataFrame,
    clients: pd.DataFrame,
    as_of: pd.Timestamp,
    actions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The letters of a chunk: one per client with a worklist row that calls for one (a client
    in both queues gets the recovery one), except a client sent a letter in the last
    `RESEND_DAYS` days (the action log's letter_sent). `clients`: the ledger's clients table
    (names, countries); `invoices`: the chunk's open invoices (`portfolio.batch.invoice_rows`)."""
    rows = []
    names = clients.set_index("client_id")
    wanted = worklist[worklist["queue"].isin(QUEUES)]
    if actions is not None and len(actions):
        recent = actions[
            (actions["action"] == "letter_sent")
            & (actions["on"] < as_of)
            & (actions["on"] >= as_of - pd.Timedelta(days=RESEND_DAYS))
        ]
        wanted = wanted[~wanted["client_id"].isin(recent["client_id"])]
    # recovery before dunning: a client in default is written the final notice once
    wanted = wanted.sort_values(["client_id", "queue"], ascending=[True, False])
    overdue = invoices[invoices["days_past_due"].to_numpy() > 0]
    groups = overdue.groupby(["client_id", "collection_queue"], sort=False).indices
    for w in wanted.drop_duplicates("client_id").itertuples():
        template = template_of(str(w.queue), int(w.stage))
        at = groups.get((w.client_id, w.queue))
        if template is None or at is None:
            continue
        mine = overdue.iloc[at]
        client = {
            "id": str(w.client_id),
            "name": str(names.at[w.client_id, "name"]),
            "country": str(names.at[w.client_id, "country"]),
        }
        html = render(template, str(w.language), client, mine, as_of, w.next_step_on)
        rows.append((str(w.client_id), str(w.language), template, html))
    if not rows:
        return empty_letters()
    return pd.DataFrame(rows, columns=list(LETTER_COLUMNS)).astype(LETTER_COLUMNS)


def empty_letters() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in LETTER_COLUMNS.items()})
