"""The runs root (issue 21): a run is published in one step, readers never find it missing or
half-written, a second writer is refused, a failed run changes nothing, `latest` and the run
before a day are found."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from portfolio.layout import (
    LATEST,
    VERSIONS,
    RunLockedError,
    RunsRoot,
    RunsRootError,
    check_root,
)
from portfolio.runs import RunHistory, run_folders


def _publish(root: RunsRoot, day: str, marker: str) -> Path:
    with root.publish(pd.Timestamp(day)) as tmp:
        clients = pd.DataFrame(
            {
                "client_id": ["C1"],
                "as_of": [pd.Timestamp(day)],
                "decision_pd": [0.01],
                "grade": [3],
                "max_days_past_due": [0.0],
            }
        )
        clients.to_parquet(tmp / "clients.parquet")
        (tmp / "run.json").write_text(json.dumps({"marker": marker}))
    return root.path(pd.Timestamp(day))


def test_runs_are_published_under_their_day_with_latest_the_newest(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    _publish(root, "2026-01-31", "jan")
    _publish(root, "2026-02-28", "feb")
    _publish(root, "2025-12-31", "dec")  # a backfill does not move latest back
    assert [p.name for _, p in root.runs()] == ["2025-12-31", "2026-01-31", "2026-02-28"]
    assert (root.root / LATEST).resolve() == root.path(pd.Timestamp("2026-02-28")).resolve()
    assert root.latest() == root.root / "2026-02-28"
    assert root.before(pd.Timestamp("2026-02-28")) == root.root / "2026-01-31"
    assert root.before(pd.Timestamp("2025-12-31")) is None
    # the history the decision PD continues reads the same layout, each run once
    assert [p.name for p in run_folders(root.root)] == ["2025-12-31", "2026-01-31", "2026-02-28"]
    assert len(RunHistory.load(root.root).runs) == 3


def test_a_rerun_replaces_the_day_and_keeps_one_version_behind(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    for marker in ("first", "second", "third"):
        day = _publish(root, "2026-01-31", marker)
        assert json.loads((day / "run.json").read_text())["marker"] == marker
    versions = sorted(p.name for p in (root.root / VERSIONS).iterdir())
    assert len(versions) == 2  # the published one and the one it replaced (a reader may hold it)
    assert oct((day.resolve()).stat().st_mode)[-3:] == "755"  # readable by the service


def test_a_failed_run_changes_nothing_and_leaves_no_scratch(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    day = _publish(root, "2026-01-31", "good")
    with pytest.raises(KeyboardInterrupt), root.publish(pd.Timestamp("2026-01-31")) as tmp:
        (tmp / "clients.parquet").write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM half-way
    assert json.loads((day / "run.json").read_text())["marker"] == "good"
    assert not [p for p in (root.root / VERSIONS).iterdir() if p.name.startswith(".")]


def test_a_second_writer_is_refused_with_who_holds_the_lock(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    with root.lock(), pytest.raises(RunLockedError, match=f"pid {os.getpid()}"), root.lock():
        pass
    with root.lock():  # released when the first run ends
        pass


def test_readers_never_find_a_run_missing_while_it_is_replaced(tmp_path: Path) -> None:
    """The reproduction of the issue: a reader beside a writer that republishes one day over and
    over (before: the folder was missing in 3,779 of 20,000 reads)."""
    root = RunsRoot(tmp_path / "runs")
    day = _publish(root, "2026-01-31", "0")
    stop = threading.Event()
    misses: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                json.loads((day / "run.json").read_text())
                json.loads((root.root / LATEST / "run.json").read_text())
            except (OSError, ValueError) as exc:
                misses.append(repr(exc))
            reads += 1

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 60):
            _publish(root, "2026-01-31", str(i))
    finally:
        stop.set()
        reader.join()
    assert reads > 100 and misses == []


def test_the_root_is_checked_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunsRootError, match="is a file"):
        check_root(a_file)
    with pytest.raises(RunsRootError, match="cannot be made"):
        check_root(a_file / "runs")
    single = tmp_path / "single"
    single.mkdir()
    (single / "clients.parquet").write_bytes(b"")
    with pytest.raises(RunsRootError, match="single run"):
        check_root(single)
    check_root(tmp_path / "new" / "runs")  # made on publish
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(RunsRootError, match="not writable"):
            check_root(locked / "runs")


def test_a_foreign_folder_or_file_under_a_day_is_refused_not_moved(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    (root.root / "2026-01-31").mkdir(parents=True)
    (root.root / "2026-01-31" / "notes.txt").write_text("mine")
    with pytest.raises(RunsRootError, match="not a run"):
        root.check_day(pd.Timestamp("2026-01-31"))
    (root.root / "2026-02-28").write_text("a file")
    with pytest.raises(RunsRootError, match="is a file"):
        root.check_day(pd.Timestamp("2026-02-28"))
    assert (root.root / "2026-01-31" / "notes.txt").read_text() == "mine"


def test_a_run_folder_from_before_the_layout_is_taken_over(tmp_path: Path) -> None:
    root = RunsRoot(tmp_path / "runs")
    old = root.root / "2026-01-31"
    old.mkdir(parents=True)
    (old / "clients.parquet").write_bytes(b"old")
    day = _publish(root, "2026-01-31", "new")
    assert day.is_symlink() and json.loads((day / "run.json").read_text())["marker"] == "new"
    assert (root.root / VERSIONS / "2026-01-31.before-layout" / "clients.parquet").exists()
