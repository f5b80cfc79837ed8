"""Country risk: the OECD table read with the stated rule for high-income members, unrated
countries explicit, the policy's cap and transfer-risk flag."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from features.country_risk import country_classes, country_risk_class, country_risk_label
from scoring.country import country_cap, transfer_risk
from scoring.limits import ClientExposure, recommend_limit
from scoring.policy import POLICY_FILE, CreditPolicy, PolicyError

POLICY = CreditPolicy.load()


def test_the_table_reads_with_the_high_income_rule_and_unrated_countries_apart() -> None:
    classes = country_classes()
    assert len(classes) > 150
    # classified by the OECD (30 January 2026)
    assert (classes["CN"], classes["IN"], classes["BR"], classes["TR"], classes["AF"]) == (
        2,
        3,
        4,
        5,
        7,
    )
    # high-income OECD and euro-area members: unclassified by the OECD, class 0 here
    assert classes["DE"] == classes["US"] == classes["PL"] == 0
    # not classified by the OECD (Andorra) and unknown codes: unrated, never 0
    got = country_risk_class(np.array(["AD", "ZZ", "DE", "TR"], dtype=object))
    assert np.isnan(got[0]) and np.isnan(got[1]) and list(got[2:]) == [0.0, 5.0]
    assert list(country_risk_label(got)) == ["unrated", "unrated", "0", "5"]


def test_the_cap_and_the_transfer_flag_follow_the_class() -> None:
    classes = np.array([0.0, 4.0, 5.0, 7.0, math.nan])
    caps = country_cap(classes, POLICY.country)
    assert list(caps) == [
        POLICY.country.limit_cap[0],
        POLICY.country.limit_cap[4],
        POLICY.country.limit_cap[5],
        POLICY.country.limit_cap[7],
        POLICY.country.limit_cap[8],
    ]
    assert list(transfer_risk(classes, POLICY.country)) == [False, False, True, True, True]


def test_a_client_in_a_risky_country_is_capped_and_told_why() -> None:
    client = ClientExposure(
        monthly_volume=400_000.0, open_balance=0.0, tenure_days=2000.0, on_time_months=60.0
    )
    free = recommend_limit(POLICY.limits, pd_=0.002, grade=2, client=client)
    risky = ClientExposure(
        **{**client.__dict__, "country_class": 7.0, "country_cap": POLICY.country.limit_cap[7]}
    )
    capped = recommend_limit(POLICY.limits, pd_=0.002, grade=2, client=risky)
    assert capped.limit == POLICY.country.limit_cap[7] < free.limit
    assert capped.rules == ["limit set by: country risk class 7 cap"]


def test_a_policy_with_a_cap_missing_for_unrated_countries_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(POLICY_FILE.read_text())
    raw["country"]["limit_cap"] = raw["country"]["limit_cap"][:8]
    path = tmp_path / "credit_policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"country\.limit_cap needs 9 values"):
        CreditPolicy.load(path)
