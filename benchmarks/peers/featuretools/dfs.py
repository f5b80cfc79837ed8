"""featuretools deep feature synthesis over a ledger sample, as the peer of benchmarks/features.py.

Runs in this folder's own environment (featuretools needs pandas 2). Reads the tables that
benchmarks/features.py wrote into DIR and prints one JSON line: seconds and the matrix's shape.
"""

import json
import sys
import time
import warnings
from pathlib import Path

import featuretools as ft
import pandas as pd

warnings.simplefilter("ignore")
WINDOWS = (30, 90, 180, 365)


def main(folder: Path) -> None:
    clients = pd.read_parquet(folder / "clients.parquet")
    paid = pd.read_parquet(folder / "paid.parquet")
    issued = pd.read_parquet(folder / "issued.parquet")
    cutoffs = pd.read_parquet(folder / "cutoffs.parquet")
    es = ft.EntitySet("ledger")
    es.add_dataframe(dataframe_name="clients", dataframe=clients, index="client_id")
    es.add_dataframe(
        dataframe_name="paid", dataframe=paid, index="invoice_id", time_index="paid_on"
    )
    es.add_dataframe(
        dataframe_name="issued", dataframe=issued, index="issued_id", time_index="issued_on"
    )
    es.add_relationship("clients", "client_id", "paid", "client_id")
    es.add_relationship("clients", "client_id", "issued", "client_id")
    start = time.perf_counter()
    shape = [0, 0]
    for window in WINDOWS:
        matrix, _ = ft.dfs(
            entityset=es,
            target_dataframe_name="clients",
            cutoff_time=cutoffs,
            agg_primitives=["count", "mean", "max", "std", "sum"],
            trans_primitives=[],
            training_window=f"{window} days",
            max_depth=1,
            verbose=False,
        )
        shape = [len(matrix), shape[1] + matrix.shape[1]]
    print(
        json.dumps({"seconds": time.perf_counter() - start, "rows": shape[0], "features": shape[1]})
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
