"""Portfolio scoring speed and memory, beside a straightforward peer, in the same run.

    make demo                                       # champions in models/mlflow.db
    .venv/bin/python benchmarks/generate.py         # writes data/bench/ledger (100,000 x 36)
    .venv/bin/python benchmarks/features.py --keep data/bench   # or any client feature table
    .venv/bin/python benchmarks/portfolio.py --ledger data/bench/ledger \
        --features data/bench/features_client_2024.parquet

1. End to end: `creditguard score` on the ledger (load, validate, features, PD, late-payment
   probability, reasons, limits, open invoices, report), wall time and clients per second.
2. The scoring core alone on feature tables of 100,000 and ~1,000,000 rows, streamed in batches:
   clients per second with and without reasons, and peak memory of each (the goal: within 20 %).
3. The peer on the same model and rows: MLflow pyfunc `predict` (PD only) plus
   `shap.TreeExplainer(...).shap_values` for the reasons; clients per second and the ratio.
Both sides are warmed up on 64 rows before the clock starts (model loading is not throughput;
64 rows take the batch path, whose compiled kernels load on first use).
The feature table is read with `pre_buffer=False`: pyarrow's pre-buffering keeps column chunks
of earlier row groups, and its memory grew by ~270 MiB over this table with no scoring at all.
Each measurement runs in its own process, one at a time (LightGBM on 2 cores hates company).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _util import run_child

CORE = """
import json, time
import numpy as np, pandas as pd, pyarrow.parquet as pq
from scoring.scorer import Scorer
scorer = Scorer.from_registry()
rows, reasons, limit = 0, {reasons}, {limit}
warm = next(pq.ParquetFile({path!r}).iter_batches(batch_size=64)).to_pandas()
scorer.score(warm, reasons=reasons, threads=2)  # loading: trees compiled, batch kernels loaded
start = time.perf_counter()
for batch in pq.ParquetFile({path!r}, pre_buffer=False).iter_batches(batch_size=50_000):
    frame = batch.to_pandas(split_blocks=True, self_destruct=True)
    if rows + len(frame) > limit:
        frame = frame.iloc[: limit - rows]
    scorer.score(frame, reasons=reasons, threads=2)
    rows += len(frame)
    if rows >= limit:
        break
print(json.dumps({{"rows": rows, "seconds": time.perf_counter() - start}}))
"""

PEER = """
import json, time, warnings
warnings.simplefilter("ignore")
import mlflow, pandas as pd, pyarrow.parquet as pq, shap
from scoring.store import load_bundle, tracking_uri
mlflow.set_tracking_uri(tracking_uri())
model = mlflow.pyfunc.load_model("models:/creditguard-default@champion")
bundle = load_bundle("creditguard-default", "champion")
frame = next(pq.ParquetFile({path!r}).iter_batches(batch_size={rows})).to_pandas()
features = frame[bundle.features]
model.predict(features.head(64), params={{"reasons": False}})  # loading, as for ours
shap.TreeExplainer(bundle.booster).shap_values(bundle.matrix(features.head(64)))
start = time.perf_counter()
pd_ = model.predict(features, params={{"reasons": False}})
explainer = shap.TreeExplainer(bundle.booster)
values = explainer.shap_values(bundle.matrix(features))
print(json.dumps({{"rows": len(frame), "seconds": time.perf_counter() - start}}))
"""

E2E = """
import json, time
from pathlib import Path
from portfolio.run import run_scoring
start = time.perf_counter()
_, figures = run_scoring(Path({ledger!r}), None, Path({out!r}))
print(json.dumps({{"clients": figures["clients"], "invoices": figures["open_invoices"],
                  "seconds": time.perf_counter() - start}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--ledger",
        type=Path,
        action="append",
        default=[],
        help="ledger for an end-to-end run (repeat it: small to large, to compare peak memory)",
    )
    parser.add_argument("--features", type=Path, help="client feature table for the core runs")
    parser.add_argument("--peer-rows", type=int, default=20_000)
    parser.add_argument("--reasons-rows", type=int, default=100_000)
    args = parser.parse_args()

    ends = []
    for ledger in args.ledger:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_child(E2E.format(ledger=str(ledger), out=str(Path(tmp) / "run")))
        ends.append(r)
        print(
            f"end to end ({ledger}): {r['clients']:,} clients and {r['invoices']:,} open "
            f"invoices in {r['seconds']:.0f} s = {r['clients'] / r['seconds']:,.0f} clients/s "
            f"(load and validation included), peak RSS {r['peak_rss_mib']:,.0f} MiB",
            flush=True,
        )
    if len(ends) > 1:
        growth = ends[-1]["clients"] / ends[0]["clients"]
        ratio = ends[-1]["peak_rss_mib"] / ends[0]["peak_rss_mib"]
        print(
            f"end to end: {growth:.0f}x the clients took {ratio:.2f}x the peak memory "
            f"(flat within 20 %: {'met' if ratio <= 1.2 else 'MISSED'})",
            flush=True,
        )
    if args.features is None:
        return
    path = str(args.features)
    small = run_child(CORE.format(path=path, reasons=False, limit=100_000))
    large = run_child(CORE.format(path=path, reasons=False, limit=10**9))
    with_reasons = run_child(CORE.format(path=path, reasons=True, limit=args.reasons_rows))
    peer = run_child(PEER.format(path=path, rows=args.peer_rows))
    rate = {k: v["rows"] / v["seconds"] for k, v in (("small", small), ("large", large))}
    ours_reasons = with_reasons["rows"] / with_reasons["seconds"]
    peer_rate = peer["rows"] / peer["seconds"]
    print(
        f"scoring core without reasons (PD, grade, late probability, limit): "
        f"{small['rows']:,} rows at {rate['small']:,.0f}/s, peak {small['peak_rss_mib']:,.0f} MiB; "
        f"{large['rows']:,} rows at {rate['large']:,.0f}/s, peak {large['peak_rss_mib']:,.0f} MiB "
        f"(memory ratio {large['peak_rss_mib'] / small['peak_rss_mib']:.2f}; goal within 20 %: "
        f"{'met' if large['peak_rss_mib'] <= 1.2 * small['peak_rss_mib'] else 'MISSED'}; "
        f"goal >= 100,000/s: {'met' if rate['large'] >= 100_000 else 'MISSED'})"
    )
    print(
        f"scoring core with reasons: {with_reasons['rows']:,} rows at {ours_reasons:,.0f}/s; "
        f"peer (MLflow pyfunc predict + shap.TreeExplainer) on {peer['rows']:,} rows: "
        f"{peer_rate:,.0f}/s; ratio {ours_reasons / peer_rate:.1f}x (goal >= 3x: "
        f"{'met' if ours_reasons >= 3 * peer_rate else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
