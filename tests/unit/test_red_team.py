"""Issue 33 replayed: the second red team's probes of the contract, the files a ledger is read
from, the action log, the model bundle, the keys and the letters, each answered by a named
error (exit 2 from the command line) or a bounded, finite result. Each test failed before."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from creditguard.cli import app
from features.actions import record_action
from features.contract import MAX_AMOUNT, LedgerValidationError
from features.errors import InputError
from features.fx import Rates, no_rates
from features.io import inspect_ledger
from features.partitioned import KEEP_COPIES, hold_copy, partition_folder, partitioned_copy
from features.synthetic import GeneratorConfig, generate_ledger
from portfolio.letters import letter_file
from portfolio.run import LedgerRejectedError, check_rejects
from scoring.bundle import BundleFormatError, ModelBundle
from serving.auth import ApiKeys, FailedAuth, KeyConfigError
from tests.ledgers import make_ledger
from training.specs import ledger_spec
from training.train import MIN_EVENTS, InsufficientEventsError, check_events

runner = CliRunner()
# a small cross-border ledger: a quarter of its clients are invoiced in a foreign currency
CROSS = GeneratorConfig(clients=60, months=14, seed=11)


@pytest.fixture(scope="module")
def cross(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cross") / "ledger"
    generate_ledger(CROSS, out, progress=False)
    return out


def _copy(folder: Path, tmp_path: Path, name: str = "ledger") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name))


def _as_csv(folder: Path, tmp_path: Path) -> Path:
    """The ledger as CSV files (what record-action appends to must read back)."""
    out = tmp_path / "csv"
    out.mkdir()
    for path in folder.glob("*.parquet"):
        pd.read_parquet(path).to_csv(out / f"{path.stem}.csv", index=False)
    shutil.copy(folder / "manifest.json", out / "manifest.json")
    return out


def _foreign_client(folder: Path) -> str:
    invoices = pd.read_parquet(folder / "invoices.parquet")
    return str(invoices.loc[invoices["currency"] != "EUR", "client_id"].iloc[0])


def _one_client(**client: object) -> dict[str, object]:
    return {"client_id": "C1", **client}


def _violations(**kw: object) -> pd.DataFrame:
    with pytest.raises(LedgerValidationError) as caught:
        make_ledger(**kw)  # type: ignore[arg-type]
    return caught.value.violations


INVOICE = {
    "invoice_id": "I1",
    "client_id": "C1",
    "issued_on": "2025-01-01",
    "due_on": "2025-01-31",
    "amount": 100.0,
}


# --------------------------------------------------------------------------------------------
# High: an id never becomes a path


@pytest.mark.parametrize("bad", ["../../x", "/tmp/abs", "GROUP/C0000029", "a\\b", "..", "C\n1"])
def test_an_id_with_a_path_separator_or_control_character_is_refused(bad: str) -> None:
    found = _violations(clients=[{"client_id": bad}], invoices=[{**INVOICE, "client_id": bad}])
    mine = found[(found["table"] == "clients") & (found["column"] == "client_id")]
    assert len(mine) == 1 and "path separator" in mine["rule"].iloc[0]


def test_an_id_longer_than_100_characters_is_refused() -> None:
    long = "C" * 101
    found = _violations(clients=[{"client_id": long}], invoices=[{**INVOICE, "client_id": long}])
    assert "is longer than 100 characters" in set(found["rule"])


@pytest.mark.parametrize(
    "client_id", ["C0000001", "../../x", "/etc/passwd", "GROUP/C1", ".", "é" * 100, "a b"]
)
def test_a_letter_is_named_by_a_safe_encoding_of_its_client(client_id: str) -> None:
    name = letter_file(client_id)
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert name.endswith(".html") and len(name) <= 130
    assert letter_file(client_id + "x") != name  # distinct ids, distinct files


def test_ordinary_ids_keep_their_letter_name() -> None:
    assert letter_file("C0000042") == "C0000042.html"


# --------------------------------------------------------------------------------------------
# High: an action for a client invoiced in a foreign currency


def test_rates_of_a_ledger_without_rates_answer_nan_not_an_index_error() -> None:
    rates = no_rates("EUR")
    codes = rates.codes(pd.Series(["USD", "EUR"]))
    assert np.isnan(rates.at(codes, 20_000.0)[0]) and rates.at(codes, 20_000.0)[1] == 1.0
    empty = Rates.of(pd.DataFrame({"date": [], "currency": [], "rate": []}), "EUR")
    assert np.isnan(empty.on(pd.Series(["CNY"]), pd.Timestamp("2024-01-01"))[0])


def test_an_action_on_a_foreign_currency_client_is_recorded(cross: Path, tmp_path: Path) -> None:
    folder = _copy(cross, tmp_path)
    client = _foreign_client(folder)
    result = runner.invoke(
        app,
        [
            *("record-action", "--ledger", str(folder), "--client", client),
            *("--action", "call", "--on", "2024-01-15"),
        ],
    )
    assert result.exit_code == 0, result.output
    parted = tmp_path / "parted"
    partition_folder(cross, parted, buckets=3)
    row = record_action(parted, client_id=client, action="call", on="2024-01-15")
    assert row["client_id"] == client and not row["replayed"]


def test_a_replayed_action_is_recorded_once(cross: Path, tmp_path: Path) -> None:
    folder = _copy(cross, tmp_path)
    client = _foreign_client(folder)
    before = len(pd.read_parquet(folder / "actions.parquet"))
    answers = [
        record_action(folder, client_id=client, action="promise_to_pay", on="2024-01-15", amount=5)
        for _ in range(3)
    ]
    assert [a["replayed"] for a in answers] == [False, True, True]
    assert len(pd.read_parquet(folder / "actions.parquet")) == before + 1
    other = record_action(folder, client_id=client, action="promise_to_pay", on="2024-01-15")
    assert not other["replayed"]  # another amount: another action


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("note", "two\nlines", "control character"),
        ("note", "x" * 100_000, "longer than 2,000"),
        ("on", "0001-01-01", "before 1900-01-01"),
        ("amount", 1e308, r"at most 1e\+15"),
    ],
)
def test_an_action_the_contract_would_not_read_back_is_refused(
    cross: Path, tmp_path: Path, field: str, value: object, words: str
) -> None:
    folder = _as_csv(cross, tmp_path)
    client = _foreign_client(cross)
    given: dict[str, object] = {"on": "2024-01-15", field: value}
    with pytest.raises(LedgerValidationError, match=words):
        record_action(folder, client_id=client, action="call", **given)  # type: ignore[arg-type]
    record_action(folder, client_id=client, action="call", on="2024-01-15", note="one line")
    assert runner.invoke(app, ["validate", str(folder)]).exit_code == 0


# --------------------------------------------------------------------------------------------
# Medium: numbers bounded, every sum finite


def test_amounts_and_rates_beyond_money_are_refused() -> None:
    found = _violations(
        clients=[_one_client()],
        invoices=[{**INVOICE, "amount": 1e308}, {**INVOICE, "invoice_id": "I2", "amount": 2e15}],
        insurer_limits=[
            {"client_id": "C1", "limit": 1e300, "currency": "EUR", "decided_on": "2024-01-01"}
            | {"status": "granted"}
        ],
    )
    huge = found[found["rule"].str.startswith("must be at most")]
    assert set(zip(huge["table"], huge["row"], strict=True)) == {
        ("invoices", 1),
        ("invoices", 2),
        ("insurer_limits", 1),
    }
    rates = _violations(
        clients=[_one_client()],
        invoices=[{**INVOICE, "currency": "USD"}],
        fx_rates=[
            {"date": "2024-12-01", "currency": "USD", "rate": 1e300},
            {"date": "2024-12-02", "currency": "USD", "rate": 1e-300},
            {"date": "2024-12-03", "currency": "USD", "rate": 0.9},
        ],
        reporting_currency="EUR",
    )
    assert {"must be at most 1e+09 in size", "must be at least 1e-09"} <= set(rates["rule"])


def test_the_largest_amount_allowed_keeps_every_sum_finite() -> None:
    ledger = make_ledger(
        clients=[_one_client()],
        invoices=[{**INVOICE, "invoice_id": f"I{i}", "amount": MAX_AMOUNT} for i in range(3)],
    )
    assert np.isfinite(ledger.invoices["amount"].sum() * 1e9)


def test_an_old_trading_house_may_be_founded_before_1900() -> None:
    make_ledger(clients=[_one_client(founded_on="1748-01-01")], invoices=[INVOICE])


def test_an_insurer_limit_in_a_currency_without_rates_is_refused() -> None:
    found = _violations(
        clients=[_one_client()],
        invoices=[INVOICE],
        insurer_limits=[
            {"client_id": "C1", "limit": 5000, "currency": "USD", "decided_on": "2024-06-01"}
            | {"status": "granted"}
        ],
        reporting_currency="EUR",
    )
    assert list(found["rule"]) == ["has no rate to the reporting currency on or before decided_on"]


# --------------------------------------------------------------------------------------------
# Medium: named errors, exit 2, never a traceback


def _manifest(folder: Path, text: str) -> None:
    (folder / "manifest.json").write_text(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"extracted_on": "2024-12-31xyz"}', "must be a date as text"),
        ('{"extracted_on": "9999-12-31"}', "is outside 1900-01-01 to 2199-12-31"),
        ('{"extracted_on": "2024-12-31", "reporting_currency": ["EUR"]}', "ISO 4217"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
)
def test_a_broken_manifest_is_named(cross: Path, tmp_path: Path, text: str, words: str) -> None:
    folder = _copy(cross, tmp_path)
    _manifest(folder, text)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output


def test_an_unbalanced_quote_at_the_start_of_a_row_names_the_row(
    cross: Path, tmp_path: Path
) -> None:
    folder = _as_csv(cross, tmp_path)
    lines = (folder / "invoices.csv").read_text().splitlines()
    lines[5] = '"' + lines[5]
    (folder / "invoices.csv").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and "row 5: a quote opens a value" in result.output


def test_user_text_that_looks_like_markup_is_printed_as_it_is(cross: Path, tmp_path: Path) -> None:
    folder = _copy(cross, tmp_path)
    clients = pd.read_parquet(folder / "clients.parquet")
    clients.loc[0, "country"] = "[/x]"
    clients.to_parquet(folder / "clients.parquet")
    result = runner.invoke(app, ["validate", str(folder), "--limit", "5"])
    assert result.exit_code == 2 and "[/x]" in result.output, result.output
    broken = runner.invoke(app, ["validate", str(tmp_path / "[/y]")])
    assert broken.exit_code == 2 and "[/y]" in broken.output


def test_a_bucket_file_with_another_column_type_is_named(cross: Path, tmp_path: Path) -> None:
    folder = tmp_path / "parted"
    partition_folder(cross, folder, buckets=3)
    path = folder / "invoices" / "bucket=1" / "part-0.parquet"
    table = pq.read_table(path)
    at = table.schema.get_field_index("amount")
    pq.write_table(table.set_column(at, "amount", pc.cast(table["amount"], pa.string())), path)
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2 and "column amount is string here" in result.output


def test_an_undeclared_bucket_folder_is_named_not_dropped(cross: Path, tmp_path: Path) -> None:
    folder = tmp_path / "parted"
    partition_folder(cross, folder, buckets=3)
    shutil.copytree(folder / "invoices" / "bucket=1", folder / "invoices" / "bucket=9")
    for command in (["validate", str(folder)], ["profile", str(folder)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "bucket=9" in result.output, result.output


def test_validate_sees_a_client_split_across_buckets(cross: Path, tmp_path: Path) -> None:
    folder = tmp_path / "parted"
    partition_folder(cross, folder, buckets=3)
    first = folder / "invoices" / "bucket=0" / "part-0.parquet"
    second = folder / "invoices" / "bucket=1" / "part-0.parquet"
    a, b = pq.read_table(first), pq.read_table(second)
    moved = pc.equal(a["client_id"], a["client_id"][0])
    pq.write_table(a.filter(pc.invert(moved)), first)
    pq.write_table(pa.concat_tables([b, a.filter(moved).cast(b.schema)]), second)
    _, violations = inspect_ledger(folder)
    split = violations[violations["rule"].str.contains("split across buckets")]
    assert len(split) == int(pc.sum(moved).as_py()) and set(split["table"]) == {"invoices"}
    assert runner.invoke(app, ["validate", str(folder)]).exit_code == 2


def test_the_rejected_rows_summary_groups_a_rule_whatever_its_values(tmp_path: Path) -> None:
    reasons = [
        f"currency has no rate to the reporting currency on or before issued_on (USD on "
        f"2024-01-{d:02d} (reporting in EUR))"
        for d in range(1, 21)
    ]
    rejects = pd.DataFrame({"table": "invoices", "reasons": reasons})
    with pytest.raises(LedgerRejectedError) as caught:
        check_rejects(rejects, {"invoices": 40}, 0.05, tmp_path)
    message = str(caught.value)
    assert message.count("has no rate") == 1 and "(20 rows)" in message


# --------------------------------------------------------------------------------------------
# Medium: a model bundle that is not what was saved


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import lightgbm as lgb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] + rng.normal(size=300) > 0).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4}, lgb.Dataset(x, y), 5
    )
    from scoring.bundle import MasterScale
    from scoring.calibration import PlattCalibrator

    bundle = ModelBundle(
        name="creditguard-default",
        target="default_12m",
        model_string=booster.model_to_string(),
        features=["a", "b", "c"],
        categories={},
        calibrator=PlattCalibrator(1.0, 0.0),
        master_scale=MasterScale.load(),
    )
    return bundle.save(tmp_path_factory.mktemp("bundle"))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda d: (d / "bundle.json").write_text("{not json"), "cannot be read"),
        (
            lambda d: (d / "bundle.json").write_text(
                (d / "bundle.json").read_text().replace('"platt"', '"magic"')
            ),
            "unknown calibration method 'magic'",
        ),
        (
            lambda d: (d / "bundle.json").write_text(
                json.dumps(
                    {
                        k: v
                        for k, v in json.loads((d / "bundle.json").read_text()).items()
                        if k != "features"
                    }
                )
            ),
            "field 'features' missing",
        ),
        (
            lambda d: (d / "model.txt").write_text((d / "model.txt").read_text()[:200]),
            "SHA-256 differs",
        ),
    ],
)
def test_a_damaged_bundle_is_refused_by_name(
    bundle_dir: Path, tmp_path: Path, damage: object, words: str
) -> None:
    folder = _copy(bundle_dir, tmp_path, "bundle")
    damage(folder)  # type: ignore[operator]
    with pytest.raises(BundleFormatError, match=words):
        ModelBundle.load(folder)


def test_a_malformed_model_text_without_a_digest_is_read_in_a_child(
    bundle_dir: Path, tmp_path: Path
) -> None:
    folder = _copy(bundle_dir, tmp_path, "bundle")
    spec = json.loads((folder / "bundle.json").read_text())
    spec.pop("model_sha256")  # a bundle saved before the digest
    (folder / "bundle.json").write_text(json.dumps(spec))
    text = (folder / "model.txt").read_text()
    (folder / "model.txt").write_text(text.replace("num_leaves=", "num_leaves=-7", 1))
    with pytest.raises(BundleFormatError, match="not a LightGBM model LightGBM can read"):
        ModelBundle.load(folder)


# --------------------------------------------------------------------------------------------
# Medium: keys never printed, failures counted per source


def test_a_key_line_without_a_role_is_never_echoed() -> None:
    secret = "s3cret-key-without-any-role-0001"
    for entry in (secret, f"bosss:{secret}", f"officer:{secret}:not-a-date-{secret}"):
        with pytest.raises(KeyConfigError) as caught:
            ApiKeys.parse([("keys.txt line 3", entry)])
        assert secret not in str(caught.value) and "line 3" in str(caught.value)


def test_a_success_between_failures_does_not_reset_the_backoff() -> None:
    failures = FailedAuth(free=5, window=60, base=0.1, cap=2.0)
    waits = [failures.penalty("10.0.0.1", now=float(i)) for i in range(5)]
    assert waits == [0.0] * 5
    # a valid key from the same address now (the guard no longer forgets it), then a wrong one
    assert failures.penalty("10.0.0.1", now=6.0) == pytest.approx(0.1)
    assert failures.penalty("10.0.0.2", now=6.0) == 0.0  # another source has its own count
    assert failures.penalty("10.0.0.1", now=100.0) == 0.0  # the window has passed


# --------------------------------------------------------------------------------------------
# Medium: a retraining on a ledger too short for its label


def test_a_single_class_table_is_refused_before_training() -> None:
    spec = ledger_spec("default")
    table = pd.DataFrame(
        {
            "client_id": [f"C{i}" for i in range(200)],
            "as_of": pd.Timestamp("2024-01-31"),
            "default_12m": 0.0,
            **{f: 1.0 for f in spec.features},
        }
    )
    with pytest.raises(InsufficientEventsError, match=f"at least {MIN_EVENTS} of each"):
        check_events(table, spec)
    assert issubclass(InsufficientEventsError, InputError)


# --------------------------------------------------------------------------------------------
# Medium: the service's cache keeps two copies of a ledger, not one per recorded action


def test_a_changed_ledger_leaves_at_most_two_copies_in_the_cache(
    cross: Path, tmp_path: Path
) -> None:
    folder = _copy(cross, tmp_path)
    cache = tmp_path / "cache"
    client = _foreign_client(folder)
    copies = []
    for day in ("2024-01-10", "2024-01-11", "2024-01-12", "2024-01-13"):
        copies.append(partitioned_copy(folder, cache, bucket_clients=20))
        record_action(folder, client_id=client, action="call", on=day)
    assert len(set(copies)) == 4
    assert len(list(cache.glob("ledger-*"))) == KEEP_COPIES
    assert copies[-1].exists() and copies[-2].exists()


def test_a_copy_a_reader_still_holds_is_never_removed(cross: Path, tmp_path: Path) -> None:
    """A worker that has not yet followed a reload still reads its copy: pruning skips it."""
    folder = _copy(cross, tmp_path)
    cache = tmp_path / "cache"
    client = _foreign_client(folder)
    first = partitioned_copy(folder, cache, bucket_clients=20)
    held = hold_copy(first)
    try:
        for day in ("2024-01-10", "2024-01-11", "2024-01-12"):
            record_action(folder, client_id=client, action="call", on=day)
            partitioned_copy(folder, cache, bucket_clients=20)
        assert first.exists() and (first / "clients").is_dir()
    finally:
        assert held is not None
        held.close()
    record_action(folder, client_id=client, action="call", on="2024-01-13")
    partitioned_copy(folder, cache, bucket_clients=20)
    assert not first.exists() and len(list(cache.glob("ledger-*"))) == KEEP_COPIES
