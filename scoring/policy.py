"""The credit policy: every number a credit manager sets, from one YAML file, checked on load.

`models/credit_policy.yaml` has one section per decision rule (status, limits, grades, warnings,
collections). Loading refuses an unknown key, a missing one, a wrong type or a value out of range,
naming the key (`limits.new_client.start_cap must be >= 0, got -5`), so a typo can never turn
into a silent default.
"""

from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import yaml

from features.errors import InputError
from scoring.paths import MODELS_DIR

POLICY_FILE = MODELS_DIR / "credit_policy.yaml"
GRADES = 10  # the master scale's grades 1..10; per-grade lists have one value each

T = TypeVar("T")


class PolicyError(InputError):
    """A policy file that cannot be used; the message names the file and the key."""


def _range(low: float | None = None, high: float | None = None) -> dict[str, float | None]:
    return {"min": low, "max": high}


@dataclass(frozen=True)
class StatusPolicy:
    """When a client counts as in default, dormant or new."""

    cure_days: int = field(metadata=_range(30, 3650))  # a default ends a year after its cause
    dormant_days: int = field(metadata=_range(30, 3650))  # no invoice for this long: dormant
    new_client_days: int = field(metadata=_range(0, 3650))  # younger than this: new


@dataclass(frozen=True)
class NewClientPolicy:
    start_cap: float = field(metadata=_range(0))
    step: float = field(metadata=_range(0))


@dataclass(frozen=True)
class LimitPolicy:
    """How a recommended limit follows from risk, purchases, terms, size and tenure, and when a
    decision holds, steps a cut or goes to an analyst."""

    lgd: float = field(metadata=_range(0, 1))
    ccf: float = field(metadata=_range(0, 1))
    gross_margin: float = field(metadata=_range(0, 1))  # a sale's margin (the profit view)
    refuse_pd: float = field(metadata=_range(0, 1))
    grace_days: int = field(metadata=_range(0, 365))
    terms_cover: tuple[float, ...] = field(metadata=_range(0, 10))  # by grade 1..10
    revenue_share_cap: float = field(metadata=_range(0, 1))
    equity_share_cap: float = field(metadata=_range(0, 10))
    new_client: NewClientPolicy
    keep_balance_grade: int = field(metadata=_range(0, GRADES))  # good standing: this grade...
    keep_balance_dpd: int = field(metadata=_range(0, 365))  # ...nothing further past due
    hold_dpd: int = field(metadata=_range(1, 365))  # more past due than this on...
    hold_floor: float = field(metadata=_range(0))  # ...at least this much overdue: hold orders
    cut_steps: int = field(metadata=_range(1, 12))  # a cut of a current limit, in monthly steps
    refer_exposure: float = field(metadata=_range(0))  # a cut of this much exposure...
    statement_months: int = field(metadata=_range(1, 120))  # ...with no newer statement: refer
    over_limit_tolerance: float = field(metadata=_range(0, 1))
    over_limit_floor: float = field(metadata=_range(0))


@dataclass(frozen=True)
class GradePolicy:
    """The decision PD: the point-in-time PD smoothed over runs, hard events moving it at once."""

    smoothing: float = field(metadata=_range(0.01, 1))  # weight of a new month's PD (log-odds)
    # log-odds the decision PD must pass its grade's band edge by before the grade moves:
    # quick to downgrade, slow to upgrade
    hysteresis_worse: float = field(metadata=_range(0, 3))
    hysteresis_better: float = field(metadata=_range(0, 3))
    max_step: int = field(metadata=_range(1, 9))  # notches a grade may move in one run
    hard_event_dpd: int = field(metadata=_range(1, 365))  # newly this overdue: a hard event


@dataclass(frozen=True)
class WarningPolicy:
    """What makes a change material enough to warn about."""

    pd_floor: float = field(metadata=_range(0, 1))  # no rating warning below this decision PD
    pd_jump: float = field(metadata=_range(1, 100))  # the decision PD rose this many times...
    notches: int = field(metadata=_range(1, GRADES))  # ...or the grade fell this many notches
    watch_grade: int = field(metadata=_range(1, GRADES))  # ...or into this grade or worse
    overdue_days: int = field(metadata=_range(1, 365))  # newly this many days past due...
    overdue_share_of_limit: float = field(metadata=_range(0, 10))  # ...on this share of the limit
    overdue_floor: float = field(metadata=_range(0))  # ...and at least this amount
    over_limit_share: float = field(metadata=_range(0, 10))  # over the limit by this share...
    over_limit_floor: float = field(metadata=_range(0))  # ...and this amount
    revenue_drop: float = field(metadata=_range(0, 1))  # a new statement: revenue down this much


@dataclass(frozen=True)
class CollectionsPolicy:
    """How likely an overdue balance is still collected at each escalation stage 1..4, and
    after (4 is legal action or a claim; the fifth value is what is left after it)."""

    recovery_by_stage: tuple[float, ...] = field(metadata=_range(0, 1))


@dataclass(frozen=True)
class CountryPolicy:
    """What the country's risk class (`features.country_risk`: OECD 0..7, or unrated) does."""

    # the most any client of a country may get, by class 0..7, then for unrated countries
    limit_cap: tuple[float, ...] = field(metadata=_range(0))
    # from this class up, payments may be blocked by the country itself: a transfer-risk flag
    transfer_risk_class: int = field(metadata=_range(0, 8))


@dataclass(frozen=True)
class LateInterestPolicy:
    """What an overdue invoice costs its client where no statute sets it
    (`models/late_interest.csv` names the statutes)."""

    # a year, simple interest, where no statute applies: the contract's rate
    contractual_rate: float = field(metadata=_range(0, 1))
    # a day, of the amount overdue, where contracts carry a daily penalty (e.g. China)
    daily_penalty_rate: float = field(metadata=_range(0, 0.01))


@dataclass(frozen=True)
class CreditPolicy:
    status: StatusPolicy
    limits: LimitPolicy
    grades: GradePolicy
    warnings: WarningPolicy
    collections: CollectionsPolicy
    country: CountryPolicy
    late_interest: LateInterestPolicy

    @classmethod
    def load(cls, path: Path | None = None) -> CreditPolicy:
        path = path or POLICY_FILE
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{path}: cannot read the policy ({exc})") from None
        policy = _build(cls, raw, _At(path.name, ""))
        _check(policy, path.name)
        return policy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CreditPolicy:
        """The inverse of `to_dict` (e.g. the policy shipped to Spark executors)."""
        return _build(cls, data, _At("policy", ""))


@dataclass(frozen=True)
class _At:
    """Where in which file a value sits, for error messages."""

    file: str
    path: str  # dotted keys so far, ending in "." (or empty at the top)

    def key(self, name: str) -> str:
        return f"{self.file}: {self.path}{name}"


def _build(kind: type[T], raw: object, at: _At) -> T:
    """`raw` (parsed YAML) as the dataclass `kind`, every key checked."""
    where = at.key("").rstrip(". ") if at.path else at.file
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(kind)
    known = [f.name for f in fields(kind)]  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise PolicyError(
            f"{at.key(str(unknown[0]))} is not a known key (known: {', '.join(known)})"
        )
    values: dict[str, Any] = {}
    for name in known:
        if name not in raw:
            raise PolicyError(f"{at.key(name)} is missing")
        values[name] = _value(
            hints[name], raw[name], _meta(kind, name), _At(at.file, f"{at.path}{name}")
        )
    return kind(**values)


def _meta(kind: type, name: str) -> typing.Mapping[str, Any]:
    return next(f.metadata for f in fields(kind) if f.name == name)


def _value(hint: Any, raw: object, meta: typing.Mapping[str, Any], at: _At) -> Any:
    if is_dataclass(hint):
        return _build(hint, raw, _At(at.file, f"{at.path}."))  # type: ignore[arg-type]
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(raw, list | tuple):
            raise PolicyError(f"{at.key('')} must be a list, got {raw!r}")
        return tuple(
            _scalar(item, v, meta, _At(at.file, f"{at.path}[{i}]")) for i, v in enumerate(raw)
        )
    return _scalar(hint, raw, meta, at)


def _scalar(kind: Any, raw: object, meta: typing.Mapping[str, Any], at: _At) -> Any:
    where = at.key("")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PolicyError(f"{where} must be a number, got {raw!r}")
    if not math.isfinite(raw):
        raise PolicyError(f"{where} must be a finite number, got {raw!r}")
    if kind is int and not float(raw).is_integer():
        raise PolicyError(f"{where} must be a whole number, got {raw!r}")
    value = int(raw) if kind is int else float(raw)
    low, high = meta.get("min"), meta.get("max")
    if low is not None and value < low:
        raise PolicyError(f"{where} must be >= {low:g}, got {raw!r}")
    if high is not None and value > high:
        raise PolicyError(f"{where} must be <= {high:g}, got {raw!r}")
    return value


def _check(policy: CreditPolicy, file: str) -> None:
    """Rules across keys: one value per grade, never more generous for a worse grade."""
    lim = policy.limits
    for name in ("terms_cover",):
        values = getattr(lim, name)
        if len(values) != GRADES:
            raise PolicyError(
                f"{file}: limits.{name} needs one value per grade 1..{GRADES}, got {len(values)}"
            )
        if any(b > a for a, b in pairwise(values)):
            raise PolicyError(
                f"{file}: limits.{name} must not rise from a grade to a worse one: {list(values)}"
            )
    caps = policy.country.limit_cap
    if len(caps) != 9 or any(b > a for a, b in pairwise(caps[:8])):
        raise PolicyError(
            f"{file}: country.limit_cap needs 9 values (classes 0..7, then unrated), never "
            f"rising from a class to a riskier one: {list(caps)}"
        )
    recovery = policy.collections.recovery_by_stage
    if len(recovery) != 5 or any(b > a for a, b in pairwise(recovery)):
        raise PolicyError(
            f"{file}: collections.recovery_by_stage needs 5 values (stages 1..4 and after), "
            f"never rising from a stage to the next: {list(recovery)}"
        )
