"""Serving latency and throughput: creditguard's /score (features + PD + reasons + limit) beside
`mlflow models serve` on the same champion (predict only, no reasons), in the same run.

    make demo                                   # champions in models/mlflow.db, the demo ledger
    .venv/bin/python benchmarks/serving.py [--seconds 20] [--workers 2]

Load comes from Debian's `wrk` (a compiled load generator; a Python client saturates two cores
first) with a Lua script that cycles through 200 clients for a fixed time (wrk cannot stop after a
fixed number of requests: its thread:stop() still waits out the duration) and prints p50/p95/p99 latency, throughput and errors. Each server gets the same number of worker
processes; the servers run one at a time. Goals on 2 cores: /score with reasons p99 <= 25 ms at
concurrency 1, >= 200 requests/s at concurrency 16, zero errors, and at least MLflow serve's
throughput although we return reasons.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests
from _http import KEY, LUA, free_port, load, server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.io import load_ledger  # noqa: E402
from features.payment_behaviour import build_client_features  # noqa: E402
from features.pipeline import client_ledger  # noqa: E402
from serving.online import DEFAULT_LEDGER  # noqa: E402


def _bodies(folder: Path, count: int) -> tuple[Path, Path, list[str]]:
    """JSON bodies for /score and for MLflow's /invocations, for the same clients on the same day."""
    ledger = load_ledger(DEFAULT_LEDGER)
    day = ledger.extracted_on + np.timedelta64(1, "D")
    onboarded = ledger.clients[ledger.clients["onboarded_on"] < day]
    ids = sorted(onboarded["client_id"].sample(count, random_state=0))
    features = build_client_features(client_ledger(ledger, ids), as_of_dates=[day])
    ours, peer = folder / "score.jsonl", folder / "invocations.jsonl"
    ours.write_text("".join(json.dumps({"client_id": c}) + "\n" for c in ids))
    rows = features.drop(columns=["as_of"]).astype(object)
    rows = rows.where(rows.notna(), None)
    with peer.open("w") as fh:
        for record in rows.to_dict("records"):
            fh.write(
                json.dumps({"dataframe_records": [record], "params": {"reasons": False}}) + "\n"
            )
    return ours, peer, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="length of each measurement")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes per server (2: `make serve` on two cores)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: sudo apt-get install wrk")
    if not (ROOT / "models" / "mlflow.db").exists() or not DEFAULT_LEDGER.exists():
        sys.exit("no champions or demo ledger: run `make demo` first")
    bin_ = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lua = folder / "bench.lua"
        lua.write_text(LUA)
        ours_bodies, peer_bodies, ids = _bodies(folder, 200)
        results: dict[str, dict[int, dict[str, float]]] = {}

        port = free_port()
        env = dict(
            os.environ,
            CREDITGUARD_API_KEYS=f"officer:{KEY}",
            CREDITGUARD_AUDIT_DB=str(folder / "audit.db"),
            BENTOML_HOME=str(folder / "bentoml"),
        )
        cmd = [
            str(bin_ / "creditguard"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        with server(cmd, env, f"http://127.0.0.1:{port}/readyz", folder / "ours.log"):
            check = requests.post(
                f"http://127.0.0.1:{port}/score",
                json={"client_id": ids[0]},
                headers={"authorization": f"Bearer {KEY}"},
                timeout=30,
            )
            check.raise_for_status()
            assert check.json()["risk_reasons"], "the service must return reasons"
            results["creditguard /score (features, PD, reasons, limit)"] = {
                c: load(
                    f"http://127.0.0.1:{port}/score",
                    ours_bodies,
                    concurrency=c,
                    seconds=args.seconds,
                    lua=lua,
                )
                for c in (1, 16)
            }

        port = free_port()
        cmd = [
            str(bin_ / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/creditguard-default@champion",
            "--env-manager",
            "local",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        env = dict(
            os.environ,
            MLFLOW_TRACKING_URI=f"sqlite:///{ROOT / 'models' / 'mlflow.db'}",
            PATH=f"{bin_}:{os.environ.get('PATH', '')}",  # mlflow execs uvicorn by name
        )
        with server(cmd, env, f"http://127.0.0.1:{port}/ping", folder / "mlflow.log"):
            first = peer_bodies.read_text().splitlines()[0]
            check = requests.post(
                f"http://127.0.0.1:{port}/invocations",
                data=first,
                headers={"content-type": "application/json"},
                timeout=30,
            )
            check.raise_for_status()
            predicted = check.json()["predictions"][0]
            assert "reason_1" not in predicted, (
                "the champion predates the reasons switch: re-run `make demo`"
            )
            results["mlflow models serve (PD only)"] = {
                c: load(
                    f"http://127.0.0.1:{port}/invocations",
                    peer_bodies,
                    concurrency=c,
                    seconds=args.seconds,
                    lua=lua,
                )
                for c in (1, 16)
            }

    print(
        f"\n{args.seconds} s per measurement (after a 3 s warm-up), {args.workers} worker(s) per server, wrk"
    )
    print(
        f"{'server':<52} {'conc':>4} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'req/s':>7} {'errors':>6}"
    )
    for name, by_c in results.items():
        for c, r in by_c.items():
            print(
                f"{name:<52} {c:>4} {r['p50']:>7.2f} {r['p95']:>7.2f} {r['p99']:>7.2f} "
                f"{r['rps']:>7.0f} {int(r['errors']):>6}"
            )
    ours, peer = results.values()
    print(
        f"\nthroughput ratio at concurrency 16 (creditguard / mlflow): {ours[16]['rps'] / peer[16]['rps']:.2f}x; "
        f"p99 ratio at concurrency 1: {ours[1]['p99'] / peer[1]['p99']:.2f}x"
    )
    goals = {
        "p99 <= 25 ms at concurrency 1": ours[1]["p99"] <= 25,
        ">= 200 req/s at concurrency 16": ours[16]["rps"] >= 200,
        "zero errors": ours[1]["errors"] + ours[16]["errors"] == 0,
        "at least MLflow serve's throughput": ours[16]["rps"] >= peer[16]["rps"],
    }
    print("goals: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in goals.items()))


if __name__ == "__main__":
    main()
