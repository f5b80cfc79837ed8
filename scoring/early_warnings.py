"""Early warnings: what changed about a client since the previous run that calls for a look."""

from __future__ import annotations

from typing import Any

import pandas as pd

PD_JUMP = 2.0  # PD at least doubled
NOTCHES = 2  # grade down two or more notches
EXPOSURE_GROWTH = 1.5  # open balance up 50 %...
EXPOSURE_FLOOR = 10_000.0  # ...and by at least this much


def early_warnings(
    clients: pd.DataFrame,
    max_dpd: pd.Series,
    prev_clients: pd.DataFrame | None,
    prev_max_dpd: pd.Series | None,
) -> list[dict[str, Any]]:
    """Clients whose PD at least doubled, whose grade fell two or more notches, who are newly 30+
    days past due, or whose exposure grew sharply since the previous run. `max_dpd`: each
    client's largest days past due (`max_days_past_due`), now and then."""
    now = clients.set_index("client_id")
    flags: dict[str, list[str]] = {}
    if prev_clients is None:
        return []
    prev = prev_clients.set_index("client_id")
    prev_dpd = prev_max_dpd if prev_max_dpd is not None else pd.Series(dtype="float64")
    common = now.index.intersection(prev.index)
    a, b = now.loc[common], prev.loc[common]
    for cid in common[(a["pd_12m"] >= PD_JUMP * b["pd_12m"]).to_numpy()]:
        flags.setdefault(cid, []).append(
            f"PD {prev.at[cid, 'pd_12m']:.1%} -> {now.at[cid, 'pd_12m']:.1%}"
        )
    for cid in common[(a["grade"] - b["grade"] >= NOTCHES).to_numpy()]:
        flags.setdefault(cid, []).append(f"grade {prev.at[cid, 'grade']} -> {now.at[cid, 'grade']}")
    dpd_now = max_dpd.reindex(common).fillna(0)
    dpd_then = prev_dpd.reindex(common).fillna(0)
    for cid in common[((dpd_now > 30) & (dpd_then <= 30)).to_numpy()]:
        flags.setdefault(cid, []).append(f"newly {int(dpd_now[cid])} days past due")
    ob_now, ob_then = a["open_balance"].fillna(0), b["open_balance"].fillna(0)
    grew = (ob_now >= EXPOSURE_GROWTH * ob_then) & (ob_now - ob_then >= EXPOSURE_FLOOR)
    for cid in common[grew.to_numpy()]:
        flags.setdefault(cid, []).append(f"open balance {ob_then[cid]:,.0f} -> {ob_now[cid]:,.0f}")
    rows = [
        {
            "client_id": cid,
            "pd_12m": float(now.at[cid, "pd_12m"]),
            "grade": int(now.at[cid, "grade"]),
            "expected_loss": float(now.at[cid, "expected_loss"]),
            "flags": reasons,
            "top_reason": str(now.at[cid, "reason_1"]),
        }
        for cid, reasons in flags.items()
    ]
    return sorted(rows, key=lambda r: (-r["expected_loss"], r["client_id"]))
