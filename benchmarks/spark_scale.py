"""The Spark engine past one machine's memory: the driver's peak memory at 10,000 and 100,000
clients (goal: within 20 %, flat), and its time beside the local engine's, in the same run.

    make demo                                                    # the champions
    .venv/bin/creditguard generate --clients 10000 --seed 1 --out data/bench/ledger10k
    .venv/bin/creditguard generate --clients 100000 --seed 1 --out data/bench/ledger
    .venv/bin/python benchmarks/spark_scale.py   # --ledger A --ledger B; default: those two

Each ledger is first partitioned (`creditguard partition`, 2,048 clients a bucket; kept under
data/bench/partitioned and reused). Then, one at a time (two cores), `creditguard score` with the
local engine and with `--engine spark --master local[2]` on the same partitioned ledger: the
command's own process (the Spark driver's Python) is sampled twice a second with its children (the
JVM, which in local mode also hosts the executors; the Python workers). The runs are kept under
data/bench/runs/<ledger>/<engine> (the service benchmark reads them as the nightly runs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from _util import bench_name, run_sampled

ROOT = Path(__file__).resolve().parents[1]
BUCKET_CLIENTS = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ledger", type=Path, action="append", help="(default: the benchmark ledgers)"
    )
    parser.add_argument(
        "--engine",
        action="append",
        choices=["local", "spark"],
        help="(default: both, local first)",
    )
    args = parser.parse_args()
    args.engine = args.engine or ["local", "spark"]
    args.ledger = args.ledger or [
        ROOT / "data" / "bench" / "ledger10k",
        ROOT / "data" / "bench" / "ledger",
    ]
    missing = [str(p) for p in args.ledger if not (p / "manifest.json").exists()]
    if missing:
        sys.exit(f"no ledger at {', '.join(missing)}: see this script's docstring")
    cli = str(Path(sys.executable).with_name("creditguard"))
    rows = []
    for ledger in args.ledger:
        manifest = json.loads((ledger / "manifest.json").read_text())
        clients = int(manifest["rows"]["clients"])
        parted = ROOT / "data" / "bench" / "partitioned" / bench_name(ledger)
        partition = None
        if not (parted / "manifest.json").exists():
            buckets = -(-clients // BUCKET_CLIENTS)
            partition = run_sampled(
                [cli, "partition", str(ledger), str(parted), "--buckets", str(buckets)]
            )
        for engine in args.engine:
            out = ROOT / "data" / "bench" / "runs" / bench_name(ledger) / engine
            shutil.rmtree(out, ignore_errors=True)
            scratch = ROOT / "data" / "bench" / "scratch"
            scratch.mkdir(parents=True, exist_ok=True)
            cmd = [cli, "score", "--ledger", str(parted), "--out", str(out), "--no-history"]
            cmd += ["--scratch", str(scratch)]
            if engine == "spark":
                cmd += ["--engine", "spark", "--master", "local[2]"]
            result = run_sampled(cmd)
            rows.append({"ledger": ledger.name, "clients": clients, "engine": engine, **result})
            print(
                f"{ledger.name} {engine}: {result['wall_s']:.0f} s, driver {result['main_mib']:,.0f} MiB, "
                f"JVM {result['jvm_mib']:,.0f} MiB, Python workers {result['python_workers_mib']:,.0f} MiB",
                flush=True,
            )
        if partition is not None:
            print(
                f"{ledger.name} partitioned in {partition['wall_s']:.0f} s, peak "
                f"{partition['main_mib']:,.0f} MiB",
                flush=True,
            )
    print(
        f"\n{'ledger':<12} {'clients':>8} {'engine':<6} {'seconds':>8} {'clients/s':>9} "
        f"{'driver MiB':>10} {'JVM MiB':>8} {'workers MiB':>11}"
    )
    for r in rows:
        print(
            f"{r['ledger']:<12} {r['clients']:>8,} {r['engine']:<6} {r['wall_s']:>8.0f} "
            f"{r['clients'] / r['wall_s']:>9.0f} {r['main_mib']:>10,.0f} {r['jvm_mib']:>8,.0f} "
            f"{r['python_workers_mib']:>11,.0f}"
        )
    spark = [r for r in rows if r["engine"] == "spark"]
    local = {r["ledger"]: r for r in rows if r["engine"] == "local"}
    for r in (r for r in spark if r["ledger"] in local):
        print(
            f"{r['ledger']}: Spark takes {r['wall_s'] / local[r['ledger']]['wall_s']:.2f}x the "
            f"local engine's time; driver {r['main_mib'] / local[r['ledger']]['main_mib']:.2f}x "
            "the local process's peak"
        )
    if len(spark) >= 2:
        small, large = (
            min(spark, key=lambda r: r["clients"]),
            max(spark, key=lambda r: r["clients"]),
        )
        ratio = large["main_mib"] / small["main_mib"]
        verdict = "met" if ratio <= 1.2 else "MISSED"
        print(
            f"driver peak at {large['clients']:,} clients / at {small['clients']:,}: {ratio:.2f}x "
            f"(goal within 20 %: {verdict})"
        )


if __name__ == "__main__":
    main()
