"""Payment terms by risk: the terms a client should buy on, from `models/terms_policy.yaml`.

Rules are read top to bottom; the first whose conditions hold (status, grade from, country risk
class from) fires and is named beside the terms. Terms are ordered from the safest to the most
generous: advance payment, a letter of credit or bank guarantee, instalments, open account by
days. Loading checks every status, country class and grade and refuses a policy under which a
worse grade would get more generous terms than a better one (the property the tests check too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scoring.paths import MODELS_DIR
from scoring.policy import GRADES, PolicyError
from scoring.status import Status

TERMS_FILE = MODELS_DIR / "terms_policy.yaml"
# the kinds of terms, each with its rank: lower is safer
KINDS: dict[str, int] = {
    "advance_payment": 0,
    "letter_of_credit": 1,
    "bank_guarantee": 1,
    "instalments": 2,
    "open_account": 3,
}
WORDS = {
    "advance_payment": "advance payment",
    "letter_of_credit": "letter of credit",
    "bank_guarantee": "bank guarantee",
    "instalments": "instalments",
    "open_account": "open account",
}
IN_DEFAULT_GRADE = GRADES + 1  # a client in default: worse than the worst grade
UNRATED_CLASS = 8  # a country the OECD does not classify: worse than class 7
CONDITIONS = ("status", "grade_from", "country_class_from")


@dataclass(frozen=True)
class Instalment:
    share: float  # of the invoice
    days: int  # after the order


@dataclass(frozen=True)
class TermsRule:
    name: str
    terms: str  # a key of KINDS
    statuses: tuple[str, ...] = ()  # empty: any
    grade_from: int = 1
    country_class_from: int = 0
    max_days: int = 0  # open account only
    schedule: tuple[Instalment, ...] = ()  # instalments only

    def holds(self, status: str, grade: int, country_class: int) -> bool:
        return (
            (not self.statuses or status in self.statuses)
            and grade >= self.grade_from
            and country_class >= self.country_class_from
        )

    def describe(self, days: int) -> str:
        """The terms in words, e.g. "instalments: 30 % on order, 40 % at 30 days"."""
        if self.terms == "open_account":
            return f"open account, {days} days"
        if self.terms == "instalments":
            return "instalments: " + ", ".join(
                f"{p.share:.0%}".replace("%", " %")
                + (" on order" if p.days == 0 else f" at {p.days} days")
                for p in self.schedule
            )
        return WORDS[self.terms]

    def generosity(self, days: int) -> tuple[int, float]:
        """How generous the terms are, comparable across kinds (larger: more generous)."""
        if self.terms == "open_account":
            return KINDS[self.terms], float(days)
        if self.terms == "instalments":
            return KINDS[self.terms], float(sum(p.share * p.days for p in self.schedule))
        return KINDS[self.terms], 0.0


@dataclass(frozen=True)
class Terms:
    """Recommended and current terms of clients (arrays, one value per client)."""

    kind: np.ndarray  # a key of KINDS
    days: np.ndarray  # open account: days to pay; instalments: the last instalment's day; else 0
    text: np.ndarray  # in words
    rule: np.ndarray  # the rule that fired
    current: np.ndarray  # the terms seen on the client's recent invoices, in words


@dataclass(frozen=True)
class Price:
    """What moving a client off open account onto a kind of terms costs and saves."""

    sales_lost: float  # share of its purchases a client no longer makes on these terms
    loss_avoided: float  # share of the open-account exposure these terms secure


NO_PRICE = Price(0.0, 1.0)  # a policy without pricing: safer terms cost nothing (round 2)


@dataclass(frozen=True)
class Economics:
    """What the pricing of terms reads of each client (arrays)."""

    pd_: np.ndarray
    monthly_volume: np.ndarray
    limit: np.ndarray  # recommended: a client without credit is not priced
    margin: float
    lgd: float
    grace_days: float


@dataclass(frozen=True)
class TermsPolicy:
    rules: tuple[TermsRule, ...]
    pricing: tuple[tuple[str, Price], ...] = ()

    def price(self, kind: str) -> Price:
        return dict(self.pricing).get(kind, NO_PRICE)

    @classmethod
    def load(cls, path: Path | None = None) -> TermsPolicy:
        path = path or TERMS_FILE
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{path}: cannot read the terms policy ({exc})") from None
        return cls.from_dict(raw, path.name)

    @classmethod
    def from_dict(cls, raw: object, file: str = "terms policy") -> TermsPolicy:
        if not isinstance(raw, dict) or "rules" not in raw or set(raw) - {"rules", "pricing"}:
            raise PolicyError(f"{file}: must be a mapping of rules (and, optionally, pricing)")
        rules = raw["rules"]
        if not isinstance(rules, list) or not rules:
            raise PolicyError(f"{file}: rules must be a non-empty list")
        policy = cls(
            tuple(_rule(r, f"{file}: rules[{i}]") for i, r in enumerate(rules)),
            _pricing(raw.get("pricing"), f"{file}: pricing"),
        )
        _check(policy, file)
        return policy

    def to_dict(self) -> dict[str, Any]:
        """The inverse of `from_dict` (the policy shipped to Spark executors)."""
        out = []
        for r in self.rules:
            item: dict[str, Any] = {"name": r.name, "terms": r.terms, "when": {}}
            if r.statuses:
                item["when"]["status"] = list(r.statuses)
            if r.grade_from > 1:
                item["when"]["grade_from"] = r.grade_from
            if r.country_class_from > 0:
                item["when"]["country_class_from"] = (
                    "unrated" if r.country_class_from == UNRATED_CLASS else r.country_class_from
                )
            if r.terms == "open_account":
                item["max_days"] = r.max_days
            if r.terms == "instalments":
                item["schedule"] = [asdict(p) for p in r.schedule]
            out.append(item)
        return {"rules": out, "pricing": {k: asdict(p) for k, p in self.pricing}}

    def rule_for(self, status: str, grade: int, country_class: int) -> TermsRule:
        """The first rule that holds (the last holds for everyone)."""
        return next(r for r in self.rules if r.holds(status, grade, country_class))

    def open_rule_for(self, status: str, grade: int, country_class: int) -> TermsRule | None:
        """The first open-account rule that holds (None: the policy has none for the client)."""
        return next(
            (
                r
                for r in self.rules
                if r.terms == "open_account" and r.holds(status, grade, country_class)
            ),
            None,
        )

    def recommend(
        self,
        status: np.ndarray,
        grade: np.ndarray,
        country_class: np.ndarray,
        current_days: np.ndarray,
        economics: Economics | None = None,
    ) -> Terms:
        """Each client's recommended terms. `grade`: 1..10, 0 (or NaN) in default;
        `country_class`: 0..7, NaN unrated; `current_days`: the terms seen on its recent
        invoices (NaN: none), which an open account never exceeds. With `economics`, safer
        terms are kept only where the loss they avoid exceeds the margin they put at risk."""
        n = len(status)
        kind = np.empty(n, dtype=object)
        days = np.zeros(n, dtype=np.int64)
        text = np.empty(n, dtype=object)
        rule = np.empty(n, dtype=object)
        for i in range(n):
            g = int(grade[i]) if np.isfinite(grade[i]) and grade[i] > 0 else IN_DEFAULT_GRADE
            c = int(country_class[i]) if np.isfinite(country_class[i]) else UNRATED_CLASS
            r = self.rule_for(str(status[i]), g, c)
            d = _days(r, current_days[i])
            kind[i], days[i], text[i], rule[i] = r.terms, d, r.describe(d), r.name
            if economics is None or r.terms == "open_account":
                continue
            priced = _priced(self, r, str(status[i]), g, c, current_days[i], economics, i)
            if priced is not None:
                kind[i], days[i], text[i], rule[i] = priced
        current = np.array(
            [
                f"open account, {round(d)} days" if np.isfinite(d) else "none seen"
                for d in current_days
            ],
            dtype=object,
        )
        return Terms(kind, days, text, rule, current)


def _priced(
    policy: TermsPolicy,
    rule: TermsRule,
    status: str,
    grade: int,
    country: int,
    current_days: float,
    e: Economics,
    i: int,
) -> tuple[str, int, str, str] | None:
    """Open account instead of `rule`'s safer terms, where these cost more margin than the loss
    they avoid (None: the safer terms stand, or no open-account rule holds)."""
    volume, limit, pd_ = e.monthly_volume[i], e.limit[i], e.pd_[i]
    if status == Status.IN_DEFAULT or not (limit > 0) or not np.isfinite(volume) or volume <= 0:
        return None
    if rule.country_class_from > 0:  # a country's transfer risk is not in the client's PD
        return None
    open_rule = policy.open_rule_for(status, grade, country)
    if open_rule is None:
        return None
    price = policy.price(rule.terms)
    d = _days(open_rule, current_days)
    exposure = min(volume * (d + e.grace_days) / 30.44, limit)
    avoided = pd_ * e.lgd * exposure * price.loss_avoided
    at_risk = e.margin * 12 * volume * price.sales_lost
    if avoided > at_risk:
        return None
    words = (
        f"{open_rule.describe(d)} ({WORDS[rule.terms]} would put {at_risk:,.0f} of margin at "
        f"risk to avoid {avoided:,.0f} of expected loss)"
    )
    return "open_account", d, words, f"{rule.name}: priced, kept on open account"


def _pricing(raw: object, at: str) -> tuple[tuple[str, Price], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicyError(f"{at} must be a mapping of kinds of terms, got {raw!r}")
    out = []
    for kind, item in raw.items():
        if kind not in KINDS or kind == "open_account":
            raise PolicyError(f"{at}.{kind} is not a kind of safer terms ({', '.join(KINDS)})")
        if not isinstance(item, dict) or set(item) != {"sales_lost", "loss_avoided"}:
            raise PolicyError(f"{at}.{kind} must give sales_lost and loss_avoided, got {item!r}")
        values = []
        for key in ("sales_lost", "loss_avoided"):
            v = item[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                raise PolicyError(f"{at}.{kind}.{key} must be a number in [0, 1], got {v!r}")
            values.append(float(v))
        out.append((str(kind), Price(*values)))
    return tuple(out)


def _days(rule: TermsRule, current: float) -> int:
    if rule.terms == "open_account":
        return int(min(rule.max_days, round(current))) if np.isfinite(current) else rule.max_days
    if rule.terms == "instalments":
        return rule.schedule[-1].days
    return 0


def _rule(raw: object, at: str) -> TermsRule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{at} must be a mapping, got {raw!r}")
    known = {"name", "when", "terms", "max_days", "schedule"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PolicyError(
            f"{at}.{unknown[0]} is not a known key (known: {', '.join(sorted(known))})"
        )
    for key in ("name", "terms"):
        if key not in raw:
            raise PolicyError(f"{at}.{key} is missing")
    name, terms = raw["name"], raw["terms"]
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"{at}.name must be text, got {name!r}")
    if terms not in KINDS:
        raise PolicyError(f"{at}.terms must be one of {', '.join(KINDS)}, got {terms!r}")
    when = raw.get("when") or {}
    if not isinstance(when, dict):
        raise PolicyError(f"{at}.when must be a mapping, got {when!r}")
    bad = sorted(set(when) - set(CONDITIONS))
    if bad:
        raise PolicyError(f"{at}.when.{bad[0]} is not a known condition ({', '.join(CONDITIONS)})")
    statuses = when.get("status", [])
    if not isinstance(statuses, list) or any(s not in set(Status) for s in statuses):
        raise PolicyError(
            f"{at}.when.status must be a list of {', '.join(s.value for s in Status)}, "
            f"got {statuses!r}"
        )
    grade_from = _whole(when.get("grade_from", 1), f"{at}.when.grade_from", 1, GRADES)
    country = when.get("country_class_from", 0)
    country_from = (
        UNRATED_CLASS
        if country == "unrated"
        else _whole(country, f"{at}.when.country_class_from", 0, 7)
    )
    max_days = 0
    schedule: tuple[Instalment, ...] = ()
    if terms == "open_account":
        if "max_days" not in raw:
            raise PolicyError(f"{at}.max_days is missing (open account needs its days)")
        max_days = _whole(raw["max_days"], f"{at}.max_days", 1, 365)
    elif "max_days" in raw:
        raise PolicyError(f"{at}.max_days is for open_account terms only")
    if terms == "instalments":
        schedule = _schedule(raw.get("schedule"), f"{at}.schedule")
    elif "schedule" in raw:
        raise PolicyError(f"{at}.schedule is for instalments terms only")
    return TermsRule(
        name=name.strip(),
        terms=terms,
        statuses=tuple(str(s) for s in statuses),
        grade_from=grade_from,
        country_class_from=country_from,
        max_days=max_days,
        schedule=schedule,
    )


def _whole(value: object, at: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(f"{at} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _schedule(raw: object, at: str) -> tuple[Instalment, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise PolicyError(f"{at} must list at least two instalments ({{share, days}}), got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"share", "days"}:
            raise PolicyError(f"{at}[{i}] must be a mapping of share and days, got {item!r}")
        share = item["share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise PolicyError(f"{at}[{i}].share must be a number in (0, 1], got {share!r}")
        out.append(Instalment(float(share), _whole(item["days"], f"{at}[{i}].days", 0, 365)))
    if abs(sum(p.share for p in out) - 1.0) > 1e-9:
        raise PolicyError(f"{at}: the shares add up to {sum(p.share for p in out):g}, not 1")
    if any(b.days <= a.days for a, b in pairwise(out)):
        raise PolicyError(f"{at}: the days must rise from one instalment to the next")
    return tuple(out)


def _check(policy: TermsPolicy, file: str) -> None:
    """The last rule holds for everyone; no worse grade gets more generous terms than a better
    one, in any status and country class (open account at its cap: the most it can give)."""
    last = policy.rules[-1]
    if last.statuses or last.grade_from > 1 or last.country_class_from > 0:
        raise PolicyError(f"{file}: the last rule ({last.name!r}) must have no conditions")
    for status in Status:
        for country in range(UNRATED_CLASS + 1):
            previous: tuple[int, float] | None = None
            previous_rule = ""
            for grade in range(1, IN_DEFAULT_GRADE + 1):
                rule = policy.rule_for(status.value, grade, country)
                now = rule.generosity(rule.max_days)
                if previous is not None and now > previous:
                    raise PolicyError(
                        f"{file}: rule {rule.name!r} gives grade {grade} ({status.value}, country "
                        f"class {country if country < UNRATED_CLASS else 'unrated'}) more "
                        f"generous terms than rule {previous_rule!r} gives the grade before"
                    )
                previous, previous_rule = now, rule.name
