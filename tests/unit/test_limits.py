"""Credit limits and the policy file: properties that must hold for any client, decisions by hand,
and a policy file with a typo refused by name."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from scoring.bundle import MasterScale
from scoring.limits import (
    ClientExposure,
    decide_limit,
    over_limit,
    recommend_limit,
    recommend_limits,
)
from scoring.policy import POLICY_FILE, CreditPolicy, PolicyError
from scoring.status import Status

POLICY = CreditPolicy.load()
LIMITS = POLICY.limits
SCALE = MasterScale.load()

clients = st.builds(
    ClientExposure,
    monthly_volume=st.one_of(st.just(math.nan), st.floats(0, 5e6)),
    open_balance=st.floats(0, 1e7),
    tenure_days=st.floats(0, 5000),
    on_time_months=st.floats(0, 60),
    usual_terms_days=st.one_of(st.just(math.nan), st.floats(0, 180)),
    revenue=st.one_of(st.just(math.nan), st.floats(0, 1e9)),
    equity=st.one_of(st.just(math.nan), st.floats(-1e7, 1e9)),
    status=st.sampled_from([s.value for s in Status]),
    country_class=st.one_of(st.just(math.nan), st.integers(0, 7).map(float)),
    country_cap=st.one_of(st.just(math.inf), st.floats(0, 3e6)),
)
pds = st.floats(1e-5, 0.999)


def _grade(p: float) -> int:
    return int(SCALE.grade([p])[0])


@given(client=clients, a=pds, b=pds)
def test_a_worse_grade_never_gets_a_higher_limit(
    client: ClientExposure, a: float, b: float
) -> None:
    better, worse = sorted((a, b))
    assert recommend_limit(LIMITS, pd_=worse, grade=_grade(worse), client=client).limit <= (
        recommend_limit(LIMITS, pd_=better, grade=_grade(better), client=client).limit
    )


@given(client=clients, p=pds, requested=st.floats(1, 1e8))
def test_a_client_in_default_or_undetermined_gets_nothing(
    client: ClientExposure, p: float, requested: float
) -> None:
    """Whatever its features and PD, a client in default is never approved and has no limit."""
    for status in (Status.IN_DEFAULT, Status.UNDETERMINED):
        c = ClientExposure(**{**client.__dict__, "status": status.value})
        assert recommend_limit(LIMITS, pd_=p, grade=_grade(p), client=c).limit == 0
        decision = decide_limit(LIMITS, requested=requested, pd_=p, grade=_grade(p), client=c)
        assert decision.decision in ("refuse", "refer") and decision.approved_amount == 0
    dead = ClientExposure(**{**client.__dict__, "status": Status.IN_DEFAULT.value})
    decision = decide_limit(LIMITS, requested=requested, pd_=p, grade=_grade(p), client=dead)
    assert decision.decision == "refuse" and "stop deliveries" in decision.rules[0]


@given(client=clients, p=st.floats(LIMITS.refuse_pd, 0.999), requested=st.floats(1, 1e7))
def test_nothing_is_approved_above_the_refusal_pd(
    client: ClientExposure, p: float, requested: float
) -> None:
    decision = decide_limit(LIMITS, requested=requested, pd_=p, grade=_grade(p), client=client)
    assert decision.approved_amount == 0 and decision.decision in ("refuse", "refer")


@given(client=clients, p=pds, requested=st.floats(1, 1e8))
def test_a_limit_never_exceeds_the_policy_caps(
    client: ClientExposure, p: float, requested: float
) -> None:
    grade = _grade(p)
    limit = recommend_limit(LIMITS, pd_=p, grade=grade, client=client).limit
    assert limit <= LIMITS.grade_cap[grade - 1]
    assert limit * p * LIMITS.lgd <= LIMITS.max_expected_loss_per_client + 1e-6
    if math.isfinite(client.revenue) and client.revenue > 0:
        assert limit <= client.revenue * LIMITS.revenue_share_cap + 1e-6
    if math.isfinite(client.equity):
        assert limit <= max(client.equity, 0) * LIMITS.equity_share_cap + 1e-6
    new = LIMITS.new_client
    if client.status == Status.NEW:
        assert limit <= new.start_cap + new.step * math.floor(max(client.on_time_months, 0))
    if client.status == Status.DORMANT:
        assert limit <= max(client.open_balance, new.start_cap)
    if client.status == Status.ACTIVE and math.isfinite(client.monthly_volume):
        terms = client.usual_terms_days if math.isfinite(client.usual_terms_days) else 30.0
        need = client.monthly_volume * (terms + LIMITS.grace_days) / 30.44
        assert limit <= need * LIMITS.terms_cover[grade - 1] + 1e-6
    decision = decide_limit(LIMITS, requested=requested, pd_=p, grade=grade, client=client)
    assert decision.approved_amount <= min(requested, limit) + 1e-9
    assert decision.rules  # every decision says why


def test_decisions_by_hand() -> None:
    """A grade-2 client buying 100,000 a month on 60-day terms: 90 days of purchases (with 30
    of grace) x 1.9 cover = 561,000, the binding rule named."""
    solid = ClientExposure(
        monthly_volume=100_000,
        open_balance=150_000,
        tenure_days=2000,
        on_time_months=60,
        usual_terms_days=60,
    )
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=solid)
    assert rec.limit == 561_000 and "60 days of terms plus 30 of grace" in rec.rules[0]
    assert decide_limit(LIMITS, requested=400_000, pd_=0.004, grade=2, client=solid).decision == (
        "approve"
    )
    partial = decide_limit(LIMITS, requested=2_000_000, pd_=0.004, grade=2, client=solid)
    assert partial.decision == "approve_in_part" and partial.approved_amount == 561_000
    assert decide_limit(LIMITS, requested=700_000, pd_=0.004, grade=2, client=solid).decision == (
        "refer"
    )
    # shorter terms, a smaller limit: the limit follows the terms
    short = ClientExposure(**{**solid.__dict__, "usual_terms_days": 30.0})
    assert recommend_limit(LIMITS, pd_=0.004, grade=2, client=short).limit == 374_000
    # zero purchases are zero, not unknown
    idle = ClientExposure(**{**solid.__dict__, "monthly_volume": 0.0})
    assert recommend_limit(LIMITS, pd_=0.004, grade=2, client=idle).limit == 0
    new = ClientExposure(
        monthly_volume=100_000,
        open_balance=0,
        tenure_days=60,
        on_time_months=2,
        status=Status.NEW.value,
    )
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=new)
    assert rec.limit == 30_000 and "new client" in rec.rules[0]
    dormant = ClientExposure(**{**solid.__dict__, "status": Status.DORMANT.value})
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=dormant)
    assert rec.limit == 150_000 and "dormant" in rec.rules[0]
    # a request from a client whose balance is far over it goes to an analyst
    over = ClientExposure(**{**solid.__dict__, "open_balance": 300_000})
    assert decide_limit(LIMITS, requested=200_000, pd_=0.004, grade=2, client=over).decision == (
        "refer"
    )
    assert decide_limit(LIMITS, requested=10_000, pd_=0.15, grade=9, client=solid).decision == (
        "refer"
    )


def test_the_over_limit_flag_ignores_a_small_excess_and_a_missing_limit() -> None:
    balance = np.array([104_000.0, 120_000.0, 1_500.0, 50_000.0])
    limit = np.array([100_000.0, 100_000.0, 0.0, np.nan])
    assert over_limit(LIMITS, balance, limit).tolist() == [False, True, True, False]


@given(rows=st.lists(st.tuples(clients, pds), min_size=1, max_size=20))
def test_the_vectorised_policy_equals_the_rule_by_rule_one(
    rows: list[tuple[ClientExposure, float]],
) -> None:
    p = np.array([pd_ for _, pd_ in rows])
    grade = SCALE.grade(p)
    fields = (
        "monthly_volume",
        "usual_terms_days",
        "open_balance",
        "revenue",
        "equity",
        "tenure_days",
        "on_time_months",
        "country_class",
        "country_cap",
    )
    col = {f: np.array([getattr(c, f) for c, _ in rows], dtype="float64") for f in fields}
    vector = recommend_limits(
        LIMITS, pd_=p, grade=grade, status=np.array([c.status for c, _ in rows]), **col
    )
    scalar = [
        recommend_limit(LIMITS, pd_=float(pd_), grade=int(g), client=c).limit
        for (c, pd_), g in zip(rows, grade, strict=True)
    ]
    assert vector.tolist() == scalar


def _write(tmp_path: Path, change: object) -> Path:
    raw = yaml.safe_load(POLICY_FILE.read_text())
    change(raw)  # type: ignore[operator]
    path = tmp_path / "credit_policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["limits"].update(grace_dayz=30), r"limits\.grace_dayz is not a known key"),
        (
            lambda r: r["limits"]["new_client"].update(start_cap=-5),
            r"limits\.new_client\.start_cap must be >= 0",
        ),
        (lambda r: r["limits"].pop("lgd"), r"limits\.lgd is missing"),
        (lambda r: r["grades"].update(smoothing="fast"), r"grades\.smoothing must be a number"),
        (lambda r: r["status"].update(cure_days=1.5), r"status\.cure_days must be a whole number"),
        (
            lambda r: r["limits"].update(terms_cover=[1.0] * 9),
            r"terms_cover needs one value per grade",
        ),
        (
            lambda r: r["limits"].update(grade_cap=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            r"grade_cap must not rise",
        ),
        (lambda r: r.update(extra={}), r"extra is not a known key"),
        (
            lambda r: r["warnings"].update(pd_floor=float("inf")),
            r"warnings\.pd_floor must be a finite number",
        ),
    ],
)
def test_a_policy_file_with_a_bad_key_or_value_is_refused_naming_the_key(
    tmp_path: Path, change: object, message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        CreditPolicy.load(_write(tmp_path, change))


def test_the_shipped_policy_loads_and_survives_plain_data() -> None:
    assert CreditPolicy.from_dict(POLICY.to_dict()) == POLICY
