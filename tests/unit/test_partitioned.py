"""The partitioned ledger: written from a plain folder, read back whole, bucket by bucket and a
client at a time, and every bad layout named (`features.partitioned`)."""

from __future__ import annotations

import json
import shutil
from contextlib import closing
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.actions import record_action
from features.contract import BY_INVOICE
from features.errors import InputError
from features.io import (
    LedgerFileError,
    check_files,
    load_ledger,
    read_layout,
    read_raw_ledger,
)
from features.partitioned import (
    BucketRejectedError,
    client_part,
    partition_folder,
    read_parts,
    shared_checks,
)
from features.pipeline import client_ledger, iter_bucket_features
from features.stream import ledger_parts
from features.synthetic import GeneratorConfig, generate_ledger

TINY = GeneratorConfig(clients=60, months=14, seed=3)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "ledger"
    generate_ledger(TINY, out, progress=False)
    return out


@pytest.fixture(scope="module")
def parted(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parted") / "ledger"
    partition_folder(plain, out, buckets=4)
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / folder.name
    shutil.copytree(folder, out)
    return out


def test_every_table_is_bucketed_hive_style_with_whole_clients(parted: Path, plain: Path) -> None:
    layout = read_layout(parted)
    assert layout is not None and layout.buckets == 4
    assert (parted / "invoices" / "bucket=0" / "part-0.parquet").exists()
    assert (parted / "invoices" / "bucket=4").is_dir()  # the rows of no client
    ledger = load_ledger(plain)
    for k, (first, last) in enumerate(layout.clients):
        ids = set(pq.read_table(parted / "clients" / f"bucket={k}")["client_id"].to_pylist())
        assert ids and min(ids) == first and max(ids) == last
        invoices = pq.read_table(parted / "invoices" / f"bucket={k}").to_pandas()
        assert set(invoices["client_id"]) <= ids  # a client's invoices are in its bucket
        for name in BY_INVOICE:  # and so are the payments of them
            rows = pq.read_table(parted / name / f"bucket={k}").to_pandas()
            assert set(rows["invoice_id"]) <= set(invoices["invoice_id"])
    # nothing lost: the raw tables read back whole, row for row, in their files' order
    for name, frame in read_raw_ledger(plain).items():
        pd.testing.assert_frame_equal(read_raw_ledger(parted)[name], frame)
    assert check_files(parted).rows == check_files(plain).rows
    assert len(load_ledger(parted).invoices) == len(ledger.invoices)


def test_bucket_parts_equal_the_streaming_parts(parted: Path, plain: Path) -> None:
    """Bucket k holds what the streaming reader's part k holds (the same client ranges)."""
    layout = read_layout(parted)
    assert layout is not None
    size = -(-60 // 4)
    with (
        closing(read_parts(parted)) as buckets,
        closing(ledger_parts(plain, part_clients=size)) as parts,
    ):
        for a, b in zip(buckets, parts, strict=True):
            for name, frame in b.ledger.tables().items():
                pd.testing.assert_frame_equal(
                    a.ledger.table(name).reset_index(drop=True), frame.reset_index(drop=True)
                )


def test_a_client_read_alone_equals_its_slice_of_the_whole_ledger(
    parted: Path, plain: Path
) -> None:
    whole = load_ledger(plain)
    shared, _ = shared_checks(parted)
    for client in whole.clients["client_id"].iloc[[0, 17, 59]]:
        part = client_part(parted, client, shared)
        assert part is not None
        mine = client_ledger(whole, [client])
        for name, frame in mine.tables().items():
            pd.testing.assert_frame_equal(
                part.ledger.table(name).reset_index(drop=True), frame.reset_index(drop=True)
            )
    assert client_part(parted, "C9999999", shared) is None


def test_a_missing_table_or_bucket_is_named(parted: Path, tmp_path: Path) -> None:
    folder = _copy(parted, tmp_path)
    shutil.rmtree(folder / "payments" / "bucket=2")
    with pytest.raises(LedgerFileError, match=r"bucket 2 of table payments is missing"):
        check_files(folder)
    shutil.rmtree(folder / "payments")
    with pytest.raises(
        LedgerFileError, match=r"table payments is missing \(the manifest lists it\)"
    ):
        check_files(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["layout"]["clients"] = manifest["layout"]["clients"][:2]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(LedgerFileError, match=r"2 client ranges for 4 buckets"):
        check_files(folder)


def test_a_client_split_across_buckets_is_rejected_naming_the_bucket(
    parted: Path, tmp_path: Path
) -> None:
    folder = _copy(parted, tmp_path)
    first = folder / "invoices" / "bucket=0" / "part-0.parquet"
    other = folder / "invoices" / "bucket=1" / "part-0.parquet"
    moved = pq.read_table(first).slice(0, 2)  # two invoices of a bucket-0 client, in bucket 1
    pq.write_table(pa.concat_tables([pq.read_table(other), moved]), other)
    with closing(read_parts(folder)) as parts:
        pieces = list(parts)
    rejected = pieces[1].rejected["invoices"]
    assert len(rejected) == 2, rejected
    assert rejected["reasons"].str.contains("outside bucket 1").all()
    assert rejected["reasons"].str.contains("split across buckets").all()
    # and a training read refuses the bucket, naming it and the rows
    with pytest.raises(BucketRejectedError, match=r"bucket 1 break the data contract"):
        list(iter_bucket_features(folder, unit="client", as_of_dates=["2024-01-31"]))


def test_partitioning_refuses_bad_input_and_writes_nothing(plain: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 1"):
        partition_folder(plain, tmp_path / "out", buckets=0)
    broken = _copy(plain, tmp_path)
    (broken / "invoices.parquet").write_bytes(b"not parquet")
    with pytest.raises(LedgerFileError, match=r"invoices\.parquet"):
        partition_folder(broken, tmp_path / "out", buckets=2)
    assert not (tmp_path / "out").exists()


def test_an_action_recorded_in_a_partitioned_ledger_joins_its_clients_bucket(
    parted: Path, tmp_path: Path
) -> None:
    folder = _copy(parted, tmp_path)
    before = check_files(folder).rows["actions"]
    client = "C0000050"
    row = record_action(folder, client_id=client, action="promise_to_pay", on="2024-02-20")
    assert row["client_id"] == client
    assert check_files(folder).rows["actions"] == before + 1
    shared, _ = shared_checks(folder)
    part = client_part(folder, client, shared)
    assert part is not None and "promise_to_pay" in set(part.ledger.actions["action"])
    raw = read_raw_ledger(folder)["actions"]
    assert len(raw) == before + 1  # numbered after every row the log had
    with pytest.raises(InputError, match="not a client"):
        record_action(folder, client_id="C9999999", action="promise_to_pay", on="2024-02-20")
