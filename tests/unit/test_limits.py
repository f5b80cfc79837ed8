"""Credit-limit policy: properties that must hold for any client, and decisions by hand."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from scoring.bundle import MasterScale
from scoring.limits import ClientExposure, LimitPolicy, decide_limit, recommend_limit

POLICY = LimitPolicy.load()
SCALE = MasterScale.load()

clients = st.builds(
    ClientExposure,
    monthly_volume=st.one_of(st.just(math.nan), st.floats(0, 5e6)),
    open_balance=st.floats(0, 1e7),
    tenure_days=st.floats(0, 5000),
    on_time_months=st.floats(0, 60),
    revenue=st.one_of(st.just(math.nan), st.floats(0, 1e9)),
    equity=st.one_of(st.just(math.nan), st.floats(-1e7, 1e9)),
    thin_file=st.booleans(),
)
pds = st.floats(1e-5, 0.999)


def _grade(p: float) -> int:
    return int(SCALE.grade([p])[0])


@given(client=clients, a=pds, b=pds)
def test_a_worse_grade_never_gets_a_higher_limit(
    client: ClientExposure, a: float, b: float
) -> None:
    better, worse = sorted((a, b))
    assert recommend_limit(POLICY, pd_=worse, grade=_grade(worse), client=client).limit <= (
        recommend_limit(POLICY, pd_=better, grade=_grade(better), client=client).limit
    )


@given(client=clients, p=st.floats(POLICY.refuse_pd, 0.999), requested=st.floats(1, 1e7))
def test_nothing_is_approved_above_the_refusal_pd(
    client: ClientExposure, p: float, requested: float
) -> None:
    decision = decide_limit(POLICY, requested=requested, pd_=p, grade=_grade(p), client=client)
    assert decision.decision == "refuse" and decision.approved_amount == 0


@given(client=clients, p=pds, requested=st.floats(1, 1e8))
def test_a_limit_never_exceeds_the_policy_caps(
    client: ClientExposure, p: float, requested: float
) -> None:
    grade = _grade(p)
    rec = recommend_limit(POLICY, pd_=p, grade=grade, client=client)
    assert rec.limit <= POLICY.grade_cap[grade - 1]
    assert rec.limit * p * POLICY.lgd <= POLICY.max_expected_loss_per_client + 1e-6
    decision = decide_limit(POLICY, requested=requested, pd_=p, grade=grade, client=client)
    assert decision.approved_amount <= min(requested, rec.limit) + 1e-9
    assert decision.rules  # every decision says why


def test_decisions_by_hand() -> None:
    solid = ClientExposure(
        monthly_volume=100_000, open_balance=50_000, tenure_days=2000, on_time_months=60
    )
    assert (
        decide_limit(POLICY, requested=150_000, pd_=0.004, grade=2, client=solid).decision
        == "approve"
    )
    partial = decide_limit(POLICY, requested=900_000, pd_=0.004, grade=2, client=solid)
    assert (
        partial.decision == "approve_in_part" and partial.approved_amount == 300_000
    )  # 3 months of sales
    assert (
        decide_limit(POLICY, requested=400_000, pd_=0.004, grade=2, client=solid).decision
        == "refer"
    )
    new = ClientExposure(monthly_volume=100_000, open_balance=0, tenure_days=60, on_time_months=2)
    rec = recommend_limit(POLICY, pd_=0.004, grade=2, client=new)
    assert rec.limit == 30_000 and "new client" in rec.rules[0]
    assert (
        decide_limit(POLICY, requested=10_000, pd_=0.15, grade=9, client=solid).decision == "refer"
    )


@given(rows=st.lists(st.tuples(clients, pds), min_size=1, max_size=20))
def test_the_vectorised_policy_equals_the_rule_by_rule_one(
    rows: list[tuple[ClientExposure, float]],
) -> None:
    import numpy as np

    from scoring.limits import recommend_limits

    p = np.array([pd_ for _, pd_ in rows])
    grade = SCALE.grade(p)
    col = {
        f: np.array([getattr(c, f) for c, _ in rows], dtype="float64")
        for f in ("monthly_volume", "revenue", "equity", "tenure_days", "on_time_months")
    }
    vector = recommend_limits(
        POLICY, pd_=p, grade=grade, thin_file=np.array([c.thin_file for c, _ in rows]), **col
    )
    scalar = [
        recommend_limit(POLICY, pd_=float(pd_), grade=int(g), client=c).limit
        for (c, pd_), g in zip(rows, grade, strict=True)
    ]
    assert vector.tolist() == scalar
