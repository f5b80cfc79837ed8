"""Client features at 12 month-end snapshots: our builder on the 100,000-client x 36-month ledger,
and side by side with featuretools (deep feature synthesis, same cutoff times) on a sample.

Prints wall time, invoice rows per second, peak memory against the ledger's in-memory size, and
the speed ratio against featuretools on the same sample. featuretools runs in its own locked
environment (benchmarks/peers/featuretools: it needs pandas 2), through uv.

    .venv/bin/python benchmarks/features.py [--clients 100000] [--sample 2000] [--ledger DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from _util import run_child

HERE = Path(__file__).resolve().parent
SNAPSHOTS = ("2024-01-31", "2024-12-31")  # 12 month-ends whose 12-month outcomes are known

FULL = """
import json, time
import pandas as pd
from features.io import load_ledger
from features.pipeline import write_feature_table, month_ends
t = time.perf_counter()
ledger = load_ledger({ledger!r})
load_s = time.perf_counter() - t
size = sum(int(f.memory_usage(deep=True).sum()) for f in ledger.tables().values())
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
load_peak = rss("VmHWM")
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark: measure the build alone
t = time.perf_counter()
stats = write_feature_table(ledger, {out!r}, unit="client", as_of_dates=month_ends(*{snapshots!r}))
build_s = time.perf_counter() - t
print(json.dumps({{"load_s": load_s, "build_s": build_s, "ledger_mib": size / 2**20,
                  "load_peak_mib": load_peak, "build_peak_mib": rss("VmHWM"),
                  "invoices": len(ledger.invoices), "rows": stats["rows"], "features": {features}}}))
"""

SAMPLE = """
import json, time
import numpy as np, pandas as pd
from features.io import load_ledger
from features.pipeline import client_ledger, month_ends
from features.payment_behaviour import build_client_features
ledger = load_ledger({ledger!r})
ids = np.sort(ledger.clients["client_id"].to_numpy(dtype=object))[:{sample}]
part = client_ledger(ledger, ids)
dates = month_ends(*{snapshots!r})
out = Path = {out!r}
inv = part.invoices
paid = inv[inv["paid_on"].notna()].assign(
    dpd=lambda d: (d["paid_on"] - d["due_on"]).dt.days.clip(lower=0).astype(float),
    dbd=lambda d: (d["due_on"] - d["paid_on"]).dt.days.clip(lower=0).astype(float),
)[["invoice_id", "client_id", "paid_on", "amount", "dpd", "dbd"]]
paid["invoice_id"] = paid["invoice_id"].astype(object); paid["client_id"] = paid["client_id"].astype(object)
issued = inv[["invoice_id", "client_id", "issued_on", "amount"]].rename(columns={{"invoice_id": "issued_id"}}).astype({{"issued_id": object, "client_id": object}})
clients = part.clients[["client_id", "onboarded_on"]].astype({{"client_id": object}})
cut = pd.DataFrame({{"client_id": np.repeat(clients["client_id"].to_numpy(), len(dates)),
                    "time": np.tile(np.array(dates, dtype="datetime64[ns]"), len(clients))}})
for name, frame in (("clients", clients), ("paid", paid), ("issued", issued), ("cutoffs", cut)):
    frame.astype({{c: "datetime64[ns]" for c in frame.columns if str(frame[c].dtype).startswith("datetime")}}).to_parquet(f"{{out}}/{{name}}.parquet", index=False)
t = time.perf_counter()
x = build_client_features(part, as_of_dates=dates)
print(json.dumps({{"seconds": time.perf_counter() - t, "rows": len(x), "features": x.shape[1] - 2, "invoices": len(inv)}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument(
        "--sample", type=int, default=2_000, help="clients in the featuretools comparison"
    )
    parser.add_argument(
        "--ledger", type=Path, help="reuse a generated ledger instead of generating one"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the generated ledger and feature table in this folder"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = args.ledger
        keep = args.keep or Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        if ledger is None:
            ledger = keep / "ledger"
            run_child(
                "import json; from features.synthetic import GeneratorConfig, generate_ledger; "
                f"print(json.dumps(generate_ledger(GeneratorConfig(clients={args.clients}), {str(ledger)!r}, progress=False)))"
            )
        peer_dir = Path(tmp) / "peer"
        peer_dir.mkdir()
        ours_sample = run_child(
            SAMPLE.format(
                ledger=str(ledger), sample=args.sample, snapshots=SNAPSHOTS, out=str(peer_dir)
            )
        )
        uv = shutil.which("uv") or str(HERE.parent / ".tools" / "bin" / "uv")
        proc = subprocess.run(
            [
                uv,
                "run",
                "--quiet",
                "--frozen",
                "--project",
                str(HERE / "peers" / "featuretools"),
                "python",
                str(HERE / "peers" / "featuretools" / "dfs.py"),
                str(peer_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        peer = json.loads(proc.stdout.strip().splitlines()[-1])
        full = run_child(
            FULL.format(
                ledger=str(ledger),
                snapshots=SNAPSHOTS,
                out=str(keep / "features_client.parquet"),
                features=ours_sample["features"],
            )
        )

    n = full["invoices"]
    print(
        f"ledger: {n:,} invoices, {full['ledger_mib']:,.0f} MiB in memory (loaded and validated in {full['load_s']:.0f} s)"
    )
    print(
        f"creditguard, 12 snapshots streamed to Parquet: {full['rows']:,} rows x {full['features']} features in {full['build_s']:.1f} s = "
        f"{n / full['build_s']:,.0f} ledger invoice rows/s ({12 * n / full['build_s']:,.0f} invoice-snapshots/s); "
        f"peak RSS while building {full['build_peak_mib']:,.0f} MiB (ledger and interpreter included) = "
        f"{full['build_peak_mib'] / full['ledger_mib']:.2f}x the ledger "
        f"(goal < 3x: {'met' if full['build_peak_mib'] < 3 * full['ledger_mib'] else 'MISSED'}); "
        f"peak while loading {full['load_peak_mib']:,.0f} MiB"
    )
    print(
        f"sample of {args.sample:,} clients ({ours_sample['invoices']:,} invoices), same 12 cutoffs: "
        f"creditguard {ours_sample['seconds']:.2f} s for {ours_sample['features']} features; "
        f"featuretools {peer['seconds']:.1f} s for {peer['features']} features"
    )
    print(
        f"speed ratio featuretools / creditguard: {peer['seconds'] / ours_sample['seconds']:.0f}x (goal >= 10x)"
    )


if __name__ == "__main__":
    main()
