"""No leakage: any event dated on or after `as_of` leaves every feature of that snapshot unchanged."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from features.contract import Ledger
from features.payment_behaviour import build_client_features, build_invoice_features

AS_OF_CHOICES = ["2023-09-30", "2024-03-31", "2024-08-15", "2025-01-31"]


def _day(as_of: pd.Timestamp, offset: int) -> pd.Timestamp:
    return as_of + pd.Timedelta(days=offset)


def _mutate(
    ledger: Ledger, as_of: pd.Timestamp, kind: str, pick: float, offset: int, amount: float
) -> Ledger:
    """Change one thing that happens on or after `as_of` (offset >= 0 days later)."""
    t = {n: f.copy() for n, f in ledger.tables().items()}
    inv = t["invoices"]
    clients = t["clients"]
    client = clients["client_id"].iloc[int(pick * (len(clients) - 1))]
    when = _day(as_of, offset)
    if kind == "add_invoice":
        new = inv.iloc[[0]].copy()
        new["invoice_id"], new["client_id"] = "NEW-INVOICE", client
        new["issued_on"], new["due_on"] = when, when + pd.Timedelta(days=30)
        new["amount"], new["paid_amount"], new["disputed"] = amount, 0.0, pick > 0.5
        new["paid_on"] = when + pd.Timedelta(days=offset % 90) if pick > 0.3 else pd.NaT
        t["invoices"] = pd.concat([inv, new], ignore_index=True)
    elif kind == "remove_invoice":
        later = inv.index[inv["issued_on"] >= as_of]
        t["invoices"] = inv.drop(later[int(pick * (len(later) - 1))])
    elif kind == "settle_later":
        # An invoice still open at as_of (neither paid nor written off before it): its settlement,
        # amount received, dispute and write-off may all change. An invoice written off before
        # as_of is not open; moving its write-off date would change the past.
        open_then = inv.index[
            (inv["issued_on"] < as_of)
            & ~(inv["paid_on"] < as_of)
            & ~(inv["written_off_on"] < as_of)
        ]
        i = open_then[int(pick * (len(open_then) - 1))]
        inv.loc[i, "paid_on"] = max(when, inv.loc[i, "issued_on"]) if pick > 0.2 else pd.NaT
        inv.loc[i, "paid_amount"] = amount
        inv.loc[i, "disputed"] = not inv.loc[i, "disputed"]
        inv.loc[i, "written_off_on"] = when if pick < 0.5 else pd.NaT
    elif kind == "add_payment":
        open_then = inv[(inv["issued_on"] < as_of) & ~(inv["paid_on"] < as_of)]
        target = open_then["invoice_id"].iloc[int(pick * (len(open_then) - 1))]
        pay = pd.DataFrame({"invoice_id": [target], "paid_on": [when], "amount": [amount]})
        t["payments"] = pd.concat(
            [t["payments"], pay.astype(t["payments"].dtypes.to_dict())], ignore_index=True
        )
    elif kind == "remove_payment":
        later = t["payments"].index[t["payments"]["paid_on"] >= as_of]
        if len(later):
            t["payments"] = t["payments"].drop(later[int(pick * (len(later) - 1))])
    elif kind == "add_statement":
        fin = t["financials"]
        new = fin.iloc[[0]].copy()
        new["client_id"], new["published_on"] = client, when
        new["period_end"] = as_of - pd.Timedelta(days=1)
        new["revenue"], new["equity"] = amount, -amount
        t["financials"] = pd.concat([fin, new], ignore_index=True)
    elif kind == "add_insolvency":
        # A client declared insolvent before as_of keeps it: replacing that row (one per client)
        # would change the past (hypothesis found it: insolvency_days 180 -> missing).
        ins = t["insolvencies"]
        if (ins.loc[ins["client_id"] == client, "declared_on"] < as_of).any():
            return ledger.with_tables(t)
        ins = ins[ins["client_id"] != client]
        new = pd.DataFrame({"client_id": [client], "declared_on": [when]}).astype(
            ins.dtypes.to_dict()
        )
        t["insolvencies"] = pd.concat([ins, new], ignore_index=True)
    elif kind == "add_client":
        new = clients.iloc[[0]].copy()
        new["client_id"], new["onboarded_on"] = "NEW-CLIENT", when
        t["clients"] = pd.concat([clients, new], ignore_index=True)
    return ledger.with_tables(t)


KINDS = [
    "add_invoice",
    "remove_invoice",
    "settle_later",
    "add_payment",
    "remove_payment",
    "add_statement",
    "add_insolvency",
    "add_client",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Every kind of change on the as_of day itself, where an off-by-one would leak:
@example(as_of="2024-03-31", kind="add_invoice", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="remove_invoice", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="settle_later", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="add_payment", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="remove_payment", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="add_statement", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="add_insolvency", pick=0.1, offset=0, amount=1234.0)
@example(as_of="2024-03-31", kind="add_client", pick=0.1, offset=0, amount=1234.0)
@given(
    as_of=st.sampled_from(AS_OF_CHOICES),
    kind=st.sampled_from(KINDS),
    pick=st.floats(0, 1),
    offset=st.just(0) | st.integers(0, 400),  # the boundary day itself is the likeliest leak
    amount=st.floats(1, 1e6),
)
def test_events_on_or_after_as_of_change_no_client_feature(
    small_ledger: Ledger, as_of: str, kind: str, pick: float, offset: int, amount: float
) -> None:
    ts = pd.Timestamp(as_of)
    before = build_client_features(small_ledger, as_of_dates=[ts])
    after = build_client_features(
        _mutate(small_ledger, ts, kind, pick, offset, amount), as_of_dates=[ts]
    )
    pd.testing.assert_frame_equal(before, after)


def _later_rates(ledger: Ledger, after: pd.Timestamp, factor: float, pick: float) -> Ledger:
    """Every rate dated after `after` scaled by `factor`, and a new rate the day after it."""
    rates = ledger.fx_rates.copy()
    later = rates["date"] > after
    rates.loc[later, "rate"] = rates.loc[later, "rate"] * factor
    codes = sorted(rates["currency"].unique())
    new = pd.DataFrame(
        {
            "date": [after + pd.Timedelta(days=1)],
            "currency": [codes[int(pick * (len(codes) - 1))]],
            "rate": [factor],
        }
    ).astype(rates.dtypes.to_dict())
    rates = pd.concat([rates[rates["date"] != new["date"].iloc[0]], new], ignore_index=True)
    return replace(ledger, fx_rates=rates)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(as_of="2024-03-31", factor=3.0, pick=0.5)
@given(as_of=st.sampled_from(AS_OF_CHOICES), factor=st.floats(0.2, 5.0), pick=st.floats(0, 1))
def test_rates_dated_after_as_of_change_no_client_feature(
    small_ledger: Ledger, as_of: str, factor: float, pick: float
) -> None:
    """Amounts convert at the rate known on `as_of` (the latest dated on or before it): a later
    rate, however different, changes nothing; the ledger's cross-border clients make it bite."""
    ts = pd.Timestamp(as_of)
    assert small_ledger.rates.converts
    before = build_client_features(small_ledger, as_of_dates=[ts])
    after = build_client_features(_later_rates(small_ledger, ts, factor, pick), as_of_dates=[ts])
    pd.testing.assert_frame_equal(before, after)


def test_rates_known_on_as_of_do_change_the_amounts(small_ledger: Ledger) -> None:
    """The property above is not vacuous: the rates up to `as_of` are the ones used."""
    ts = pd.Timestamp("2024-03-31")
    before = build_client_features(small_ledger, as_of_dates=[ts])
    doubled = _later_rates(small_ledger, ts - pd.Timedelta(days=40), 2.0, 0.5)
    after = build_client_features(doubled, as_of_dates=[ts])
    foreign = small_ledger.invoices.loc[
        small_ledger.invoices["currency"] != "EUR", "client_id"
    ].unique()
    mine = before["client_id"].isin(foreign).to_numpy() & (before["open_balance"] > 0).to_numpy()
    assert mine.any()
    ratio = after["open_balance"].to_numpy()[mine] / before["open_balance"].to_numpy()[mine]
    assert (ratio > 1.5).mean() > 0.9
    domestic = ~before["client_id"].isin(foreign).to_numpy()
    pd.testing.assert_frame_equal(before[domestic], after[domestic])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.floats(0, 1), factor=st.floats(0.2, 5.0))
def test_an_invoices_features_read_no_rate_after_its_issue_date(
    small_ledger: Ledger, pick: float, factor: float
) -> None:
    inv = small_ledger.invoices[small_ledger.invoices["currency"] != "EUR"]
    target = inv.iloc[int(pick * (len(inv) - 1))]
    ids = pd.Series([target["invoice_id"]])
    before = build_invoice_features(small_ledger, invoices=ids)
    after = build_invoice_features(
        _later_rates(small_ledger, target["issued_on"], factor, pick), invoices=ids
    )
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.floats(0, 1), offset=st.integers(0, 200), amount=st.floats(1, 1e6))
def test_an_invoices_own_outcome_never_changes_its_features(
    small_ledger: Ledger, pick: float, offset: int, amount: float
) -> None:
    """Settlement, amount received, dispute and write-off of an invoice are outcomes, not features."""
    inv = small_ledger.invoices
    target = inv.iloc[int(pick * (len(inv) - 1))]
    ids = pd.Series([target["invoice_id"]])
    before = build_invoice_features(small_ledger, invoices=ids)
    changed = inv.copy()
    i = changed.index[changed["invoice_id"] == target["invoice_id"]][0]
    changed.loc[i, "paid_on"] = target["issued_on"] + pd.Timedelta(days=offset)
    changed.loc[i, "paid_amount"] = amount
    changed.loc[i, "disputed"] = not target["disputed"]
    changed.loc[i, "written_off_on"] = target["issued_on"] + pd.Timedelta(days=offset + 1)
    after = build_invoice_features(small_ledger.with_tables({"invoices": changed}), invoices=ids)
    pd.testing.assert_frame_equal(before, after)
