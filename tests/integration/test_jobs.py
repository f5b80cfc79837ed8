"""The scheduled jobs end to end: `creditguard nightly` twice on a ledger extended by a month, and
`creditguard retrain` on the two ledgers in a store of its own (real MLflow, real training)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pytest
from typer.testing import CliRunner

from creditguard.cli import app
from features.synthetic import GeneratorConfig, generate_ledger

pytestmark = pytest.mark.slow
A = GeneratorConfig(clients=300, months=30, seed=11)  # extracted on 2025-06-30
B = replace(A, months=31)  # the same book a month later


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("jobs")
    generate_ledger(A, home / "a", progress=False)
    generate_ledger(B, home / "b", progress=False)
    return home / "a", home / "b"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})  # no wrapped lines
    return result.exit_code, " ".join(result.output.split())


def test_nightly_twice_continues_the_first_run_and_keeps_the_last(
    champion_store: str, ledgers: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_store)
    monkeypatch.setenv("CREDITGUARD_CACHE", str(tmp_path / "cache"))
    a, b = ledgers
    runs = tmp_path / "runs"
    code, out = _run("nightly", "--ledger", str(a), "--runs", str(runs))
    assert code in (0, 3), out
    first = runs / "2025-07-01"
    assert (first / "run.json").exists()
    # the service's store of the run, prepared for the champions: a worker only opens it
    stores = list((tmp_path / "cache" / "offline").glob("offline-*.arrow"))
    assert len(stores) == 1 and "service store: " in " ".join(out.split())
    status = (runs / "status.txt").read_text()
    assert status.startswith("2025-07-01 ") and status.count("\n") == 1
    code, out = _run("nightly", "--ledger", str(b), "--runs", str(runs), "--keep", "1")
    assert code in (0, 3), out
    second = runs / "2025-08-01"
    assert json.loads((second / "run.json").read_text())["previous"] == str(first.absolute())
    monitoring = json.loads((second / "monitoring.json").read_text())
    assert "previous run (2025-07-01)" in monitoring["stability"]
    assert "recommended" in monitoring["retraining"]
    line = (runs / "status.txt").read_text().strip()
    word = "RETRAIN" if code == 3 else "OK"
    assert line.startswith(f"2025-08-01 {word} clients=") and f"run={second}" in line
    assert not first.exists() and (runs / "latest").resolve() == second.resolve()  # --keep 1
    assert len(list((tmp_path / "cache" / "offline").glob("offline-*.arrow"))) == 2
    report = (second / "report.html").read_text()
    assert "Retraining recommended" in report if code == 3 else "No retraining needed" in report


def test_nightly_refuses_bad_input_before_any_work(
    ledgers: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = ledgers
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, out = _run("nightly", "--ledger", str(a), "--runs", str(blocker / "runs"))
    assert code == 2 and "--runs" in out and "is a file" in out
    bare = tmp_path / "bare"
    bare.mkdir()
    for path in a.iterdir():
        if path.name != "manifest.json":
            (bare / path.name).symlink_to(path)
    code, out = _run("nightly", "--ledger", str(bare), "--runs", str(tmp_path / "runs"))
    assert code == 2 and "no manifest.json with extracted_on" in out
    assert not (tmp_path / "runs").exists()
    code, out = _run("retrain", "--ledger", str(bare))
    assert code == 2 and "no manifest.json with extracted_on" in out
    short = tmp_path / "short"
    generate_ledger(replace(A, months=14, history_months=0), short, progress=False)
    code, out = _run("retrain", "--ledger", str(short))
    assert code == 2 and "fewer than the 6 a retraining needs" in out


@pytest.fixture
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store of its own: retraining moves the champions."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield uri


def _versions(uri: str) -> dict[str, int]:
    client = mlflow.MlflowClient(uri)
    return {
        m.name: len(client.search_model_versions(f"name='{m.name}'"))
        for m in client.search_registered_models()
    }


def _parents() -> list[mlflow.entities.Run]:
    """The retraining parent runs, oldest first."""
    runs = mlflow.search_runs(experiment_names=["creditguard-retrain"], output_format="list")
    return sorted(runs, key=lambda r: r.info.start_time)


def _summary(run: mlflow.entities.Run) -> dict[str, Any]:
    return mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/retrain.json")


def test_retrain_trains_gates_reuses_and_refuses_a_weakened_challenger(
    own_store: str, ledgers: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = ledgers
    config = tmp_path / "retrain.yaml"
    config.write_text("trials: 1\nsnapshot_months: 12\n")
    args = ["retrain", "--config", str(config), "--work", str(tmp_path / "work"), "--ledger"]
    code, out = _run(*args, str(a))
    assert code == 0, out
    (parent,) = _parents()
    assert parent.data.params["window_client_snapshots"].startswith("2023-07-31 to 2024-06-30")
    assert {"table_client_sha256", "table_invoice_sha256", "table_timing_sha256"} <= set(
        parent.data.params
    )
    summary = _summary(parent)
    assert summary["exit_code"] == 0
    assert all(v["promoted"] for v in summary["verdicts"])  # the first versions: champions
    first = _versions(own_store)
    assert first == {"creditguard-default": 1, "creditguard-late": 1, "creditguard-timing": 1}
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        output_format="list",
    )
    assert len(children) == 3

    # the same ledger and configuration again: nothing trained, the same parent run
    code, out = _run(*args, str(a))
    assert code == 0 and "reused" in out, out
    assert len(_parents()) == 1 and _versions(own_store) == first

    # a month more of ledger: the windows move on by a month, new challengers meet the gates
    code, out = _run(*args, str(b))
    assert code in (0, 3), out
    later = _parents()[-1]
    assert later.data.params["window_client_snapshots"].startswith("2023-08-31 to 2024-07-31")
    assert _versions(own_store) == {k: 2 for k in first}

    # a weakened challenger (two months of snapshots, a strict gate): better on one measure and
    # worse on the other, refused: a person decides
    weak = tmp_path / "weak.yaml"
    weak.write_text(WEAK)
    code, out = _run(
        "retrain", "--config", str(weak), "--work", str(tmp_path / "weak"), "--ledger", str(b)
    )
    verdicts = _summary(_parents()[-1])["verdicts"]
    assert code == 3, (out, verdicts)
    assert any(v["needs_person"] and not v["promoted"] for v in verdicts)


WEAK = "trials: 1\nsnapshot_months: 2\nmin_snapshot_months: 1\nauc_tolerance: 0\nece_tolerance: 0\ntiming: false\n"
