"""A service worker's memory and start against the portfolio's size, and /score latency, beside the
service as it was (every client's features built at start from the whole ledger), in one run.

    .venv/bin/python benchmarks/spark_scale.py    # the partitioned ledgers and their runs
    .venv/bin/python benchmarks/service_scale.py  # --ledger ...; default: the demo's, 10k, 100k

For each ledger, its partitioned form (data/bench/partitioned/<name>, written by spark_scale.py or
here) and its nightly run (data/bench/runs/<name>/local; scored here when missing) are served by
`creditguard serve --workers 1`: first with a fresh cache (the worker builds the run's offline
store itself, as when champions were promoted since the night), then with the store ready (as
`creditguard nightly` leaves it, or a restart finds it), started three times (the median is
reported: starts move by seconds on this machine). Measured: the time until /readyz, the worker's
RSS after start, its peak over 1,000 /score calls on random clients (sampled), and wrk's latency
at concurrency 1 and throughput at 16 on 200 random clients for `--seconds` each. Goal: the
worker's peak and the start (store ready) within 20 % from the smallest portfolio to the largest,
latency unchanged.

The peer is this service before the change (git `--before`, default 34ba4f3), served from a
worktree of that commit against the plain ledger folder, at the portfolios it can hold (it loads
the whole ledger in every worker: `--before-max` clients, default 10,000).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import requests
from _http import KEY, LUA, free_port, load, server
from _util import bench_name

ROOT = Path(__file__).resolve().parents[1]
CALLS = 1000
STARTS = 3  # restarts timed per portfolio (their median is reported)


def _worker(proc: subprocess.Popen[bytes]) -> psutil.Process:
    """The BentoML worker process under the `creditguard serve` process."""
    for child in psutil.Process(proc.pid).children(recursive=True):
        if "_bentoml_impl.worker" in " ".join(child.cmdline()):
            return child
    raise RuntimeError("no worker process found")


def _sample(process: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)


def _clients(parted: Path, count: int, seed: int) -> list[str]:
    import pandas as pd

    sys.path.insert(0, str(ROOT))
    from features.partitioned import read_clients

    clients = read_clients(parted, ["client_id", "onboarded_on"])
    day = pd.Timestamp(json.loads((parted / "manifest.json").read_text())["extracted_on"])
    ids = clients.loc[clients["onboarded_on"] <= day, "client_id"].to_numpy()
    return sorted(np.random.default_rng(seed).choice(ids, count, replace=False).tolist())


def start_only(cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> float:
    """Seconds from the command to /readyz (then stopped)."""
    start = time.perf_counter()
    with server(cmd, env, ready_url, log):
        return time.perf_counter() - start


def measure(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    ready_url: str,
    folder: Path,
    ids: list[str],
    seconds: int,
) -> dict[str, float]:
    """Start, RSS after start, peak over the 1,000 calls, wrk at 1 and 16."""
    start = time.perf_counter()
    with server(cmd, env, ready_url, folder / f"{name}.log") as proc:
        started = time.perf_counter() - start
        worker = _worker(proc)
        after_start = worker.memory_info().rss
        base = ready_url.removesuffix("/readyz")
        stop, peak = threading.Event(), [after_start]
        sampler = threading.Thread(target=_sample, args=(worker, stop, peak), daemon=True)
        sampler.start()
        session = requests.Session()
        headers = {"authorization": f"Bearer {KEY}"}
        rng = np.random.default_rng(1)
        latencies = []
        for client in rng.choice(ids, CALLS):
            t = time.perf_counter()
            r = session.post(
                f"{base}/score", json={"client_id": client}, headers=headers, timeout=60
            )
            latencies.append(time.perf_counter() - t)
            r.raise_for_status()
        stop.set()
        sampler.join()
        bodies = folder / f"{name}.jsonl"
        bodies.write_text("".join(json.dumps({"client_id": c}) + "\n" for c in ids[:200]))
        lua = folder / "bench.lua"
        lua.write_text(LUA)
        one = load(f"{base}/score", bodies, concurrency=1, seconds=seconds, lua=lua)
        many = load(f"{base}/score", bodies, concurrency=16, seconds=seconds, lua=lua)
    return {
        "start_s": started,
        "rss_start_mib": after_start / 2**20,
        "rss_peak_mib": peak[0] / 2**20,
        "calls_p50_ms": float(np.percentile(latencies, 50) * 1000),
        "calls_p99_ms": float(np.percentile(latencies, 99) * 1000),
        "p50_ms": one["p50"],
        "p99_ms": one["p99"],
        "rps_16": many["rps"],
        "errors": one["errors"] + many["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ledger", type=Path, action="append", help="(default: the demo and benchmark ledgers)"
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--before", default="34ba4f3")
    parser.add_argument("--before-max", type=int, default=10_000)
    args = parser.parse_args()
    args.ledger = args.ledger or [
        ROOT / "data" / "demo" / "ledger",
        ROOT / "data" / "bench" / "ledger10k",
        ROOT / "data" / "bench" / "ledger",
    ]
    missing = [str(p) for p in args.ledger if not (p / "manifest.json").exists()]
    if missing:
        sys.exit(f"no ledger at {', '.join(missing)}: see this script's docstring")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: sudo apt-get install wrk")
    cli = str(Path(sys.executable).with_name("creditguard"))
    store = f"sqlite:///{ROOT / 'models' / 'mlflow.db'}"
    results: list[tuple[str, int, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        old = work / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
            check=True,
            capture_output=True,
        )
        try:
            for ledger in args.ledger:
                manifest = json.loads((ledger / "manifest.json").read_text())
                clients = int(manifest["rows"]["clients"])
                parted = ROOT / "data" / "bench" / "partitioned" / bench_name(ledger)
                if not (parted / "manifest.json").exists():
                    buckets = -(-clients // 2048)
                    subprocess.run(
                        [cli, "partition", str(ledger), str(parted), "--buckets", str(buckets)],
                        check=True,
                    )
                runs = ROOT / "data" / "bench" / "runs" / bench_name(ledger) / "local"
                if not (runs / "latest").exists():
                    subprocess.run(
                        [cli, "score", "--ledger", str(parted), "--out", str(runs), "--no-history"],
                        check=True,
                    )
                ids = _clients(parted, 1000, seed=0)
                for fresh in (True, False):  # the first start builds the offline store
                    port = free_port()
                    ready = f"http://127.0.0.1:{port}/readyz"
                    env = dict(
                        os.environ,
                        MLFLOW_TRACKING_URI=store,
                        CREDITGUARD_API_KEYS=f"officer:{KEY}",
                        CREDITGUARD_AUDIT_DB=str(work / "audit.db"),
                        CREDITGUARD_LEDGER=str(parted),
                        CREDITGUARD_RUNS=str(runs),
                        CREDITGUARD_CACHE=str(work / f"cache-{ledger.name}"),
                        BENTOML_HOME=str(work / "bentoml"),
                    )
                    cmd = [cli, "serve", "--port", str(port), "--workers", "1"]
                    label = "now, first start" if fresh else "now, restart"
                    starts = []
                    if not fresh:  # start times move by seconds here: the median of three
                        for k in range(STARTS - 1):
                            log = work / f"start-{ledger.name}-{k}.log"
                            starts.append(start_only(cmd, env, ready, log))
                    r = measure(
                        f"now-{ledger.name}-{fresh}", cmd, env, ready, work, ids, args.seconds
                    )
                    if starts:
                        r["starts_s"] = [*starts, r["start_s"]]  # type: ignore[assignment]
                        r["start_s"] = float(np.median(r["starts_s"]))
                    results.append((ledger.name, clients, label, r))
                    print(ledger.name, label, json.dumps(r), flush=True)
                if clients > args.before_max:
                    continue
                port = free_port()
                env = dict(
                    os.environ,
                    PYTHONPATH=str(old),
                    MLFLOW_TRACKING_URI=store,
                    CREDITGUARD_API_KEYS=f"officer:{KEY}",
                    CREDITGUARD_AUDIT_DB=str(work / "audit-before.db"),
                    CREDITGUARD_LEDGER=str(ledger.resolve()),
                    CREDITGUARD_RUNS=str(runs),
                    BENTOML_HOME=str(work / "bentoml-before"),
                )
                cmd = [
                    sys.executable,
                    "-c",
                    "from creditguard.cli import app; app()",
                    "serve",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ]
                r = measure(
                    f"before-{ledger.name}",
                    cmd,
                    env,
                    f"http://127.0.0.1:{port}/readyz",
                    work,
                    ids,
                    args.seconds,
                )
                results.append((ledger.name, clients, f"before ({args.before})", r))
                print(ledger.name, "before", json.dumps(r), flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                check=False,
                capture_output=True,
            )
    print(
        f"\n{'ledger':<10} {'clients':>8} {'service':<22} {'start s':>7} {'RSS start':>9} "
        f"{'RSS peak':>8} {'p50 ms':>6} {'p99 ms':>6} {'req/s 16':>8} {'errors':>6}"
    )
    for name, clients, label, r in results:
        print(
            f"{name:<10} {clients:>8,} {label:<22} {r['start_s']:>7.1f} {r['rss_start_mib']:>9,.0f} "
            f"{r['rss_peak_mib']:>8,.0f} {r['p50_ms']:>6.2f} {r['p99_ms']:>6.2f} "
            f"{r['rps_16']:>8.0f} {r['errors']:>6.0f}"
        )
    for label in ("now, first start", "now, restart"):
        rows = [(c, r) for _, c, lab, r in results if lab == label]
        if len(rows) < 2:
            continue
        (small_c, small), (large_c, large) = (
            min(rows, key=lambda x: x[0]),
            max(rows, key=lambda x: x[0]),
        )
        for key, what in (("rss_peak_mib", "worker peak RSS"), ("start_s", "start")):
            ratio = large[key] / small[key]
            verdict = "met" if ratio <= 1.2 else "MISSED"
            print(
                f"{label}: {what} at {large_c:,} clients / at {small_c:,}: {ratio:.2f}x "
                f"(goal within 20 %: {verdict})"
            )
    for name, _, label, r in results:
        if label.startswith("before"):
            now = next(x for n, _, lab, x in results if n == name and lab == "now, restart")
            print(
                f"{name}: p99 at 1 {now['p99_ms']:.2f} ms vs {r['p99_ms']:.2f} ms before; "
                f"{now['rps_16']:.0f} vs {r['rps_16']:.0f} req/s at 16; worker peak "
                f"{now['rss_peak_mib']:,.0f} vs {r['rss_peak_mib']:,.0f} MiB; start "
                f"{now['start_s']:.1f} vs {r['start_s']:.1f} s"
            )


if __name__ == "__main__":
    main()
