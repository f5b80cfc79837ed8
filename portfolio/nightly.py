"""The nightly run as a job a scheduler can own: score the day after the extraction into the runs
root, continue the latest earlier run, monitor, keep the last N runs, and leave one status line.

Monitoring recommends a retraining (in the status line, the report and the exit code) when the
score shifted (PSI of the PD at or above 0.25 against the champion's training population or the
previous run), when more than `max_shifted_share` of the features shifted, or when the per-grade
backtest of the run twelve months back, against tonight's ledger, finds a grade whose realised
default rate the PD does not explain.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.io import atomic_file, check_files
from features.labels import DEFAULT_HORIZON_MONTHS
from portfolio.layout import LATEST, VERSIONS, RunsRoot, RunsRootError, check_root
from portfolio.monitor import backtest_run, monitor_run, write_monitoring
from portfolio.run import RunInputError, run_scoring

STATUS = "status.txt"  # under the runs root: the latest night's one line
MAX_SHIFTED_SHARE = 0.2


@dataclass
class NightlyResult:
    run: Path
    previous: Path | None
    status: str  # one line: OK or RETRAIN first, then the figures
    retrain: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)


def check_nightly(ledger_dir: Path, runs: Path, keep: int | None) -> pd.Timestamp:
    """Everything checked before any work: the ledger's files and manifest, the runs root
    writable, `keep`; returns the scoring day."""
    if keep is not None and keep < 1:
        raise RunInputError("--keep", f"must be at least 1, not {keep}")
    try:
        check_root(runs)
    except RunsRootError as exc:
        raise RunInputError("--runs", str(exc)) from None
    files = check_files(ledger_dir)
    if files.extracted_on is None:
        raise RunInputError(
            "--ledger",
            f"{ledger_dir} has no manifest.json with extracted_on: the night's scoring day is "
            "the day after the extraction",
        )
    return files.extracted_on + pd.Timedelta(days=1)


def retraining_reasons(
    monitoring: dict[str, Any], max_shifted_share: float = MAX_SHIFTED_SHARE
) -> list[str]:
    """Why monitoring says the champions should be retrained (none: they hold)."""
    reasons = []
    for ref, block in monitoring.get("stability", {}).items():
        if block["score_verdict"] == "shifted":
            reasons.append(f"the score shifted against the {ref} (PSI {block['score_psi']:.3f})")
        total = len(block["csi"])
        if total and block["features_shifted"] / total > max_shifted_share:
            reasons.append(
                f"{block['features_shifted']} of {total} features shifted against the {ref} "
                f"(more than {max_shifted_share:.0%})"
            )
    failed = [r for r in monitoring.get("backtest") or [] if r["verdict"] != "consistent"]
    if failed:
        grades = ", ".join(f"{r['grade']} ({r['verdict']})" for r in failed)
        reasons.append(f"the backtest of {monitoring.get('backtest_of')} fails in grade {grades}")
    return reasons


def nightly(
    ledger_dir: Path,
    runs: Path,
    *,
    as_of: pd.Timestamp | None = None,
    keep: int | None = None,
    max_shifted_share: float = MAX_SHIFTED_SHARE,
    progress: bool = True,
    log: bool = True,
    force: bool = False,
) -> NightlyResult:
    """Score, monitor, prune and write the status line (`runs/status.txt`), holding the runs
    root's lock throughout: a second job on the same root is refused at once. A day already
    published is scored again only with `force` (a second job started after the first published
    would otherwise republish it)."""
    day = check_nightly(ledger_dir, runs, keep)
    if as_of is not None:
        day = pd.Timestamp(as_of)
    root = RunsRoot(runs)
    with root.lock():
        if root.published(day) and not force:
            raise RunInputError(
                "--as-of",
                f"the run of {day.date()} is published already ({root.path(day)}); give --force "
                "to score that day again",
            )
        return _nightly(ledger_dir, runs, day, keep, max_shifted_share, progress, log)


def _nightly(
    ledger_dir: Path,
    runs: Path,
    day: pd.Timestamp,
    keep: int | None,
    max_shifted_share: float,
    progress: bool,
    log: bool,
) -> NightlyResult:
    run, figures = run_scoring(ledger_dir, day, runs, progress=progress, locked=True)
    recorded = json.loads((run / "run.json").read_text()).get("previous")
    previous = Path(recorded) if recorded else None
    monitoring = monitor_run(run, previous=previous, log=log)
    # the run whose 12-month outcomes tonight's ledger has: the latest at least that far back
    matured = day - pd.DateOffset(months=DEFAULT_HORIZON_MONTHS) + pd.Timedelta(days=1)
    back = RunsRoot(runs).before(matured)
    if back is not None:
        outcome = backtest_run(back, ledger_dir)
        if outcome.get("backtest"):
            monitoring |= outcome | {"backtest_of": back.name}
    reasons = retraining_reasons(monitoring, max_shifted_share)
    monitoring["retraining"] = {"recommended": bool(reasons), "reasons": reasons}
    write_monitoring(run, monitoring)
    pruned = prune(runs, keep) if keep is not None else []
    status = status_line(day, figures, monitoring, reasons, run)
    with atomic_file(runs / STATUS) as tmp:
        tmp.write_text(status + "\n")
    return NightlyResult(run, previous, status, bool(reasons), reasons, figures, pruned)


def status_line(
    day: pd.Timestamp,
    figures: dict[str, Any],
    monitoring: dict[str, Any],
    reasons: list[str],
    run: Path,
) -> str:
    """One line a scheduler can alert on: OK or RETRAIN, then the night's figures."""
    blocks = list(monitoring.get("stability", {}).values())
    psi = max((b["score_psi"] for b in blocks), default=float("nan"))
    shifted = max((b["features_shifted"] for b in blocks), default=0)
    features = max((len(b["csi"]) for b in blocks), default=0)
    backtest = monitoring.get("backtest")
    verdict = (
        "none"
        if not backtest
        else "ok"
        if all(r["verdict"] == "consistent" for r in backtest)
        else "failed"
    )
    parts = [
        f"{day.date()}",
        "RETRAIN" if reasons else "OK",
        f"clients={figures['clients']}",
        f"rejected_rows={figures['rejected_rows']}",
        f"score_psi={psi:.3f}",
        f"features_shifted={shifted}/{features}",
        f"backtest={verdict}",
        f"warnings={len(figures['early_warnings'])}",
        f"run={run}",
    ]
    if reasons:
        parts.append("why=" + json.dumps("; ".join(reasons)))
    return " ".join(parts)


def prune(runs: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` runs (their dated links and versions); `latest` stays."""
    root = RunsRoot(runs)
    published = root.runs()
    gone = []
    for _, path in published[: max(0, len(published) - keep)]:
        target = path.resolve()
        if path.is_symlink():
            path.unlink()
        if target.is_dir() and (target.parent.name == VERSIONS or target == path):
            shutil.rmtree(target, ignore_errors=True)
        gone.append(path.name)
    assert (runs / LATEST).exists() or not published
    return gone
