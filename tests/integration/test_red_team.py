"""Issue 33 replayed against a real `creditguard serve` with two workers on a cross-border ledger
(loopback only, bounded counts and times), and the nightly job: each test one probe of the list,
failing before."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

from creditguard.cli import app
from features.synthetic import GeneratorConfig, generate_ledger
from portfolio.layout import RunsRoot
from tests.serve import serving

pytestmark = pytest.mark.slow
KEYS = {
    "officer": "officer-key-red-team-0001",
    "batch": "batch-key-red-team-000001",
    "admin": "admin-key-red-team-000001",
}
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("red-team")


@pytest.fixture(scope="module")
def cross_ledger(home: Path) -> Path:
    """120 clients, a quarter of them invoiced in USD, CNY, GBP or PLN."""
    out = home / "ledger"
    generate_ledger(GeneratorConfig(clients=120, months=24, seed=3), out, progress=False)
    return out


@pytest.fixture(scope="module")
def keys_file(home: Path) -> Path:
    path = home / "keys.txt"
    path.write_text("".join(f"{role}:{key}\n" for role, key in KEYS.items()))
    return path


@pytest.fixture(scope="module")
def server(
    home: Path, champion_store: str, cross_ledger: Path, keys_file: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    env = dict(os.environ)
    env.pop("CREDITGUARD_API_KEYS", None)
    env |= {
        "MLFLOW_TRACKING_URI": champion_store,
        "CREDITGUARD_LEDGER": str(cross_ledger),
        "CREDITGUARD_RUNS": str(home / "runs"),
        "CREDITGUARD_CACHE": str(home / "cache"),
        "CREDITGUARD_API_KEYS_FILE": str(keys_file),
        "CREDITGUARD_AUDIT_DB": str(home / "audit.db"),
        "BENTOML_HOME": str(home / "bentoml"),
        "CREDITGUARD_COPY_GRACE_S": "1",  # a replaced ledger copy is let go after a second
    }
    with serving(env, home, workers=2) as running:
        yield running


def _post(url: str, path: str, body: Any, role: str = "officer") -> requests.Response:
    headers = {"authorization": f"Bearer {KEYS[role]}"}
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=120)


def _foreign(ledger: Path) -> list[str]:
    invoices = pd.read_parquet(ledger / "invoices.parquet")
    return sorted(set(invoices.loc[invoices["currency"] != "EUR", "client_id"]))


def test_an_action_for_a_client_invoiced_in_a_foreign_currency_is_recorded_once(
    server: Any, cross_ledger: Path
) -> None:
    url = server[0]
    client = _foreign(cross_ledger)[0]
    before = len(pd.read_parquet(cross_ledger / "actions.parquet"))
    body = {"client_id": client, "action": "promise_to_pay", "on": "2024-12-02", "amount": 150}
    answers = [_post(url, "/record_action", body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3, answers[0].text
    assert [a.json()["replayed"] for a in answers] == [False, True, True]
    assert len(pd.read_parquet(cross_ledger / "actions.parquet")) == before + 1


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [("amount", 1e308, 400), ("on", "0001-01-01", 422), ("note", "two\nlines", 422)],
)
def test_an_action_out_of_bounds_is_a_4xx(
    server: Any, cross_ledger: Path, field: str, value: object, code: int
) -> None:
    body = {"client_id": _foreign(cross_ledger)[0], "action": "call", "on": "2024-12-03"}
    answer = _post(server[0], "/record_action", body | {field: value})
    assert answer.status_code == code and field in answer.text, answer.text


def test_a_revoked_key_fails_on_every_worker_at_once(server: Any, keys_file: Path) -> None:
    url = server[0]
    saved = keys_file.read_text()
    spare = "officer-key-to-revoke-red-01"
    signed = {"authorization": f"Bearer {spare}"}
    body = {"client_id": "C0000012"}
    try:
        keys_file.write_text(saved + f"officer:{spare}\n")
        granted = [
            requests.post(f"{url}/score", json=body, headers=signed, timeout=60).status_code
            for _ in range(10)
        ]
        assert set(granted) == {200}
        keys_file.write_text(saved)  # revoked: no reload needed, every worker sees the file
        revoked = [
            requests.post(f"{url}/score", json=body, headers=signed, timeout=60).status_code
            for _ in range(20)  # new connections, spread over both workers
        ]
        assert set(revoked) == {401}
        assert _post(url, "/reload", {}, role="admin").status_code == 200
        again = [
            requests.post(f"{url}/score", json=body, headers=signed, timeout=60).status_code
            for _ in range(20)
        ]
        assert set(again) == {401}
    finally:
        keys_file.write_text(saved)


def test_reloads_in_a_row_are_never_a_spurious_409(server: Any) -> None:
    url = server[0]
    for _ in range(4):  # each one makes the other worker follow in the background
        assert _post(url, "/reload", {}, role="admin").status_code == 200
        assert _post(url, "/score", {"client_id": "C0000012"}).status_code == 200


def test_a_key_line_without_a_role_is_never_printed(server: Any, keys_file: Path) -> None:
    url, _, log = server
    saved = keys_file.read_text()
    secret = "a-secret-key-pasted-without-role-01"
    try:
        keys_file.write_text(saved + secret + "\n")
        answer = _post(url, "/reload", {}, role="admin")
        assert answer.status_code == 400 and "line 4" in answer.json()["error"]
        assert secret not in answer.text
        time.sleep(0.5)
        assert _post(url, "/score", {"client_id": "C0000012"}).status_code == 200  # keys kept
        assert secret not in log.read_text()
    finally:
        keys_file.write_text(saved)
    cli = Path(sys.executable).with_name("creditguard")
    env = dict(os.environ, CREDITGUARD_API_KEYS=secret)
    start = subprocess.run(
        [str(cli), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert start.returncode == 2 and secret not in start.stdout + start.stderr


def test_record_action_then_reload_keeps_two_copies_of_the_ledger(
    server: Any, home: Path, cross_ledger: Path
) -> None:
    """Each action changes the ledger's files and a reload copies them; the copies no worker
    reads any more are removed: the newest, the one the other worker may still read, and at
    most one let go but not yet removed, however many actions are recorded."""
    url = server[0]
    client = _foreign(cross_ledger)[1]
    counts = []
    for day in ("2024-12-05", "2024-12-06", "2024-12-07", "2024-12-08", "2024-12-09"):
        body = {"client_id": client, "action": "call", "on": day}
        assert _post(url, "/record_action", body).status_code == 200
        assert _post(url, "/reload", {}, role="admin").status_code == 200
        time.sleep(1.5)  # the replaced copy let go (CREDITGUARD_COPY_GRACE_S)
        counts.append(len(list((home / "cache" / "ledgers").glob("ledger-*"))))
    assert max(counts) <= 3, counts


def test_sixteen_connections_mixing_scores_batches_and_actions_get_no_5xx(
    server: Any, cross_ledger: Path
) -> None:
    url = server[0]
    foreign = _foreign(cross_ledger)
    clients = sorted(pd.read_parquet(cross_ledger / "clients.parquet")["client_id"])
    stop = time.time() + 20
    codes: list[int] = []

    def work(n: int) -> None:
        session = requests.Session()
        i = 0
        while time.time() < stop and i < 2_000:  # bounded in time and in count
            i += 1
            kind = (n + i) % 3
            if kind == 0:
                path, body, role = (
                    "/score",
                    {"client_id": clients[(n * 7 + i) % len(clients)]},
                    "officer",
                )
            elif kind == 1:
                path, body, role = (
                    "/score_batch",
                    {"client_ids": clients[i % 50 : i % 50 + 5]},
                    "batch",
                )
            else:
                day = f"2024-{1 + i % 11:02d}-{1 + n:02d}"
                path = "/record_action"
                body, role = (
                    {"client_id": foreign[i % len(foreign)], "action": "call", "on": day},
                    "officer",
                )
            answer = session.post(
                f"{url}{path}",
                json=body,
                headers={"authorization": f"Bearer {KEYS[role]}"},
                timeout=120,
            )
            codes.append(answer.status_code)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, range(16)))
    assert codes and not [c for c in codes if c >= 500], pd.Series(codes).value_counts()
    assert set(codes) <= {200, 429, 503} and codes.count(200) > len(codes) / 2


# --------------------------------------------------------------------------------------------
# The nightly job


def test_a_published_day_needs_force_and_the_status_line_is_readable(
    champion_store: str, small_ledger_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    env = {"MLFLOW_TRACKING_URI": champion_store}
    common = ["nightly", "--ledger", str(small_ledger_dir), "--runs", str(runs)]
    common += ["--no-prepare-service"]
    first = runner.invoke(app, common, env=env)
    status = (runs / "status.txt").read_text()
    assert first.exit_code == (3 if " RETRAIN " in status else 0), first.output
    published = os.readlink(runs / "latest")
    again = runner.invoke(app, common, env=env)
    assert again.exit_code == 2 and "--force" in again.output
    assert os.readlink(runs / "latest") == published
    mode = stat.S_IMODE((runs / "status.txt").stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)  # readable by a monitoring agent of another user
    with RunsRoot(runs).lock():  # another job holds the root: refused before any work
        held = runner.invoke(app, [*common, "--force"], env=env)
    assert held.exit_code == 2 and "another scoring run" in held.output
    forced = runner.invoke(app, [*common, "--force"], env=env)
    assert forced.exit_code == first.exit_code, forced.output


def test_retrain_on_a_ledger_too_short_for_its_label_registers_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    generate_ledger(GeneratorConfig(clients=120, months=4, seed=5), ledger, progress=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = runner.invoke(
        app,
        ["retrain", "--ledger", str(ledger), "--work", str(tmp_path / "work")],
        env={"MLFLOW_TRACKING_URI": store, "COLUMNS": "300"},
    )
    assert result.exit_code == 2, result.output
    words = " ".join(result.output.split())
    assert "single class of default_12m" in words and "nothing was registered" in words

    from mlflow import MlflowClient

    assert MlflowClient(store).search_registered_models() == []
