"""The foundation's commands: generate, validate (with quarantine), import-ibm."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from creditguard.cli import app

runner = CliRunner()


def test_validate_passes_on_generated_data(small_ledger_dir: Path) -> None:
    result = runner.invoke(app, ["validate", str(small_ledger_dir)])
    assert result.exit_code == 0, result.output
    assert "no contract violations" in result.output


def test_validate_lists_every_violation_of_a_corrupted_copy(
    small_ledger_dir: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(small_ledger_dir, bad)
    invoices = pd.read_parquet(bad / "invoices.parquet")
    invoices.loc[3, "amount"] = -10.0
    invoices.loc[7, "currency"] = "EURO"
    invoices.loc[11, "client_id"] = "C9999999"
    invoices.to_parquet(bad / "invoices.parquet", index=False)
    clients = pd.read_parquet(bad / "clients.parquet")
    clients.loc[0, "country"] = "Germany"
    clients.to_parquet(bad / "clients.parquet", index=False)

    report = tmp_path / "violations.csv"
    result = runner.invoke(app, ["validate", str(bad), "--report", str(report)])
    assert result.exit_code == 2, result.output
    listed = pd.read_csv(report)
    found = set(zip(listed["table"], listed["row"], listed["column"], strict=True))
    assert {
        ("invoices", 4, "amount"),
        ("invoices", 8, "currency"),
        ("invoices", 12, "client_id"),
        ("clients", 1, "country"),
    } <= found
    assert "must be > 0" in result.output and "ISO 4217" in result.output


def test_quarantine_writes_rejects_and_a_valid_rest(small_ledger_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(small_ledger_dir, bad)
    invoices = pd.read_parquet(bad / "invoices.parquet")
    invoices.loc[5, "due_on"] = invoices.loc[5, "issued_on"] - pd.Timedelta(days=3)
    invoices.to_parquet(bad / "invoices.parquet", index=False)

    q = tmp_path / "q"
    result = runner.invoke(app, ["validate", str(bad), "--quarantine", str(q)])
    assert result.exit_code == 2
    rejects = pd.read_parquet(q / "rejects" / "invoices.parquet")
    assert rejects["invoice_id"].tolist() == [invoices.loc[5, "invoice_id"]]
    assert "due_on is before issued_on" in rejects["reasons"].iloc[0]
    again = runner.invoke(app, ["validate", str(q / "ledger")])
    assert again.exit_code == 0, again.output
    kept = pd.read_parquet(q / "ledger" / "invoices.parquet")
    assert len(kept) + len(rejects) == len(invoices)


def test_the_ibm_adapter_output_validates(ibm_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "ibm"
    assert runner.invoke(app, ["import-ibm", str(ibm_csv), "--out", str(out)]).exit_code == 0
    result = runner.invoke(app, ["validate", str(out)])
    assert result.exit_code == 0, result.output


def test_generate_writes_every_table_of_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = runner.invoke(
        app, ["generate", "--clients", "60", "--months", "6", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "actions.parquet",
        "clients.parquet",
        "financials.parquet",
        "fx_rates.parquet",
        "insolvencies.parquet",
        "instalments.parquet",
        "insurer_limits.parquet",
        "invoices.parquet",
        "payments.parquet",
    ]


def test_validate_names_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())


def test_features_builds_client_snapshots_with_labels(
    small_ledger_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "client.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "--ledger",
            str(small_ledger_dir),
            "--monthly",
            "2024-01-31",
            "2024-03-31",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert sorted(table["as_of"].unique()) == list(
        pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"])
    )
    assert {"default_12m", "censored", "defaulted_before"} <= set(table.columns)


def test_features_builds_invoices_at_issue(small_ledger_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "invoice.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "--ledger",
            str(small_ledger_dir),
            "--unit",
            "invoice",
            "--grace-days",
            "5",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert table["invoice_id"].is_unique and {"late", "censored", "invoice_terms_days"} <= set(
        table.columns
    )


def test_features_lists_the_catalog() -> None:
    result = runner.invoke(app, ["features", "--list"])
    assert result.exit_code == 0
    assert "late30_share_90" in result.output and "paydex_365" in result.output


def test_features_asks_for_dates(small_ledger_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["features", "--ledger", str(small_ledger_dir), "--out", str(tmp_path / "x.parquet")]
    )
    assert result.exit_code == 2
    assert "--as-of" in result.output
