"""Training time and memory on the 100,000-client x 12-snapshot feature table, search included.

    .venv/bin/python benchmarks/training.py --ledger data/bench/ledger    # a 100,000 x 36 ledger
    .venv/bin/python benchmarks/training.py --features FILE              # or a feature table

With --ledger it first builds client features at the 12 month-ends of 2024 (outcomes known by the
end of 2025), untimed, into the ledger's parent folder.

Goal: under 15 minutes on 2 cores including the hyper-parameter search. The same run trains the
scorecard benchmark and, as the peer, LightGBM with library defaults on the same rows, and prints
wall time and AUC of each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _util import run_child

CODE = """
import json, time
import pandas as pd
from training.config import TrainConfig
from training.specs import ledger_spec
from training.train import train_model, usable_rows
t0 = time.perf_counter()
table = pd.read_parquet({path!r})
spec = ledger_spec("default")
t = time.perf_counter()
result = train_model(table, spec, TrainConfig())
ours = time.perf_counter() - t
import lightgbm as lgb, numpy as np
from training.train import _date_parts, _held_out
from sklearn.metrics import roc_auc_score
rows = usable_rows(table, spec)
cfg = TrainConfig()
part = _held_out(_date_parts(rows["as_of"], cfg, None), rows, spec, cfg)
x = result.bundle.matrix(rows)
y = rows["default_12m"].to_numpy(int)
t = time.perf_counter()
peer = lgb.LGBMClassifier(verbosity=-1, random_state=0).fit(x[(part == "train").to_numpy()], y[(part == "train").to_numpy()])
peer_s = time.perf_counter() - t
peer_auc = roc_auc_score(y[(part == "test").to_numpy()], peer.predict_proba(x[(part == "test").to_numpy()])[:, 1])
print(json.dumps({{"rows": len(table), "usable": len(rows), "seconds": ours, "auc": result.metrics["auc"],
                  "scorecard_auc": result.scorecard_metrics["auc"], "trials": len(result.trials),
                  "peer_seconds": peer_s, "peer_auc": peer_auc}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--ledger", type=Path)
    args = parser.parse_args()
    if args.features is None:
        if args.ledger is None:
            parser.error("give --features FILE or --ledger DIR")
        args.features = args.ledger.parent / "features_client_2024.parquet"
        run_child(
            "import json; from features.io import load_ledger; "
            "from features.pipeline import write_feature_table, month_ends; "
            f"print(json.dumps(write_feature_table(load_ledger({str(args.ledger)!r}), {str(args.features)!r}, "
            "unit='client', as_of_dates=month_ends('2024-01-31', '2024-12-31'))))"
        )
    r = run_child(CODE.format(path=str(args.features)))
    print(
        f"{r['rows']:,} snapshots ({r['usable']:,} usable): creditguard trained ({r['trials']} trials, calibration, "
        f"scorecard) in {r['seconds'] / 60:.1f} min, test AUC {r['auc']:.4f} (scorecard {r['scorecard_auc']:.4f}); "
        f"peak RSS {r['peak_rss_mib']:,.0f} MiB (goal < 15 min: {'met' if r['seconds'] < 900 else 'MISSED'})"
    )
    print(
        f"peer LightGBM defaults on the same training rows (test: held-out clients): {r['peer_seconds']:.0f} s, test AUC "
        f"{r['peer_auc']:.4f}; AUC gain {r['auc'] - r['peer_auc']:+.4f} for {r['seconds'] / r['peer_seconds']:.1f}x the time"
    )


if __name__ == "__main__":
    main()
