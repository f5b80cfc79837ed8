"""A ledger's files checked before a row is trusted (issue 21): every way a file can be broken
is exit 2 with a message naming the file and what is wrong, never a traceback; infinite numbers
and padded ids are contract violations wherever they appear."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditguard.cli import app
from features.contract import split_quarantine
from features.io import LedgerFileError, check_files, inspect_ledger

runner = CliRunner()


@pytest.fixture(scope="module")
def csv_ledger(small_ledger_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small ledger as CSV files, as an ERP export would give it."""
    folder = tmp_path_factory.mktemp("csv_ledger")
    shutil.copy(small_ledger_dir / "manifest.json", folder)
    for path in small_ledger_dir.glob("*.parquet"):
        pd.read_parquet(path).to_csv(folder / f"{path.stem}.csv", index=False)
    return folder


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def _drop_amount(d: Path) -> None:
    rows = _rows(d / "invoices.csv")
    at = rows[0].index("amount")
    _write_rows(d / "invoices.csv", [r[:at] + r[at + 1 :] for r in rows])


def _sed(name: str, line: int, old: str, new: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        lines = (d / name).read_text().splitlines(keepends=True)
        lines[line] = lines[line].replace(old, new, 1)
        (d / name).write_text("".join(lines))

    return edit


def _replace(name: str, content: bytes) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        (d / f"{name.split('.')[0]}.csv").unlink()
        (d / name).write_bytes(content)

    return edit


def _append_latin1(d: Path) -> None:
    with (d / "clients.csv").open("ab") as f:
        f.write(
            "C0999999,Café Müller,DE,Retail,1000,2010-01-01,2020-01-01,,5000\n".encode("latin-1")
        )


def _semicolons(d: Path) -> None:
    (d / "clients.csv").write_text((d / "clients.csv").read_text().replace(",", ";"))


def _header_only(d: Path) -> None:
    (d / "clients.csv").write_text((d / "clients.csv").read_text().splitlines()[0] + "\n")


def _folder_for(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _link(target: str) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        (d / "payments.csv").unlink()
        (d / "payments.csv").symlink_to(target)

    return edit


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # case: (how the copy is broken, the file named, words of the message)
    "missing column": (_drop_amount, "invoices.csv", "required column amount missing"),
    "stray comma in row 1": (
        _sed("clients.csv", 1, ",", ",,"),
        "clients.csv",
        "row 1 has 10 fields",
    ),
    "unbalanced quote": (_sed("clients.csv", 1, ",", ',"'), "clients.csv", "row 1"),
    "ragged row": (_sed("invoices.csv", 50, "\n", ",extra\n"), "invoices.csv", "row 50 has 11"),
    "empty CSV": (lambda d: (d / "payments.csv").write_text(""), "payments.csv", "is empty"),
    "Latin-1 text": (_append_latin1, "clients.csv", "is not UTF-8"),
    "semicolons": (_semicolons, "clients.csv", "';'-separated"),
    "header only": (_header_only, "clients.csv", "no rows"),
    "zero-byte parquet": (_replace("payments.parquet", b""), "payments.parquet", "0 bytes"),
    "not parquet": (_replace("payments.parquet", b"hello, world\n"), "payments.parquet", "Parquet"),
    "garbage manifest": (
        lambda d: (d / "manifest.json").write_text("{garbage"),
        "manifest.json",
        "not valid JSON",
    ),
    "manifest date a number": (
        lambda d: (d / "manifest.json").write_text('{"extracted_on": 20251231}'),
        "manifest.json",
        "extracted_on must be a date",
    ),
    "manifest a list": (
        lambda d: (d / "manifest.json").write_text("[1, 2]"),
        "manifest.json",
        "must be a JSON object",
    ),
    "looping link": (_link("payments.csv"), "payments.csv", "symbolic link that loops"),
    "dangling link": (_link("/nowhere/payments.csv"), "payments.csv", "points to nothing"),
    "a folder": (
        lambda d: _folder_for(d / "payments.csv"),
        "payments.csv",
        "is a folder",
    ),
    "two files for a table": (
        lambda d: pd.read_csv(d / "payments.csv").to_parquet(d / "payments.parquet"),
        "payments.csv",
        "keep one file per table",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_file_is_exit_2_naming_the_file_and_the_problem(
    case: str, csv_ledger: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "ledger"
    shutil.copytree(csv_ledger, broken, symlinks=True)
    edit, name, words = CASES[case]
    edit(broken)
    result = runner.invoke(app, ["validate", str(broken)])
    output = " ".join(result.output.split())
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert f"{broken / name}:" in output and words in output, output
    with pytest.raises(LedgerFileError, match=words.replace("(", r"\(")):
        check_files(broken)


def test_a_truncated_parquet_file_is_named(small_ledger_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "ledger"
    shutil.copytree(small_ledger_dir, broken)
    raw = (broken / "invoices.parquet").read_bytes()
    (broken / "invoices.parquet").write_bytes(raw[: len(raw) // 2])
    result = runner.invoke(app, ["validate", str(broken)])
    assert result.exit_code == 2
    assert "invoices.parquet: is not a readable Parquet file" in " ".join(result.output.split())


def test_the_files_check_counts_every_table_s_rows(
    csv_ledger: Path, small_ledger_dir: Path
) -> None:
    for folder in (csv_ledger, small_ledger_dir):
        files = check_files(folder)
        for name, path in files.paths.items():
            assert files.rows[name] == len(pd.read_parquet(small_ledger_dir / f"{name}.parquet"))
            assert path.parent == folder
        assert files.extracted_on == pd.Timestamp(
            json.loads((folder / "manifest.json").read_text())["extracted_on"]
        )


@pytest.mark.parametrize("value", ["inf", "1e309", "-inf"])
def test_an_infinite_number_breaks_the_contract(
    value: str, csv_ledger: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "ledger"
    shutil.copytree(csv_ledger, broken)
    for name, column in (
        ("clients", "registered_capital"),
        ("invoices", "amount"),
        ("financials", "revenue"),
    ):
        frame = pd.read_csv(broken / f"{name}.csv", dtype=str, keep_default_na=False)
        frame.loc[2, column] = value
        frame.to_csv(broken / f"{name}.csv", index=False)
    _, violations = inspect_ledger(broken)
    finite = violations[violations["rule"] == "must be a finite number"]
    assert set(zip(finite["table"], finite["column"], finite["row"], strict=True)) >= {
        ("clients", "registered_capital", 3),
        ("invoices", "amount", 3),
        ("financials", "revenue", 3),
    }


def test_an_infinite_number_in_parquet_breaks_it_too(
    small_ledger_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "ledger"
    shutil.copytree(small_ledger_dir, broken)
    frame = pd.read_parquet(broken / "financials.parquet")
    frame.loc[4, "equity"] = np.inf  # equity may be negative, never infinite
    frame.to_parquet(broken / "financials.parquet", index=False)
    _, violations = inspect_ledger(broken)
    hit = violations[violations["rule"] == "must be a finite number"]
    assert hit[["table", "column", "row"]].values.tolist() == [["financials", "equity", 5]]


def test_a_padded_id_is_flagged_wherever_it_appears(csv_ledger: Path, tmp_path: Path) -> None:
    """Not only in the first thousand values (a sample decided before): row 3, 1,500 and the last."""
    broken = tmp_path / "ledger"
    shutil.copytree(csv_ledger, broken)
    frame = pd.read_csv(broken / "invoices.csv", dtype=str, keep_default_na=False)
    rows = [2, 1_499, len(frame) - 1]
    for row in rows:
        frame.loc[row, "client_id"] = f" {frame.loc[row, 'client_id']}"
    frame.loc[5, "invoice_id"] = f"{frame.loc[5, 'invoice_id']}\t"
    frame.to_csv(broken / "invoices.csv", index=False)
    ledger, violations = inspect_ledger(broken)
    padded = violations[violations["rule"] == "has spaces before or after it"]
    assert sorted(padded["row"]) == sorted([r + 1 for r in rows] + [6])
    _, rejected = split_quarantine(ledger, violations)
    assert len(rejected["invoices"]) >= 4


def test_train_names_a_missing_or_unreadable_table(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--table", str(tmp_path / "missing.csv"), "--target", "y"]
    )
    assert result.exit_code == 2 and "does not exist" in " ".join(result.output.split())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = runner.invoke(app, ["train", "--table", str(empty), "--target", "y"])
    assert result.exit_code == 2, result.output
    assert f"{empty}: cannot be read as a CSV table" in " ".join(result.output.split())
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["train", "--table", str(table), "--target", "y"])
    assert result.exit_code == 2 and "no column 'y'" in " ".join(result.output.split())


def test_a_wrong_extraction_date_is_named(csv_ledger: Path) -> None:
    result = runner.invoke(app, ["validate", str(csv_ledger), "--extracted-on", "yesterday"])
    assert result.exit_code == 2 and "'yesterday' is not a date" in result.output
