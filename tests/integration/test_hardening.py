"""Issue 21 replayed: an attacker's and a clumsy user's afternoon with the CLI and a real
`creditguard serve` (loopback only, bounded sizes). Each test is one defect of the list."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import requests
from typer.testing import CliRunner

from creditguard.cli import app
from features.contract import Ledger
from portfolio.layout import RunsRoot
from tests.serve import serving

pytestmark = pytest.mark.slow
KEYS = {
    "officer": "officer-key-hardening-01",
    "batch": "batch-key-hardening-0001",
    "admin": "admin-key-hardening-0001",
}
LIVE = "C0000012"
runner = CliRunner()


# --------------------------------------------------------------------------------------------
# 1-5: the scoring run


@pytest.fixture(scope="module")
def home(champion_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("hardening")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", champion_store)
        mp.setenv("CREDITGUARD_AUDIT_DB", str(folder / "audit.db"))
        yield folder


@pytest.fixture(scope="module")
def good_run(home: Path, small_ledger_dir: Path) -> Path:
    """A good run under a runs root, which the broken ledgers below must never replace."""
    root = home / "runs"
    result = runner.invoke(app, ["score", "--ledger", str(small_ledger_dir), "--out", str(root)])
    assert result.exit_code == 0, result.output
    return root


def _published(root: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in root.iterdir() if p.is_symlink()}


def _copy(small_ledger_dir: Path, to: Path) -> Path:
    shutil.copytree(small_ledger_dir, to)
    return to


def test_a_ledger_without_a_required_column_stops_before_the_models_load(
    good_run: Path, small_ledger_dir: Path, tmp_path: Path
) -> None:
    broken = _copy(small_ledger_dir, tmp_path / "ledger")
    pd.read_parquet(broken / "invoices.parquet").drop(columns=["amount"]).to_parquet(
        broken / "invoices.parquet"
    )
    before = _published(good_run)
    start = time.perf_counter()
    result = runner.invoke(app, ["score", "--ledger", str(broken), "--out", str(good_run)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "invoices.parquet: required column amount missing" in text
    assert "Downloading artifacts" not in text and time.perf_counter() - start < 5  # no models
    assert _published(good_run) == before


def test_too_many_rejected_rows_stop_the_run_naming_the_table(
    good_run: Path, small_ledger_dir: Path, tmp_path: Path
) -> None:
    broken = _copy(small_ledger_dir, tmp_path / "ledger")
    invoices = pd.read_parquet(broken / "invoices.parquet")
    invoices.loc[invoices.index % 10 == 0, "currency"] = "XXX"  # 10 % of the rows
    invoices.to_parquet(broken / "invoices.parquet")
    before = _published(good_run)
    result = runner.invoke(app, ["score", "--ledger", str(broken), "--out", str(good_run)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert "invoices:" in text and "(10.0%) break the data contract" in text
    assert "currency is not an ISO 4217 code" in text and "nothing was published" in text
    assert _published(good_run) == before
    assert not [p for p in (good_run / ".versions").iterdir() if p.name.startswith(".")]
    # a higher threshold, chosen knowingly, lets the rest through with the rows in rejects
    result = runner.invoke(
        app,
        [
            "score",
            "--ledger",
            str(broken),
            "--out",
            str(tmp_path / "runs"),
            "--max-reject-share",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    rejects = pd.read_parquet(RunsRoot(tmp_path / "runs").latest() / "rejects.parquet")  # type: ignore[operator]
    assert (rejects["table"] == "invoices").sum() == (invoices.index % 10 == 0).sum()


def test_a_stray_comma_in_a_csv_stops_the_run(
    good_run: Path, small_ledger_dir: Path, tmp_path: Path
) -> None:
    """Before: 1 of 200 clients scored, 31,882 rows rejected, exit 0, the previous run gone."""
    folder = tmp_path / "csv"
    folder.mkdir()
    shutil.copy(small_ledger_dir / "manifest.json", folder)
    for path in small_ledger_dir.glob("*.parquet"):
        pd.read_parquet(path).to_csv(folder / f"{path.stem}.csv", index=False)
    lines = (folder / "clients.csv").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",", ",,", 1)
    (folder / "clients.csv").write_text("".join(lines))
    before = _published(good_run)
    result = runner.invoke(app, ["score", "--ledger", str(folder), "--out", str(good_run)])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "clients.csv: row 1 has 10 fields" in text, text
    assert _published(good_run) == before


def test_out_is_checked_before_the_models_load(home: Path, small_ledger_dir: Path) -> None:
    a_file = home / "a-file"
    a_file.write_text("precious")
    result = runner.invoke(app, ["score", "--ledger", str(small_ledger_dir), "--out", str(a_file)])
    assert result.exit_code == 2 and "is a file" in result.output
    assert a_file.read_text() == "precious"  # not moved aside
    result = runner.invoke(
        app, ["score", "--ledger", str(small_ledger_dir), "--out", str(a_file / "runs")]
    )
    assert result.exit_code == 2 and "cannot be made" in result.output


def test_a_second_run_on_the_same_out_is_refused(good_run: Path, small_ledger_dir: Path) -> None:
    with RunsRoot(good_run).lock():
        result = runner.invoke(
            app, ["score", "--ledger", str(small_ledger_dir), "--out", str(good_run)]
        )
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "another scoring run is writing to" in text, text


def test_sigterm_removes_the_scratch_and_publishes_nothing(
    good_run: Path, small_ledger_dir: Path, home: Path
) -> None:
    """Before: SIGTERM left a 32 MB spill behind (SIGINT did not)."""
    scratch = home / "scratch"
    scratch.mkdir()
    before = _published(good_run)
    cli = Path(sys.executable).with_name("creditguard")
    proc = subprocess.Popen(
        [
            str(cli),
            "score",
            "--ledger",
            str(small_ledger_dir),
            "--out",
            str(good_run),
            "--scratch",
            str(scratch),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(scratch.iterdir()) and proc.poll() is None:
        time.sleep(0.05)
    assert any(scratch.iterdir()), "the run never spilled"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert list(scratch.iterdir()) == []
    assert _published(good_run) == before
    assert not [p for p in (good_run / ".versions").iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------------------------
# 6-12: the service


@pytest.fixture(scope="module")
def keys_file(home: Path) -> Path:
    path = home / "keys.txt"
    path.write_text("".join(f"{role}:{key}\n" for role, key in KEYS.items()))
    return path


@pytest.fixture(scope="module")
def server(
    home: Path, champion_store: str, small_ledger_dir: Path, keys_file: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    env = dict(os.environ)
    env.pop("CREDITGUARD_API_KEYS", None)
    env |= {
        "MLFLOW_TRACKING_URI": champion_store,
        "CREDITGUARD_LEDGER": str(small_ledger_dir),
        "CREDITGUARD_API_KEYS_FILE": str(keys_file),
        "CREDITGUARD_AUDIT_DB": str(home / "service-audit.db"),
        "BENTOML_HOME": str(home / "bentoml"),
        "CREDITGUARD_MAX_BODY_BYTES": str(256 * 1024),
    }
    with serving(env, home) as running:
        yield running


def _post(
    url: str, path: str, body: Any, role: str | None = "officer", **kw: Any
) -> requests.Response:
    headers = {"authorization": f"Bearer {KEYS[role]}"} if role else {}
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=60, **kw)


def _workers_rss(proc: subprocess.Popen[bytes]) -> int:
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in family)


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request)
        return s.recv(65536)


def test_6_bodies_are_capped_and_refused_before_they_are_read(server: Any) -> None:
    url, proc, _ = server
    big = b'{"client_ids": ["' + b"x" * (2 * 1024 * 1024) + b'"]}'
    before = _workers_rss(proc)
    for _ in range(6):
        anon = requests.post(f"{url}/score_batch", data=big, timeout=60)
        assert anon.status_code == 401
        signed = requests.post(
            f"{url}/score_batch",
            data=big,
            headers={
                "authorization": f"Bearer {KEYS['batch']}",
                "content-type": "application/json",
            },
            timeout=60,
        )
        assert signed.status_code == 413 and "over 262,144 bytes" in signed.json()["error"]
    assert _workers_rss(proc) - before < 30 * 2**20
    # a declared 300 MB is refused on its headers alone, without waiting for a byte of it
    head = (
        "POST /score_batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEYS['batch']}\r\nContent-Length: 300000000\r\n\r\n"
    ).encode()
    assert _raw(url, head).startswith(b"HTTP/1.1 413")
    anon = head.replace(f"Authorization: Bearer {KEYS['batch']}\r\n".encode(), b"")
    assert _raw(url, anon).startswith(b"HTTP/1.1 401")
    assert _post(url, "/score", {"client_id": LIVE}).status_code == 200


def test_7_no_third_party_page_and_strict_headers(server: Any) -> None:
    url = server[0]
    root = requests.get(f"{url}/", allow_redirects=False, timeout=10)
    assert root.status_code == 302 and root.headers["location"] == "/ui/"
    for hidden in ("/static_content/swagger-ui.css", "/static_content/index.css", "/schema.json"):
        assert requests.get(f"{url}{hidden}", timeout=10).status_code == 404
    page = requests.get(f"{url}/ui/", timeout=10)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "http" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    responses = [
        page,
        requests.get(f"{url}/ui/app.js", timeout=10),
        requests.get(f"{url}/ui/style.css", timeout=10),
        requests.get(f"{url}/docs.json", timeout=10),
        _post(url, "/score", {"client_id": LIVE}),
        _post(url, "/score", {"client_id": LIVE, "requested_limit": "100"}),
        _post(url, "/score", {"client_id": "NOPE"}),
        requests.post(f"{url}/score", json={}, timeout=10),
    ]
    for r in responses:
        text = r.text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, r.url
    assert requests.get(f"{url}/docs.json", timeout=10).json()["paths"]


def test_8_random_paths_do_not_grow_the_metrics(server: Any) -> None:
    url = server[0]
    for i in range(30):
        requests.get(f"{url}/warmup-{i}", timeout=10)
    before = len(requests.get(f"{url}/metrics", timeout=10).text)
    for i in range(300):
        requests.get(f"{url}/random-{i}-{os.urandom(4).hex()}", timeout=10)
    page = requests.get(f"{url}/metrics", timeout=10).text
    assert len(page) - before < 2_000  # counts change, no new series
    assert 'endpoint="other"' in page and "random-" not in page


def test_9_keys_are_reloaded_revoked_and_never_a_500(server: Any, keys_file: Path) -> None:
    url = server[0]
    spare = "officer-key-to-revoke-01"
    keys_file.write_text(keys_file.read_text() + f"officer:{spare}\n")
    assert _post(url, "/reload", {}, role="admin").status_code == 200
    signed = {"authorization": f"Bearer {spare}"}
    score = {"client_id": LIVE}
    assert requests.post(f"{url}/score", json=score, headers=signed, timeout=60).status_code == 200
    keys_file.write_text("".join(f"{r}:{k}\n" for r, k in KEYS.items()))  # revoked
    assert _post(url, "/reload", {}, role="admin").status_code == 200
    revoked = requests.post(f"{url}/score", json=score, headers=signed, timeout=60)
    assert revoked.status_code == 401 and "unknown or revoked" in revoked.json()["error"]
    # a reload with the file gone or broken is refused, and the keys in force stay
    saved = keys_file.read_text()
    keys_file.unlink()
    try:
        gone = _post(url, "/reload", {}, role="admin")
        assert gone.status_code == 400 and "the old ones stay" in gone.json()["error"]
        assert _post(url, "/score", score).status_code == 200
        wrong = requests.post(
            f"{url}/score",
            json=score,
            headers={"authorization": "Bearer not-a-key-at-all"},
            timeout=60,
        )
        assert wrong.status_code == 401
        keys_file.write_text("officer:short\n")
        short = _post(url, "/reload", {}, role="admin")
        assert short.status_code == 400 and "at least 16" in short.json()["error"]
        assert _post(url, "/score", score).status_code == 200
    finally:
        keys_file.write_text(saved)


def _score_from(source: str, url: str, key: str) -> tuple[int, float]:
    """One /score sent from the loopback address `source`: (status, seconds)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60, source_address=(source, 0))
    start = time.perf_counter()
    connection.request(
        "POST",
        "/score",
        body=json.dumps({"client_id": LIVE}),
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    status = connection.getresponse().status
    connection.close()
    return status, time.perf_counter() - start


def test_9_repeated_failures_from_one_address_are_slowed(server: Any) -> None:
    url = server[0]
    source = "127.0.0.7"  # failures count per address: the other tests' do not count here
    times = []
    for _ in range(9):
        status, seconds = _score_from(source, url, "wrong-key-wrong-key-00")
        times.append(seconds)
        assert status == 401
    assert max(times[:5]) < 0.1 and min(times[6:]) >= 0.2  # free, then 0.1, 0.2, 0.4 s...
    assert _score_from(source, url, KEYS["officer"])[0] == 200  # a valid key is not slowed


def test_9_a_valid_key_between_wrong_ones_does_not_reset_the_backoff(server: Any) -> None:
    """Failures count per source address (per worker: this server has one) and a success
    does not clear them: wrong, right, wrong, right... after five stays slowed."""
    url = server[0]
    source = "127.0.0.9"  # this test's own address: the other tests' failures do not count
    wrong = "wrong-key-hardening-000001"
    for _ in range(5):
        assert _score_from(source, url, wrong)[0] == 401
    slowed = []
    for _ in range(4):
        assert _score_from(source, url, KEYS["officer"])[0] == 200
        status, seconds = _score_from(source, url, wrong)
        assert status == 401
        slowed.append(seconds)
    assert min(slowed) >= 0.09, slowed


def test_9_bad_keys_stop_the_start_with_a_clear_message(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("creditguard")
    for keys, words in (
        ("officer:too-short", "at least 16"),
        ("officer:the-same-key-for-two,admin:the-same-key-for-two", "the same key is given"),
        ("boss:a-long-enough-key-0001", "role in"),
    ):
        env = dict(os.environ, CREDITGUARD_API_KEYS=keys)
        run = subprocess.run(
            [str(cli), "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2 and words in " ".join(run.stdout.split()), run.stdout


def test_10_inputs_are_strict(server: Any, small_ledger: Ledger) -> None:
    url = server[0]
    for body, words in (
        ({"client_id": LIVE, "requested_limit": True}, "requested_limit"),
        ({"client_id": LIVE, "requested_limit": "100"}, "requested_limit"),
        (
            {"client_id": LIVE, "requested_limt": 100},
            "requested_limt: Extra inputs are not permitted",
        ),
        ({"client_id": LIVE, "as_of": 0}, "as_of"),
    ):
        r = _post(url, "/score", body)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
    r = _post(url, "/score", {"client_id": LIVE, "as_of": "0001-01-02"})
    assert r.status_code == 422 and "outside the ledger's dates" in r.json()["error"]
    applicant = {
        "profile": {"name": "Nordlicht GmbH", "country": "DE", "industry": "wholesale"},
        "as_of": "0001-01-02",
    }
    assert _post(url, "/score_applicant", applicant).status_code == 422
    reference = {
        "supplier": "Bolt AG",
        "average_days_beyond_terms": 50,
        "max_days_beyond_terms": 10,
    }
    r = _post(
        url, "/score_applicant", {**applicant, "as_of": None, "trade_references": [reference]}
    )
    assert r.status_code == 400 and "average cannot be worse than the worst" in r.text


def test_10_a_batch_answers_every_id_in_order(server: Any, small_ledger: Ledger) -> None:
    url = server[0]
    clients = small_ledger.clients.sort_values("onboarded_on")
    newest = str(clients["client_id"].iloc[-1])
    day = pd.Timestamp(clients["onboarded_on"].iloc[-1]).date().isoformat()
    ids = [LIVE, "NOPE", newest, LIVE]
    r = _post(url, "/score_batch", {"client_ids": ids, "as_of": day}, role="batch")
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["client_id"] for x in results] == ids
    assert results[0]["score"] and results[0]["error"] is None
    assert results[1]["score"] is None and "not in the ledger" in results[1]["error"]
    assert results[2]["score"] is None and "not yet onboarded" in results[2]["error"]
    assert results[3]["score"] == results[0]["score"]


def test_11_refusals_log_one_line_and_the_service_binds_loopback(server: Any) -> None:
    url, proc, log = server
    for _ in range(20):
        _post(url, "/score", {"client_id": "NOPE"})
        _post(url, "/score", {"client_id": LIVE, "requested_limt": 1})
        requests.post(f"{url}/score", json={}, timeout=10)
    text = log.read_text()
    assert "Traceback" not in text
    assert "WARNING" in text and "client_id 'NOPE' is not in the ledger" in text
    assert not [k for k in KEYS.values() if k in text]  # keys are never logged
    family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    listening = {
        c.laddr.ip
        for p in family
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}


def test_12_reloads_run_one_at_a_time_and_requests_keep_succeeding(server: Any) -> None:
    url = server[0]
    stop = time.time() + 12
    codes: list[int] = []

    def score() -> None:
        while time.time() < stop:
            codes.append(_post(url, "/score", {"client_id": LIVE}).status_code)

    with ThreadPoolExecutor(6) as pool:
        scorers = [pool.submit(score) for _ in range(2)]
        time.sleep(1)
        reloads = [pool.submit(_post, url, "/reload", {}, "admin") for _ in range(4)]
        answers = sorted(r.result().status_code for r in reloads)
        for s in scorers:
            s.result()
    assert answers.count(200) >= 1 and set(answers) <= {200, 409}, answers
    assert codes and set(codes) == {200}
    busy = [json.loads(r.result().text) for r in reloads if r.result().status_code == 409]
    assert all("already running" in b["error"] for b in busy)
