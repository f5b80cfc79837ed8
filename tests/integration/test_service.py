"""The HTTP service, end to end: a real `bentoml serve` process on a free port, spoken to over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from typer.testing import CliRunner

from creditguard.cli import app
from features.contract import Ledger
from tests.browser import chromium
from tests.serve import serving

KEYS = {
    "officer": "officer-key-0123456789",
    "batch": "batch-key-0123456789",
    "admin": "admin-key-0123456789",
}
# Clients of the small ledger (seed 7) on the default day: an active one, and one in default
# (a test below checks they still are, should the generator change)
LIVE, DEAD = "C0000012", "C0000042"
GRADES = {str(g) for g in range(1, 11)}
EXPIRED_KEY = "old-officer-key-0123456789"  # valid through 2020-01-01
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service_home(
    champion_store: str, small_ledger_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The service's folder: its own copy of the ledger (/record_action writes to the ledger's
    action log) and a nightly run of it, the offline store the service reads."""
    from portfolio.run import run_scoring

    home = tmp_path_factory.mktemp("service")
    shutil.copytree(small_ledger_dir, home / "ledger")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", champion_store)
        run_scoring(home / "ledger", None, home / "runs", progress=False)
    return home


@pytest.fixture(scope="module")
def server(champion_store: str, service_home: Path) -> Iterator[str]:
    home = service_home
    ledger = home / "ledger"
    env = dict(os.environ)
    env |= {
        "MLFLOW_TRACKING_URI": champion_store,
        "CREDITGUARD_LEDGER": str(ledger),
        "CREDITGUARD_RUNS": str(home / "runs"),
        "CREDITGUARD_CACHE": str(home / "cache"),
        "CREDITGUARD_API_KEYS": ",".join(f"{r}:{k}" for r, k in KEYS.items())
        + f",officer:{EXPIRED_KEY}:2020-01-01",
        "CREDITGUARD_AUDIT_DB": str(home / "audit.db"),
        "BENTOML_HOME": str(home / "bentoml"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k in ("MLFLOW_TRACKING_URI", "CREDITGUARD_AUDIT_DB"):
            mp.setenv(k, env[k])
        # two workers, as recommended on two cores; the audit log is shared
        with serving(env, home, workers=2) as (url, _, _):
            yield url


def _post(url: str, path: str, body: object, role: str | None = "officer") -> requests.Response:
    headers = {"authorization": f"Bearer {KEYS[role]}"} if role else {}
    return requests.post(f"{url}{path}", json=body, headers=headers, timeout=30)


def test_an_officer_gets_pd_grade_reasons_and_a_limit_decision(server: str) -> None:
    r = _post(server, "/score", {"client_id": LIVE, "requested_limit": 50_000})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "active" and doc["status_reason"] == ""
    assert 0 < doc["pd_12m"] < 1 and 0 < doc["decision_pd"] < 1 and doc["grade"] in GRADES
    assert doc["risk_reasons"] and all(x["text"] for x in doc["risk_reasons"])
    assert all("grades 1-3" in x["text"] for x in doc["risk_reasons"] if x["typical"] is not None)
    assert doc["limit_decision"]["decision"] in {"approve", "approve_in_part", "refuse", "refer"}
    assert doc["limit_rule"]  # the rule that set the recommended limit, in words
    assert doc["recommended_terms"] and doc["terms_rule"] and doc["current_terms"]
    assert doc["model_versions"] == {
        "creditguard-default": "1",
        "creditguard-late": "1",
        "creditguard-timing": "1",
    }


def test_a_client_in_default_is_grade_d_with_nothing_to_approve(server: str) -> None:
    doc = _post(server, "/score", {"client_id": DEAD, "requested_limit": 10_000}).json()
    assert doc["status"] == "in_default" and doc["grade"] == "D" and doc["pd_12m"] == 1
    assert doc["status_reason"] and doc["recommended_limit"] == 0
    decision = doc["limit_decision"]
    assert decision["decision"] == "refuse" and decision["approved_amount"] == 0
    assert "stop deliveries" in decision["rules"][0]
    assert doc["risk_reasons"] == []  # its status explains it, not the model
    view = _post(server, "/client_view", {"client_id": DEAD}).json()
    assert view["waterfall"] == [] and view["score"]["grade"] == "D"
    assert {w["queue"] for w in view["worklist"]} <= {"claim", "recovery"}


def test_auth_missing_wrong_and_insufficient(server: str) -> None:
    assert _post(server, "/score", {"client_id": LIVE}, role=None).status_code == 401
    bad = requests.post(
        f"{server}/score",
        json={"client_id": LIVE},
        headers={"authorization": "Bearer not-a-key-of-anyone"},
        timeout=30,
    )
    assert bad.status_code == 401
    assert _post(server, "/score_batch", {"client_ids": [LIVE]}, role="officer").status_code == 403
    assert _post(server, "/reload", {}, role="batch").status_code == 403


def test_bad_input_is_a_4xx_naming_the_field(server: str) -> None:
    r = _post(server, "/score", {"client_id": LIVE, "requested_limit": -5})
    assert r.status_code == 400 and "requested_limit" in r.text
    assert _post(server, "/score", {"client_id": "NOPE"}).status_code == 404
    assert _post(server, "/score", {"client_ids": 3}).status_code == 400
    too_many = _post(
        server, "/score_batch", {"client_ids": [f"C{i:07d}" for i in range(1, 600)]}, role="batch"
    )
    assert too_many.status_code == 400 and "client_ids" in too_many.text
    late = _post(server, "/score", {"client_id": LIVE, "as_of": "2030-01-01"})
    assert late.status_code == 422


def test_refusals_say_why(server: str) -> None:
    """BentoML alone answers every 401/403 with 'Authorization error'; ours name the cause."""
    expired = requests.post(
        f"{server}/score",
        json={"client_id": LIVE},
        headers={"authorization": f"Bearer {EXPIRED_KEY}"},
        timeout=30,
    )
    assert expired.status_code == 401 and "expired on 2020-01-01" in expired.json()["error"]
    unknown = _post(server, "/score", {"client_id": LIVE}, role=None)
    assert "missing bearer token" in unknown.json()["error"]
    role = _post(server, "/reload", {}, role="officer")
    assert role.status_code == 403 and role.json()["error"] == "role 'officer' may not reload"


def test_batch_scores_equal_single_scores(server: str) -> None:
    ids = ["C0000001", LIVE, "C0000100"]
    batch = _post(server, "/score_batch", {"client_ids": ids}, role="batch").json()["results"]
    assert [r["client_id"] for r in batch] == ids
    for doc in (r["score"] for r in batch):
        single = _post(server, "/score", {"client_id": doc["client_id"]}).json()
        assert single["pd_12m"] == doc["pd_12m"] and single["risk_reasons"] == doc["risk_reasons"]


def _audited() -> int:
    with sqlite3.connect(os.environ["CREDITGUARD_AUDIT_DB"]) as db:
        return int(db.execute("select count(*) from decisions").fetchone()[0])


def test_concurrent_requests_all_succeed_and_are_all_audited(server: str) -> None:
    """16 at a time over two worker processes, each with its request threads: every decision
    lands in the one audit log."""
    before = _audited()
    ids = [f"C{i:07d}" for i in range(1, 65)] * 2
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda c: _post(server, "/score", {"client_id": c}).status_code, ids))
    assert set(codes) <= {200, 422} and codes.count(200) > 80  # 422: onboarded after the date
    assert _audited() - before == codes.count(200)


def _run_day(runs: Path) -> str:
    """The day of the latest run under a runs root."""
    return str(json.loads((runs / "latest" / "run.json").read_text())["as_of"])


def test_admin_reloads_the_champions(server: str, service_home: Path) -> None:
    r = _post(server, "/reload", {}, role="admin")
    assert r.status_code == 200 and r.json()["model_versions"]["creditguard-default"] == "1"
    # the run of its ledger answers its day
    assert r.json()["nightly_run"] == _run_day(service_home / "runs")


def test_a_new_nightly_run_is_taken_on_reload_and_by_following_latest(
    champion_store: str, service_home: Path, tmp_path: Path
) -> None:
    """A runs root with the night before's run; tonight's run is published (`latest` moves). A
    worker told to follow `latest` loads it by itself on its next request; another takes it on
    /reload, which says so."""
    from starlette.testclient import TestClient

    from portfolio.run import run_scoring
    from serving.service import CreditGuard

    ledger, runs = service_home / "ledger", tmp_path / "runs"
    tonight = pd.Timestamp(_run_day(service_home / "runs"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", champion_store)
        for name, value in {
            "CREDITGUARD_LEDGER": str(ledger),
            "CREDITGUARD_RUNS": str(runs),
            "CREDITGUARD_CACHE": str(tmp_path / "cache"),
            "CREDITGUARD_AUDIT_DB": str(tmp_path / "audit.db"),
            "CREDITGUARD_API_KEYS": ",".join(f"{r}:{k}" for r, k in KEYS.items()),
        }.items():
            mp.setenv(name, value)
        before, _ = run_scoring(ledger, tonight - pd.Timedelta(days=1), runs, progress=False)
        mp.setenv("CREDITGUARD_FOLLOW_LATEST", "1")
        follower = CreditGuard.inner()
        mp.setenv("CREDITGUARD_FOLLOW_LATEST", "0")
        with TestClient(CreditGuard.to_asgi()) as client:  # type: ignore[attr-defined]
            reload = {"authorization": f"Bearer {KEYS['admin']}"}
            assert client.post("/reload", json={}, headers=reload).json()["nightly_run"] == str(
                (tonight - pd.Timedelta(days=1)).date()
            )
            assert (
                follower.loaded.run is not None
                and follower.loaded.run.resolve() == before.resolve()
            )
            after, _ = run_scoring(ledger, None, runs, progress=False)  # tonight: `latest` moves
            assert follower.ledger is not None  # a request's first step: it sees `latest` moved
            deadline = time.monotonic() + 120
            while follower.loaded.run.resolve() != after.resolve() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert follower.loaded.run.resolve() == after.resolve()
            assert follower.loaded.store is not None and follower.loaded.store.day == tonight
            answer = client.post("/reload", json={}, headers=reload)
            assert answer.status_code == 200
            assert answer.json()["nightly_run"] == str(tonight.date())


def test_health_metrics_and_openapi(server: str) -> None:
    assert requests.get(f"{server}/livez", timeout=5).status_code == 200
    assert "creditguard_requests_total" in requests.get(f"{server}/metrics", timeout=5).text
    spec = requests.get(f"{server}/docs.json", timeout=5).json()
    assert "/score" in spec["paths"] and "/score_batch" in spec["paths"]


def test_every_decision_is_audited(server: str) -> None:
    _post(server, "/score", {"client_id": "C0000007", "requested_limit": 20_000})
    result = CliRunner().invoke(app, ["audit", "--client", "C0000007"])
    assert result.exit_code == 0, result.output
    assert "C0000007" in result.output and "score" in result.output
    assert KEYS["officer"] not in result.output  # keys are never stored or shown


APPLICANT = {
    "profile": {"name": "Nordlicht Logistik GmbH", "country": "DE", "industry": "wholesale"},
    "financials": [
        {"period_end": "2024-12-31", "revenue": 4.2e6, "total_assets": 3.1e6, "equity": 1.2e6}
    ],
    "expected_monthly_purchases": 40_000,
    "requested_limit": 8_000,
    "as_of": "2025-03-31",
}


def test_an_applicant_gets_a_thin_file_score_and_a_decision(server: str) -> None:
    r = _post(server, "/score_applicant", APPLICANT)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["thin_file"] and "prospective client" in doc["data_sufficiency"]
    assert 0 < doc["pd_12m"] < 1 and doc["trade_reference_findings"] == [
        "no trade references given"
    ]
    assert doc["limit_decision"]["decision"] in {"approve", "refer", "refuse", "approve_in_part"}
    adverse = {
        **APPLICANT,
        "trade_references": [
            {"supplier": "Bolt AG", "average_days_beyond_terms": 30, "max_days_beyond_terms": 120}
        ],
    }
    r = _post(server, "/score_applicant", adverse)
    assert r.status_code == 200 and "120 days" in r.json()["trade_reference_findings"][0]
    if doc["limit_decision"]["decision"] == "approve":
        assert r.json()["limit_decision"]["decision"] == "refer"


def test_an_invalid_applicant_is_a_4xx_naming_the_field(server: str) -> None:
    r = _post(
        server,
        "/score_applicant",
        {**APPLICANT, "profile": {**APPLICANT["profile"], "country": "UK"}},
    )  # type: ignore[dict-item]
    assert r.status_code == 422 and "profile.country" in r.text
    late = [{"period_end": "2025-12-31", "revenue": 1e6}]
    r = _post(server, "/score_applicant", {**APPLICANT, "financials": late})
    assert r.status_code == 422 and "financials[0]" in r.text
    r = _post(server, "/score_applicant", {**APPLICANT, "profile": {"name": "x"}})
    assert r.status_code == 400 and "country" in r.text


def test_schemathesis_finds_no_5xx_and_no_schema_violation(server: str, tmp_path: Path) -> None:
    """Property-based fuzzing of every operation in the OpenAPI schema, as an admin (every role)."""
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "run",
            f"{server}/docs.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance,"
            "negative_data_rejection",
            "--header",
            f"Authorization: Bearer {KEYS['admin']}",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    tested = re.search(r"Tested: (\d+)", run.stdout)
    assert selected and tested, run.stdout[-2000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 8  # every operation was exercised


# --------------------------------------------------------------------------------------------
# The credit officer's page at /ui, driven in headless Chromium

DECISION_WORDS = ("Approved in full", "Approved in part", "Refused", "Referred to an analyst")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/ui/")
    yield page
    context.close()
    assert not errors, errors  # no script error on any page


def _sign_in(page: Any, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#signin-form button")


def _error(page: Any) -> str:
    page.wait_for_selector("#error:not([hidden])")
    return str(page.inner_text("#error"))


def test_the_page_ships_every_asset_itself(server: str) -> None:
    html = requests.get(f"{server}/ui/", timeout=10)
    assert html.status_code == 200 and "creditguard" in html.text
    assets = re.findall(r'(?:src|href)="([^"#]+)"', html.text)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    for asset in assets:
        if not asset.startswith("data:"):
            assert requests.get(f"{server}/ui/{asset}", timeout=10).status_code == 200, asset
    script = requests.get(f"{server}/ui/app.js", timeout=10).text
    assert "http://" not in script.replace("http://www.w3.org/2000/svg", "")


def test_an_officer_finds_a_client_reads_the_view_and_gets_a_limit_decision(
    page: Any, server: str, small_ledger: Ledger
) -> None:
    name = str(small_ledger.clients.set_index("client_id").at[LIVE, "name"])
    _sign_in(page, KEYS["officer"])
    page.wait_for_selector("#search-view:not([hidden])")
    page.fill("#query", name.split()[0].lower())  # part of the name, any case
    page.click("#search-form button")
    page.click(f"#results a:text-is('{LIVE}')")
    page.wait_for_selector("#waterfall .wf-bar")
    view = _post(server, "/client_view", {"client_id": LIVE}).json()
    assert page.inner_text("#client-title") == f"{name} ({LIVE})"
    assert page.inner_text("#grade") == str(view["score"]["grade"])
    assert page.locator("#scale-marker").count() == 1
    # one bar per contribution; the labels are the reasons in words
    assert page.locator("#waterfall .wf-bar").count() == len(view["waterfall"]) - 1
    assert view["waterfall"][1]["label"][:40] in page.text_content("#waterfall")
    assert page.locator("#history .history-bar").count() == len(view["payment_history"]) > 0
    assert page.locator("#aging tbody tr").count() == 5
    assert page.inner_text("#recommended-limit") == f"{view['score']['recommended_limit']:,.0f}"
    assert view["score"]["recommended_terms"] in page.inner_text("#recommended-terms")
    assert view["score"]["terms_rule"] in page.inner_text("#recommended-terms")
    assert page.is_visible("#letter-link") == (view["letter"] is not None)

    page.fill("#amount", "50,000")
    page.click("#limit-form button")
    decision = page.locator("#decision-text").inner_text()
    assert decision.startswith(DECISION_WORDS), decision
    assert page.locator("#decision .rules li").count() >= 1
    with sqlite3.connect(os.environ["CREDITGUARD_AUDIT_DB"]) as db:
        last = db.execute(
            "select decision from decisions where client_id = ? order by rowid desc", (LIVE,)
        ).fetchone()
    assert json.loads(last[0])["requested_amount"] == 50_000  # audited like any other decision


def test_the_page_explains_every_error(page: Any, server: str) -> None:
    _sign_in(page, "not-a-key")
    assert "unknown or revoked API key" in _error(page)
    _sign_in(page, EXPIRED_KEY)
    assert "expired on 2020-01-01" in _error(page)
    assert page.is_visible("#signin-view")

    _sign_in(page, KEYS["officer"])
    page.wait_for_selector("#search-view:not([hidden])")
    page.goto(f"{server}/ui/#client/NOPE")
    assert "client_id 'NOPE' is not in the ledger" in _error(page)

    page.goto(f"{server}/ui/#client/{LIVE}")
    page.wait_for_selector("#waterfall .wf-bar")
    for bad in ("-5", "abc", "0"):
        page.fill("#amount", bad)
        page.click("#limit-form button")
        assert "Invalid amount" in _error(page)
    assert page.is_hidden("#decision")
    assert page.inner_text("body").strip()  # never a blank page


def test_an_applicant_is_scored_from_the_form(page: Any) -> None:
    _sign_in(page, KEYS["officer"])
    page.click("#nav-applicant")
    page.fill("[name=name]", "Nordlicht Logistik GmbH")
    page.fill("[name=period_end]", "2024-12-31")
    page.fill("[name=revenue]", "4200000")
    page.fill("[name=equity]", "1200000")
    page.fill("[name=expected_monthly_purchases]", "40000")
    page.fill("[name=requested_limit]", "8000")
    page.click("#applicant-form button[type=submit]")
    page.wait_for_selector("#applicant-result:not([hidden])")
    assert "thin file" in page.inner_text("#applicant-score")
    assert page.locator("#applicant-decision-text").inner_text().startswith(DECISION_WORDS)
    page.fill("[name=revenue]", "lots")
    page.click("#applicant-form button[type=submit]")
    assert "Revenue" in _error(page) and "must be a number" in _error(page)


# --------------------------------------------------------------------------------------------
# The same ASGI app in this process (BentoML's app under Starlette's TestClient)


@pytest.fixture(scope="module")
def asgi(
    server: str,
    small_ledger_dir: Path,
    service_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """The service built in-process from the same registry and ledger as the real server."""
    from starlette.testclient import TestClient

    from serving.service import CreditGuard

    home = tmp_path_factory.mktemp("asgi")
    ledger = home / "ledger"
    shutil.copytree(small_ledger_dir, ledger)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDITGUARD_LEDGER", str(ledger))
        mp.setenv("CREDITGUARD_RUNS", str(service_home / "runs"))  # a run of the same ledger
        mp.setenv("CREDITGUARD_CACHE", str(home / "cache"))
        mp.setenv("CREDITGUARD_API_KEYS", ",".join(f"{r}:{k}" for r, k in KEYS.items()))
        with TestClient(CreditGuard.to_asgi()) as client:  # type: ignore[attr-defined]
            yield client


def _auth(role: str = "officer") -> dict[str, str]:
    return {"authorization": f"Bearer {KEYS[role]}"}


def test_the_nightly_run_answers_as_features_built_from_the_whole_ledger(
    server: str, service_home: Path
) -> None:
    """The worker read the run's features (its offline store exists), built no client's features
    at start, and answers on the run's day exactly as the service did when it built every
    client's features from the whole ledger at start; another day goes through the client's
    history read from its bucket, as it did through the whole ledger held in memory."""
    from features.io import load_ledger
    from features.payment_behaviour import build_client_features
    from features.pipeline import client_ledger
    from portfolio.runs import RunHistory
    from scoring.scorer import History, Scorer
    from serving.service import _document

    assert list((service_home / "cache" / "offline").glob("offline-*.arrow"))
    ledger = load_ledger(service_home / "ledger")
    day = ledger.extracted_on + pd.Timedelta(days=1)
    ids = sorted(ledger.clients["client_id"])[::4]
    served = _post(server, "/score_batch", {"client_ids": ids}, role="batch").json()["results"]
    scorer = Scorer.from_registry()
    history = RunHistory.load(service_home / "runs")
    limits = ledger.clients.set_index("client_id")["credit_limit"]

    def built(frame: pd.DataFrame, on: pd.Timestamp) -> dict[str, dict[str, Any]]:
        rows = scorer.prepare(frame)
        scores = scorer.score_rows(
            rows,
            history=History.of(history.before(on), rows.client_id, rows.as_of),
            current_limits=limits.reindex(rows.client_id).to_numpy(dtype="float64"),
        )
        docs = [
            _document(scorer, rows, scores, i).model_dump(mode="json") for i in range(len(rows))
        ]
        return {d["client_id"]: d for d in docs}

    whole = build_client_features(ledger, as_of_dates=[day])
    expected = built(whole[whole["client_id"].isin(ids)].reset_index(drop=True), day)
    compared = 0
    for item in served:
        if item["score"] is None:
            assert item["client_id"] not in expected
            continue
        assert item["score"] == expected[item["client_id"]], item["client_id"]
        compared += 1
    assert compared >= 80
    earlier = pd.Timestamp("2024-01-15")
    for client in ids[:6]:
        r = _post(server, "/score", {"client_id": client, "as_of": str(earlier.date())})
        if r.status_code == 422:  # not yet onboarded then
            continue
        mine = build_client_features(client_ledger(ledger, [client]), as_of_dates=[earlier])
        assert r.json() == built(mine, earlier)[client]


def test_in_process_scores_equal_the_served_ones(asgi: Any, server: str) -> None:
    body = {"client_id": LIVE, "requested_limit": 30_000}
    here = asgi.post("/score", json=body, headers=_auth())
    assert here.status_code == 200, here.text
    there = _post(server, "/score", body).json()
    assert here.json() == there


def test_in_process_errors_are_4xx_that_say_why(asgi: Any) -> None:
    r = asgi.post("/score", json={"client_id": LIVE})
    assert r.status_code == 401 and "missing bearer token" in r.json()["error"]
    r = asgi.post("/score_batch", json={"client_ids": [LIVE]}, headers=_auth())
    assert r.status_code == 403 and "may not score_batch" in r.json()["error"]
    r = asgi.post("/client_view", json={"client_id": "NOPE"}, headers=_auth())
    assert r.status_code == 404 and "NOPE" in r.json()["error"]
    r = asgi.post("/search_clients", json={"query": "   "}, headers=_auth())
    assert r.status_code == 422 and "blank" in r.json()["error"]
    r = asgi.post(
        "/score", content=b"client_id=C1", headers=_auth() | {"content-type": "text/plain"}
    )
    assert r.status_code == 415


def test_an_officer_records_an_action_audited_and_seen_by_the_deadlines(asgi: Any) -> None:
    """/record_action: checked against the contract (4xx naming the field), refused to a role
    without it, appended to the ledger's log and the audit log; the view reads it at once."""
    view = asgi.post("/client_view", json={"client_id": LIVE}, headers=_auth()).json()
    r = asgi.post(
        "/record_action",
        json={"client_id": LIVE, "action": "promise_to_pay", "on": "2099-01-01"},
        headers=_auth(),
    )
    assert r.status_code == 422 and "after the extraction date" in r.text
    r = asgi.post(
        "/record_action",
        json={
            "client_id": LIVE,
            "action": "promise_to_pay",
            "on": "2024-06-01",
            "invoice_id": "NOPE",
        },
        headers=_auth(),
    )
    assert r.status_code == 422 and "invoice_id refers to no invoice of its client" in r.text
    r = asgi.post(
        "/record_action",
        json={"client_id": LIVE, "action": "letter_sent", "on": "2024-06-01"},
        headers=_auth("batch"),
    )
    assert r.status_code == 403
    body = {"client_id": LIVE, "action": "promise_to_pay", "on": "2025-06-29", "amount": 1200.0}
    r = asgi.post("/record_action", json={**body, "note": "by phone"}, headers=_auth())
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "promise_to_pay" and r.json()["on"] == "2025-06-29"
    again = asgi.post("/client_view", json={"client_id": LIVE}, headers=_auth()).json()
    assert again["actions"][0] == {
        "client_id": LIVE,
        "invoice_id": None,
        "action": "promise_to_pay",
        "on": "2025-06-29",
        "amount": 1200.0,
        "note": "by phone",
    }
    assert all(
        w["last_action"] == "promise to pay on 2025-06-29 (1,200)"
        for w in again["worklist"]
        if w["queue"] != "insurer"
    )
    assert view["score"]["pd_12m"] == again["score"]["pd_12m"]  # recorded, not scored
    with sqlite3.connect(os.environ["CREDITGUARD_AUDIT_DB"]) as db:
        last = db.execute(
            "select client_id, action, amount from actions order by rowid desc"
        ).fetchone()
    assert last == (LIVE, "promise_to_pay", 1200.0)


def test_a_client_in_dunning_gets_its_letter_in_the_view(asgi: Any, small_ledger: Ledger) -> None:
    """A client 1-30 days past due on undisputed invoices and not in default: the reminder, in
    its country's language, listing every overdue invoice of the dunning queue."""
    from scoring.collections import letter_language
    from scoring.receivables import open_invoices, with_stage

    day = small_ledger.extracted_on + pd.Timedelta(days=1)
    inv = with_stage(open_invoices(small_ledger, day), day)
    inv = inv[~inv["disputed"]]
    worst = inv.groupby("client_id")["days_past_due"].max()
    for client_id in worst[(worst >= 1) & (worst <= 30)].index[:30]:
        view = asgi.post("/client_view", json={"client_id": client_id}, headers=_auth()).json()
        if [w["queue"] for w in view["worklist"]] == ["dunning"]:
            break
    else:
        pytest.fail("no client 1-30 days past due in the dunning queue alone")
    letter = view["letter"]
    assert (letter["client_id"], letter["template"]) == (client_id, "reminder")
    country = small_ledger.clients.set_index("client_id").at[client_id, "country"]
    assert letter["language"] == letter_language(np.array([country], dtype=object))[0]
    overdue = inv[(inv["client_id"] == client_id) & (inv["days_past_due"] > 0)]
    assert all(i in letter["html"] for i in overdue["invoice_id"])
    assert "{{" not in letter["html"]


def test_in_process_client_view_and_search(asgi: Any) -> None:
    view = asgi.post("/client_view", json={"client_id": LIVE}, headers=_auth()).json()
    assert view["score"]["client_id"] == LIVE and len(view["master_scale"]) == 10
    assert view["waterfall"][0]["label"].startswith("average client")
    assert [a["bucket"] for a in view["aging"]] == [
        "not yet due",
        *(f"{b} DPD" for b in ("1-30", "31-60", "61-90", "90+")),
    ]
    found = asgi.post("/search_clients", json={"query": "c000004"}, headers=_auth()).json()
    assert found["matches"] and all("C000004" in m["client_id"] for m in found["matches"])
    assert asgi.get("/ui/").status_code == 200


def test_a_client_onboarded_since_the_run_is_scored_through_the_online_path(
    server: str, service_home: Path, tmp_path: Path
) -> None:
    """The ledger extracted again (same folder) with a client the run never saw: the run still
    answers its clients on its day; the new client is read from its bucket and built."""
    from portfolio.runs import RunHistory
    from scoring.scorer import Scorer
    from serving.offline import OfflineStore
    from serving.online import OnlineLedger

    folder = tmp_path / "ledger"
    shutil.copytree(service_home / "ledger", folder)
    runs = tmp_path / "runs"
    shutil.copytree(service_home / "runs", runs, symlinks=True)
    run = RunHistory.load(runs).latest()
    assert run is not None
    stamp = json.loads((run / "run.json").read_text())
    stamp["ledger"]["folder"] = str(folder)  # the run of this folder, the night before
    (run / "run.json").write_text(json.dumps(stamp))
    clients = pd.read_parquet(folder / "clients.parquet")
    new = clients.iloc[[0]].assign(client_id="C0999999", onboarded_on=pd.Timestamp("2024-02-01"))
    pd.concat([clients, new], ignore_index=True).to_parquet(folder / "clients.parquet", index=False)
    scorer = Scorer.from_registry()
    ledger = OnlineLedger(folder, tmp_path / "cache")
    history = RunHistory.load(runs)
    from portfolio.run import scored_ledger

    assert scored_ledger(run, ledger.files, ledger.extracted_on)
    store = OfflineStore.open(run, scorer, history, tmp_path / "cache")
    assert store is not None
    day = ledger.default_day
    assert store.rows_of([LIVE], day) is not None
    assert store.rows_of(["C0999999"], day) is None  # not in the run: the online path
    features = ledger.batch_features(["C0999999"], day)
    assert list(features["client_id"]) == ["C0999999"]
    scores = scorer.score_rows(scorer.prepare(features))
    assert 0.0 < float(scores.pd_12m[0]) <= 1.0
