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
    overdue_balance=st.floats(0, 1e6),
    max_days_past_due=st.floats(0, 400),
    statement_age_days=st.one_of(st.just(math.nan), st.floats(0, 3000)),
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
    """Every cap holds, except that a client in good standing is never limited below what it
    owes nor below its usual purchases over its terms and grace (a cap limits its headroom), and
    a held one no higher than its balance less the overdue."""
    grade = _grade(p)
    limit = recommend_limit(LIMITS, pd_=p, grade=grade, client=client).limit
    good = (
        grade <= LIMITS.keep_balance_grade
        and client.max_days_past_due <= LIMITS.keep_balance_dpd
        and client.status in (Status.ACTIVE, Status.NEW)
    )
    owed = math.ceil(client.open_balance / 1000) * 1000 if client.open_balance > 0 else 0.0
    if client.status in (Status.ACTIVE, Status.NEW) and math.isfinite(client.monthly_volume):
        days = (client.usual_terms_days if math.isfinite(client.usual_terms_days) else 30.0) + 30
        owed = max(owed, math.floor(client.monthly_volume * days / 30.44 / 1000) * 1000)

    def within(cap: float) -> bool:
        return limit <= (max(cap, owed + 1000) if good else cap) + 1e-6

    if math.isfinite(client.revenue) and client.revenue > 0:
        assert within(client.revenue * LIMITS.revenue_share_cap)
    if math.isfinite(client.equity):
        assert within(max(client.equity, 0) * LIMITS.equity_share_cap)
    new = LIMITS.new_client
    if client.status == Status.NEW:
        assert within(new.start_cap + new.step * math.floor(max(client.on_time_months, 0)))
    if client.status == Status.DORMANT:
        assert limit <= max(client.open_balance, new.start_cap)
    if client.status == Status.ACTIVE and math.isfinite(client.monthly_volume):
        terms = client.usual_terms_days if math.isfinite(client.usual_terms_days) else 30.0
        need = client.monthly_volume * (terms + LIMITS.grace_days) / 30.44
        assert within(need * LIMITS.terms_cover[grade - 1])
    assert limit <= client.country_cap + 1e-6  # transfer risk binds whatever the standing
    if client.max_days_past_due > LIMITS.hold_dpd and client.overdue_balance >= LIMITS.hold_floor:
        assert limit <= max(client.open_balance - client.overdue_balance, 0) + 1e-6
    decision = decide_limit(LIMITS, requested=requested, pd_=p, grade=grade, client=client)
    assert decision.approved_amount <= min(requested, limit) + 1e-9 or decision.decision == "hold"
    assert decision.rules  # every decision says why


def test_decisions_by_hand() -> None:
    """A grade-2 client buying 100,000 a month on 60-day terms: 90 days of purchases (with 30
    of grace) x 3.3 cover = 975,000, the binding rule named."""
    solid = ClientExposure(
        monthly_volume=100_000,
        open_balance=150_000,
        tenure_days=2000,
        on_time_months=60,
        usual_terms_days=60,
        statement_age_days=200,
    )
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=solid)
    assert rec.limit == 975_000 and "60 days of terms plus 30 of grace" in rec.rules[0]
    assert decide_limit(LIMITS, requested=400_000, pd_=0.004, grade=2, client=solid).decision == (
        "approve"
    )
    partial = decide_limit(LIMITS, requested=2_000_000, pd_=0.004, grade=2, client=solid)
    assert partial.decision == "approve_in_part" and partial.approved_amount == 975_000
    # the limit in force above the recommendation: cut in three monthly steps, not overnight
    cut = decide_limit(LIMITS, requested=2_000_000, pd_=0.004, grade=2, client=solid, current=True)
    assert cut.decision == "reduce" and cut.approved_amount == 1_658_000
    assert "1,658,000 now, then 1,316,000 at the review in 1 month, then 975,000" in cut.rules[-1]
    # ... and a cut that large with no recent statement goes to an analyst
    unknown = ClientExposure(**{**solid.__dict__, "statement_age_days": math.nan})
    refer = decide_limit(
        LIMITS, requested=2_000_000, pd_=0.004, grade=2, client=unknown, current=True
    )
    assert refer.decision == "refer" and "no statement newer than 18 months" in refer.rules[-1]
    # shorter terms, a smaller limit: the limit follows the terms
    short = ClientExposure(**{**solid.__dict__, "usual_terms_days": 30.0})
    assert recommend_limit(LIMITS, pd_=0.004, grade=2, client=short).limit == 650_000
    # a client in good standing is not limited below what it owes, and says why
    small = ClientExposure(**{**solid.__dict__, "monthly_volume": 10_000.0})
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=small)
    assert rec.limit == 150_000 and "not below what it owes (150,000)" in rec.rules[1]
    # ... a riskier one is
    assert recommend_limit(LIMITS, pd_=0.06, grade=7, client=small).limit == 70_000
    # 10 % of a revenue of 2,000,000 would cut it below its usual 90 days of purchases (295,663):
    # a size cap limits the headroom, not the usual orders of a client in good standing
    capped = ClientExposure(**{**solid.__dict__, "revenue": 2_000_000.0})
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=capped)
    assert rec.limit == 295_000 and "10% of annual revenue" in rec.rules[0]
    assert "not below its usual purchases over its terms and grace (295,000)" in rec.rules[1]
    new = ClientExposure(
        monthly_volume=100_000,
        open_balance=0,
        tenure_days=60,
        on_time_months=2,
        status=Status.NEW.value,
    )
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=new)
    # the ramp (10,000 + 2 x 10,000) limits its headroom, not its usual 60 days of purchases
    assert rec.limit == 197_000 and "new client" in rec.rules[0] and "usual" in rec.rules[1]
    unknown_new = ClientExposure(**{**new.__dict__, "monthly_volume": math.nan})
    assert recommend_limit(LIMITS, pd_=0.004, grade=2, client=unknown_new).limit == 30_000
    dormant = ClientExposure(**{**solid.__dict__, "status": Status.DORMANT.value})
    rec = recommend_limit(LIMITS, pd_=0.004, grade=2, client=dormant)
    assert rec.limit == 150_000 and "dormant" in rec.rules[0]
    # 40,000 overdue, some of it 80 days: no new orders until the balance falls to 110,000
    late = ClientExposure(**{**solid.__dict__, "overdue_balance": 40_000, "max_days_past_due": 80})
    held = decide_limit(LIMITS, requested=400_000, pd_=0.02, grade=4, client=late, current=True)
    assert held.decision == "hold" and held.approved_amount == 110_000
    assert "no new orders until the balance falls to 110,000" in " ".join(held.rules)


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
        "overdue_balance",
        "max_days_past_due",
        "statement_age_days",
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
            lambda r: r["limits"].update(terms_cover=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            r"terms_cover must not rise",
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
