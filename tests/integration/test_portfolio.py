"""Portfolio batch scoring, the report, monitoring, and the Spark engine (real Spark, local[2])."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditguard.cli import app
from features.partitioned import partition_folder
from features.stream import ledger_parts
from portfolio.batch import load_for_scoring, rejects_table, score_folder, score_local
from portfolio.outputs import InvoiceFigures, RunTables
from portfolio.report import RunResult, build_report, report_clients
from portfolio.run import read_clients
from scoring.receivables import escalation_stage
from scoring.scorer import Scorer
from scoring.stability import population_reference, stability_index
from training.specs import ledger_spec

BEFORE, AFTER = "2024-02-29", "2024-03-31"


@pytest.fixture(scope="module")
def store(champion_store: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's folder, with the session's champions as the MLflow store."""
    home = tmp_path_factory.mktemp("portfolio")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", champion_store)
        mp.chdir(home)
        yield home


@pytest.fixture(scope="module")
def bad_ledger_dir(small_ledger_dir: Path, store: Path) -> Path:
    """The small ledger with a negative amount and an invoice of a client nobody knows."""
    out = store / "bad_ledger"
    shutil.copytree(small_ledger_dir, out)
    inv = pd.read_parquet(out / "invoices.parquet")
    inv.loc[5, "amount"] = -5.0
    orphan = inv.iloc[[0]].assign(invoice_id="I-ORPHAN", client_id="C9999999")
    pd.concat([inv, orphan], ignore_index=True).to_parquet(out / "invoices.parquet", index=False)
    return out


@pytest.fixture(scope="module")
def runs(bad_ledger_dir: Path, store: Path) -> tuple[Path, Path]:
    """Two runs under one runs root; the second continues the first (the default)."""
    root = store / "runs"
    cli = CliRunner()
    for day in (BEFORE, AFTER):
        result = cli.invoke(
            app, ["score", "--ledger", str(bad_ledger_dir), "--as-of", day, "--out", str(root)]
        )
        assert result.exit_code == 0, result.output
    before, after = root / BEFORE, root / AFTER
    assert json.loads((after / "run.json").read_text())["previous"] == str(before.absolute())
    assert (root / "latest").resolve() == after.resolve()
    return before, after


def test_every_client_is_scored_or_rejected_with_a_reason(
    runs: tuple[Path, Path], bad_ledger_dir: Path
) -> None:
    _, after = runs
    clients = pd.read_parquet(after / "clients.parquet")
    rejects = pd.read_parquet(after / "rejects.parquet")
    raw_inv = pd.read_parquet(bad_ledger_dir / "invoices.parquet")
    assert set(rejects["table"]) == {"invoices"}
    assert {raw_inv.loc[5, "invoice_id"], "I-ORPHAN"} <= set(rejects["key"])
    bad = rejects.set_index("key")
    assert "amount" in bad.loc[raw_inv.loc[5, "invoice_id"], "reasons"]
    assert "client_id" in bad.loc["I-ORPHAN", "reasons"]
    onboarded = pd.read_parquet(bad_ledger_dir / "clients.parquet")
    known = onboarded[pd.to_datetime(onboarded["onboarded_on"]) < pd.Timestamp(AFTER)]
    assert set(clients["client_id"]) == set(known["client_id"])  # nothing lost
    assert clients["pd_12m"].between(0, 1).all()
    live = clients["status"] != "in_default"
    assert (
        clients.loc[live, "grade"].between(1, 10).all() and clients.loc[~live, "grade"].isna().all()
    )
    # the model explains a live client (one whose every contribution lowers its risk has only
    # strengths to show)...
    explained = (clients["reason_1"] != "") | (clients["strength_1"] != "")
    assert explained[live].all()
    assert (clients.loc[~live, "status_reason"] != "").all()  # ...its status one in default
    assert (clients.loc[~live, "pd_12m"] == 1).all() and (
        clients.loc[~live, "recommended_limit"] == 0
    ).all()
    # the batch decides on the limit in force: approve, reduce (stepped), hold, refuse, refer
    assert set(clients["limit_decision"]) <= {"approve", "reduce", "hold", "refuse", "refer"}
    assert (clients["limit_decision"] == "refer").mean() <= 0.10
    assert (clients["expected_loss"] >= 0).all()


def test_open_invoices_carry_stage_and_a_collection_rank(runs: tuple[Path, Path]) -> None:
    invoices = pd.read_parquet(runs[1] / "invoices.parquet")
    assert len(invoices) > 0
    assert (
        invoices["escalation_stage"] == escalation_stage(invoices["days_past_due"].to_numpy())
    ).all()
    assert invoices["collection_priority_rank"].tolist() == list(range(1, len(invoices) + 1))
    assert invoices["collection_priority_score"].is_monotonic_decreasing
    # a client's invoices share its stage and queue; a client in default is never dunned
    clients = pd.read_parquet(runs[1] / "clients.parquet").set_index("client_id")
    status = invoices["client_id"].map(clients["status"])
    assert set(invoices.loc[status == "in_default", "collection_queue"]) <= {"claim", "recovery"}
    assert (
        invoices.groupby(["client_id", "collection_queue"])["client_stage"].nunique() == 1
    ).all()
    assert invoices["late_payment_probability"].between(0, 1).all()
    assert (invoices["outstanding"] > 0).all() and (
        pd.to_datetime(invoices["issued_on"]) < AFTER
    ).all()


def test_the_cash_forecast_adds_up_to_the_open_invoices(runs: tuple[Path, Path]) -> None:
    """13 weeks per currency; their expected receipts add up to what the open invoices are
    expected to bring within 13 weeks, never more than is open; the interval holds the
    expectation; the report and clients carry the DSO figures."""
    run = runs[1]
    cash = pd.read_parquet(run / "cash_forecast.parquet")
    invoices = pd.read_parquet(run / "invoices.parquet")
    assert sorted(cash["week"].unique()) == list(range(1, 14))
    assert (pd.to_datetime(cash["week_start"]).min()) == pd.Timestamp(AFTER)
    figures = json.loads((run / "report.json").read_text())
    assert len(set(invoices["currency"])) > 1  # the synthetic ledger's cross-border clients
    total = np.zeros(13)
    for currency, weeks in cash.groupby("currency"):
        assert (weeks["low"] <= weeks["high"]).all()
        assert (weeks["expected"] >= weeks["low"] * 0.5).all()
        if currency == "total":  # every currency, in the reporting currency
            assert set(weeks["unit"]) == {figures["currency"]} == {"EUR"}
            assert weeks["expected"].sum() == pytest.approx(invoices["expected_receipt_13w"].sum())
            assert weeks["expected"].sum() <= invoices["outstanding"].sum()
            continue
        mine = invoices[invoices["currency"] == currency]  # in the currency itself
        assert set(weeks["unit"]) == {currency}
        in_currency = mine["expected_receipt_13w"] / mine["fx_rate"]
        assert weeks["expected"].sum() == pytest.approx(in_currency.sum())
        assert weeks["expected"].sum() <= mine["outstanding_in_currency"].sum()
        total += weeks.sort_values("week")["expected"].to_numpy() * mine["fx_rate"].iloc[0]
    weeks = cash[cash["currency"] == "total"].sort_values("week")
    np.testing.assert_allclose(weeks["expected"].to_numpy(), total, rtol=1e-9)
    # insolvent clients bring nothing within the horizon
    assert (
        invoices.loc[invoices["collection_queue"] == "claim", "expected_receipt_13w"] == 0
    ).all()
    assert set(figures["cash_forecast"]) == set(cash["currency"])
    book = figures["currencies"]
    assert sum(c["outstanding"] for c in book) == pytest.approx(invoices["outstanding"].sum())
    assert {c["currency"] for c in book} == set(invoices["currency"])
    dso = pd.read_parquet(run / "dso.parquet")
    assert set(dso["level"]) == {"portfolio", "industry", "country", "grade"}
    assert len(figures["dso"]["trend"]) == 12 and figures["countries"]
    clients = pd.read_parquet(run / "clients.parquet")
    assert {"dso", "countback_dso", "country_risk", "transfer_risk"} <= set(clients.columns)
    html = (run / "report.html").read_text()
    assert "Cash collection forecast" in html and "DSO and working capital" in html


def test_escalation_stages_follow_days_past_due() -> None:
    dpd = np.array([-5, 0, 1, 30, 31, 60, 61, 90, 91, 400])
    assert escalation_stage(dpd).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_the_report_has_migration_and_early_warnings(runs: tuple[Path, Path]) -> None:
    before, after = runs
    figures = json.loads((after / "report.json").read_text())
    common = set(pd.read_parquet(before / "clients.parquet")["client_id"]) & set(
        pd.read_parquet(after / "clients.parquet")["client_id"]
    )
    matrix = figures["migration_matrix"]
    assert sum(sum(row.values()) for row in matrix.values()) == len(common)
    assert sum(figures["grade_distribution"].values()) == figures["clients"]
    for warning in figures["early_warnings"]:
        assert warning["client_id"] in common and warning["flags"]
    page = (after / "report.html").read_text()
    assert "Grade migration" in page and "data:image/png;base64," in page
    assert "src='http" not in page and 'src="http' not in page  # nothing loaded from outside
    assert "#client/" in page  # clients link to their page in the officer's view
    worklist = pd.read_parquet(after / "collections.parquet")
    assert worklist["priority_rank"].tolist() == list(range(1, len(worklist) + 1))
    assert not worklist.duplicated(["client_id", "queue"]).any()
    assert f"Collections worklist ({len(worklist):,} rows)" in page


def test_the_report_from_its_columns_equals_the_report_from_the_whole_tables(
    runs: tuple[Path, Path],
) -> None:
    """A run's report reads only `REPORT_COLUMNS` of the clients (text as categories), and of
    the previous run; every figure is the one the whole tables give."""
    before, after = runs
    scorer = Scorer.from_registry()
    invoices = InvoiceFigures()
    invoices.add(pd.read_parquet(after / "invoices.parquet"))
    worklist = pd.read_parquet(after / "collections.parquet")
    queues = {
        str(q): {"clients": len(g), "overdue": float(g["overdue_amount"].sum())}
        for q, g in worklist.groupby("queue")
    }

    def report(clients: pd.DataFrame, previous: pd.DataFrame) -> str:
        result = RunResult(
            clients,
            invoices,
            queues,
            pd.read_parquet(after / "rejects.parquet"),
            pd.Timestamp(AFTER),
            dict(scorer.versions),
            insurance=scorer.insurance,
        )
        return json.dumps(build_report(result, previous, scorer.policy), default=str)

    narrow = report(report_clients(after / "clients.parquet"), read_clients(before))
    whole = report(
        pd.read_parquet(after / "clients.parquet"), pd.read_parquet(before / "clients.parquet")
    )
    assert narrow == whole
    assert json.loads(narrow)["early_warnings"]  # the comparison covers the warnings


def test_clients_get_terms_invoices_charges_and_the_right_clients_a_letter(
    runs: tuple[Path, Path], bad_ledger_dir: Path
) -> None:
    """Recommended terms beside the current ones, with the rule; late interest on every overdue
    invoice; one letter per client whose dunning or recovery stage calls for one, in its
    language, linked from the report."""
    after = runs[1]
    clients = pd.read_parquet(after / "clients.parquet")
    assert (clients["recommended_terms"] != "").all() and (clients["terms_rule"] != "").all()
    in_default = clients["status"] == "in_default"
    assert (clients.loc[in_default, "terms_kind"] == "advance_payment").all()
    assert clients["current_terms"].str.startswith(("open account", "none seen")).all()
    invoices = pd.read_parquet(after / "invoices.parquet")
    overdue = invoices["days_past_due"] > 1
    assert (invoices.loc[overdue, "late_interest"] > 0).all()
    assert (invoices.loc[invoices["days_past_due"] == 0, "late_interest"] == 0).all()
    assert (invoices.loc[overdue, "late_charges_rule"] != "").all()
    worklist = pd.read_parquet(after / "collections.parquet")
    called = worklist[
        (worklist["queue"] == "dunning") & (worklist["stage"] >= 1)
        | (worklist["queue"] == "recovery")
    ]
    written = {p.stem for p in (after / "letters").glob("*.html")}
    # ... except those written to in the last 14 days (the action log's letter_sent)
    actions = pd.read_parquet(bad_ledger_dir / "actions.parquet")
    day = pd.Timestamp(AFTER)
    on = pd.to_datetime(actions["on"])
    recent = actions[
        (actions["action"] == "letter_sent") & (on < day) & (on >= day - pd.Timedelta(days=14))
    ]
    due = set(called["client_id"]) - set(recent["client_id"])
    assert written <= due and len(written) >= 0.9 * len(due) and recent["client_id"].nunique()
    assert not written & set(worklist.loc[worklist["queue"] == "claim", "client_id"])
    some = sorted(written)[0]
    letter = (after / "letters" / f"{some}.html").read_text()
    assert "{{" not in letter and some in letter
    figures = json.loads((after / "report.json").read_text())
    assert sum(figures["letters"].values()) == len(written)
    assert f"letters/{some}.html" in (after / "report.html").read_text() or len(written) > 40


def test_the_same_inputs_give_the_same_outputs(
    runs: tuple[Path, Path], bad_ledger_dir: Path, store: Path
) -> None:
    again = store / "again"
    result = CliRunner().invoke(
        app,
        ["score", "--ledger", str(bad_ledger_dir), "--as-of", BEFORE, "--out", str(again)],
    )
    assert result.exit_code == 0, result.output
    for name in ("clients", "invoices", "features", "rejects", "dso", "cash_forecast"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(again / BEFORE / f"{name}.parquet"),
            pd.read_parquet(runs[0] / f"{name}.parquet"),
        )


def test_a_failed_run_leaves_the_previous_one_intact(
    runs: tuple[Path, Path], bad_ledger_dir: Path, store: Path
) -> None:
    root = store / "runs"
    before = (root / AFTER / "clients.parquet").read_bytes()
    result = CliRunner().invoke(
        app,
        ["score", "--ledger", str(bad_ledger_dir), "--as-of", "2031-01-01", "--out", str(root)],
    )
    assert result.exit_code == 2 and "as-of" in result.output
    assert (root / AFTER / "clients.parquet").read_bytes() == before
    assert not [p for p in (root / ".versions").iterdir() if p.name.startswith(".")]


def test_monitoring_two_consecutive_runs(runs: tuple[Path, Path], bad_ledger_dir: Path) -> None:
    _, after = runs
    result = CliRunner().invoke(
        app, ["monitor", "--run", str(after), "--ledger", str(bad_ledger_dir)]
    )
    assert result.exit_code == 0, result.output
    monitoring = json.loads((after / "monitoring.json").read_text())
    stability = monitoring["stability"]
    assert "champion training population" in stability
    assert any(k.startswith("previous run") for k in stability)
    for block in stability.values():
        assert block["score_psi"] >= 0 and block["score_verdict"] in {"stable", "watch", "shifted"}
        assert len(block["csi"]) == len(ledger_spec("default").features)
    backtest = monitoring["backtest"]  # outcomes of March 2024 have matured in this ledger
    assert backtest and sum(r["clients"] for r in backtest) > 0
    assert all(0 <= r["p_value"] <= 1 for r in backtest)
    assert "Monitoring" in (after / "report.html").read_text()
    logged = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.`creditguard.kind` = 'monitoring'"
    )
    assert len(logged) >= 1 and "metrics.score_psi_training" in logged


def test_psi_of_equal_and_shifted_populations() -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=20_000)})
    ref = population_reference(x, ["a"], [], rng.uniform(size=20_000))
    same = population_reference(
        x.sample(frac=1, random_state=1), ["a"], [], rng.uniform(size=20_000)
    )
    assert stability_index(ref["features"]["a"]["shares"], same["features"]["a"]["shares"]) < 1e-9
    from scoring.stability import compare

    shifted = compare(ref, x + 1.0, rng.uniform(size=20_000))
    assert shifted["csi"][0]["csi"] > 0.25 and shifted["csi"][0]["verdict"] == "shifted"
    assert shifted["score_verdict"] == "stable"


@pytest.mark.slow
def test_spark_executors_score_a_partitioned_ledger_as_the_local_engine_does(
    runs: tuple[Path, Path], bad_ledger_dir: Path, store: Path
) -> None:
    """Real Spark (local[2]): every executor reads, validates and scores its own buckets; the
    run tables and the rejects (named by the original files' rows) equal the local engine's on
    the same partitioned ledger, bit for bit, and the whole ledger scored in memory."""
    from portfolio.spark import score_spark

    folder = store / "partitioned"
    partition_folder(bad_ledger_dir, folder, buckets=3)
    scorer = Scorer.from_registry()
    day = pd.Timestamp(AFTER)
    previous = pd.read_parquet(runs[0] / "clients.parquet")  # the decision PD's history
    (store / "local-tables").mkdir()
    (store / "spark-tables").mkdir()
    local = RunTables(store / "local-tables")
    local_rejects = score_folder(folder, scorer, day, local, previous=previous, chunk_clients=60)
    spark = RunTables(store / "spark-tables")
    spark_rejects = rejects_table(
        {
            name: [frame]
            for name, frame in score_spark(
                folder, scorer, day, spark, previous=previous, chunk_clients=60
            ).items()
        }
    )
    for a, b in zip(local.result().frames(), spark.result().frames(), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(local_rejects, spark_rejects)
    ledger, rejects = load_for_scoring(bad_ledger_dir)
    whole = score_local(ledger, scorer, day, previous=previous)
    for a, b in zip(whole.frames(), local.result().frames(), strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(rejects, spark_rejects)
    assert {"invoices"} <= set(spark_rejects["table"])


@pytest.mark.slow
def test_spark_builds_the_feature_table_the_local_engine_builds(
    bad_ledger_dir: Path, small_ledger_dir: Path, store: Path
) -> None:
    """`creditguard features --engine spark` against the local engine on the same partitioned
    ledger (the same file), and a bucket that breaks the contract refused, named, nothing
    written."""
    folder = store / "partitioned-features"
    partition_folder(small_ledger_dir, folder, buckets=3)
    cli = CliRunner()
    args = ["features", "--ledger", str(folder), "--monthly", "2023-06-30", "2024-03-31"]
    for engine in ("local", "spark"):
        out = store / f"features-{engine}.parquet"
        result = cli.invoke(app, [*args, "--out", str(out), "--engine", engine])
        assert result.exit_code == 0, result.output
    a = pd.read_parquet(store / "features-local.parquet")
    b = pd.read_parquet(store / "features-spark.parquet")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    plain = pd.read_parquet(store / "features-local.parquet")
    assert len(plain) > 1000 and plain["client_id"].nunique() > 300
    bad = store / "partitioned-bad"
    partition_folder(bad_ledger_dir, bad, buckets=3)
    out = store / "features-bad.parquet"
    result = cli.invoke(
        app, [*args[:2], str(bad), *args[3:], "--out", str(out), "--engine", "spark"]
    )
    assert result.exit_code == 2
    assert "break the data contract" in result.output and "bucket" in result.output
    assert not out.exists()


def test_scoring_a_folder_part_by_part_equals_scoring_it_whole(
    bad_ledger_dir: Path, store: Path
) -> None:
    """The streaming reader (parts of 40 clients, spilled to disk) against the whole ledger, on a
    ledger whose bad rows cross parts: an invoice id reused by a client in another part, a payment
    of no invoice, a payment of an orphan invoice, a client with a bad country (its rows cascade)."""
    folder = store / "cross_part_ledger"
    shutil.copytree(bad_ledger_dir, folder, dirs_exist_ok=True)
    clients = pd.read_parquet(folder / "clients.parquet")
    inv = pd.read_parquet(folder / "invoices.parquet")
    ids = np.sort(clients["client_id"].to_numpy())
    early, late = ids[3], ids[-3]  # far apart: different parts
    first = inv.index[inv["client_id"] == early][0]
    reuse = inv.index[inv["client_id"] == late][0]
    inv.loc[reuse, "invoice_id"] = inv.loc[first, "invoice_id"]
    inv.to_parquet(folder / "invoices.parquet", index=False)
    clients.loc[clients["client_id"] == ids[50], "country"] = "12"
    clients.to_parquet(folder / "clients.parquet", index=False)
    pay = pd.read_parquet(folder / "payments.parquet")
    extra = pay.iloc[[0, 0]].assign(invoice_id=["I-NOWHERE", "I-ORPHAN"])
    pd.concat([pay, extra], ignore_index=True).to_parquet(folder / "payments.parquet", index=False)

    scorer = Scorer.from_registry()
    day = pd.Timestamp(AFTER)
    ledger, rejects = load_for_scoring(folder)
    whole = (*score_local(ledger, scorer, day).frames(), rejects)
    sizes = [len(p.ledger.clients) for p in ledger_parts(folder, part_clients=40)]
    assert len(sizes) > 3 and max(sizes) == 40 and sizes[-1] == 0  # the last: orphans only
    spill = store / "spill"
    spill.mkdir()
    tables = RunTables(spill)  # chunk results spilled, invoices merged into one ranking
    rejected = score_folder(folder, scorer, day, tables, part_clients=40, chunk_clients=16)
    for a, b in zip(whole, (*tables.result().frames(), rejected), strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert tables.clients.merges and tables.open_invoices.merges  # more runs than FAN_IN
    assert {"invoices", "payments", "clients"} <= set(rejected["table"])
    assert rejected["reasons"].str.contains("duplicates the key").any()
    assert rejected["reasons"].str.contains("refers to no invoice").sum() >= 2


@pytest.mark.slow
def test_both_engines_write_the_same_run_folder(
    runs: tuple[Path, Path], bad_ledger_dir: Path, store: Path
) -> None:
    """`creditguard score --engine spark` (real Spark, local[2]) against the local run of the same
    day: the same files, row for row, and the same report figures (the spilled run tables and the
    in-memory Spark results go through one writer)."""
    before, after = runs
    spark_root = store / "spark"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--ledger",
            str(bad_ledger_dir),
            "--as-of",
            AFTER,
            "--out",
            str(spark_root),
            "--previous",
            str(before),
            "--engine",
            "spark",
        ],
    )
    assert result.exit_code == 0, result.output
    spark = spark_root / AFTER
    for name in ("clients", "invoices", "features", "rejects", "dso", "cash_forecast"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(spark / f"{name}.parquet"), pd.read_parquet(after / f"{name}.parquet")
        )
    figures = json.loads((spark / "report.json").read_text())
    local = json.loads((after / "report.json").read_text())
    local.pop("monitoring", None)  # added to the local run by the monitoring test, if it ran
    letters = sorted(p.name for p in (after / "letters").glob("*.html"))
    assert letters and letters == sorted(p.name for p in (spark / "letters").glob("*.html"))
    for name in letters:
        assert (spark / "letters" / name).read_text() == (after / "letters" / name).read_text()
    assert figures.keys() == local.keys()
    for key in figures:
        # sums (overdue balance, DSO positions, the cash forecast) add chunk by chunk locally and
        # in another order on Spark: equal to ten significant digits
        assert _rounded(figures[key]) == _rounded(local[key]), key


def _rounded(value: object) -> object:
    """Every float in a JSON value to ten significant digits."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
