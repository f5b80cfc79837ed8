"""Retraining as one job a scheduler can own: windows from the ledger's extraction date, the
feature tables, every registered model trained and put to its promotion gate, one MLflow parent run
that links them, and an exit code that says whether a person is needed.

The windows (`windows`) follow from the extraction date and the label horizons, so that no row is
censored: client snapshots at month-ends whose 12-month default window has closed by the
extraction; invoices issued in the months before the extraction less the longest usual terms, so
their due dates have passed; for the payment-timing model, invoices due 181 to 545 days before the
extraction, whose 180 days past due have all passed. Each model's own split (out of time, clients
held out: `training.train`) then takes its test window from the latest of its rows.

Re-running on the same ledger (the same data: its files' contents) with the same configuration
reuses the finished parent run and its registry versions: nothing is trained twice.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import mlflow
import pandas as pd
import yaml

from features.errors import InputError
from features.io import check_files, load_ledger, read_manifest
from features.labels import DEFAULT_HORIZON_MONTHS
from features.pipeline import month_ends, write_feature_table
from scoring.store import tracking_uri
from training.config import TrainConfig
from training.registry import PromotionDecision, promote
from training.specs import ledger_spec
from training.timing import log_timing, train_timing
from training.tracking import log_training, use_store
from training.train import check_events, train_model

EXPERIMENT = "creditguard-retrain"
KEY_TAG = "creditguard.retrain_key"
KEPT, NEEDS_PERSON, BAD_INPUT = 0, 3, 2  # exit codes


@dataclass(frozen=True)
class RetrainConfig:
    """What a retraining uses besides the ledger (`--config retrain.yaml`, every key optional)."""

    trials: int = 6  # search budget per model (optuna trials)
    seed: int = 0
    snapshot_months: int = 24  # month-end client snapshots, ending 12 months before extraction
    min_snapshot_months: int = 6  # fewer is refused: the ledger is too short
    history_months: int = 6  # a client snapshot needs this much ledger before it
    invoice_months: int = 6  # invoices for the late model, issued over this many months ...
    invoice_settle_days: int = 90  # ... ending this many days before the extraction
    timing: bool = True  # the payment-timing model, when the ledger allows it
    auc_tolerance: float = 0.005  # the promotion gate: how much worse a challenger may be ...
    ece_tolerance: float = 0.005  # ... on AUC and on calibration (expected calibration error)

    @classmethod
    def load(cls, path: Path | str | None) -> RetrainConfig:
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise InputError(f"--config: {path} does not exist")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"--config: {path} is not valid YAML ({exc})") from None
        if not isinstance(raw, dict):
            raise InputError(f"--config: {path} must be a mapping of options")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InputError(
                f"--config: unknown option(s) {', '.join(unknown)} in {path} "
                f"(known: {', '.join(known)})"
            )
        for name, value in raw.items():
            kind = {"bool": bool, "float": float}.get(str(known[name].type), int)
            ok = isinstance(value, (int, float) if kind is float else kind)
            if not ok or (kind is not bool and isinstance(value, bool)):
                raise InputError(f"--config: {name} must be {kind.__name__}, not {value!r}")
            least = 0 if kind is float or name in ("seed", "invoice_settle_days") else 1
            if kind is not bool and value < least:
                raise InputError(f"--config: {name} must be at least {least}, not {value}")
        return cls(**raw)


@dataclass(frozen=True)
class Windows:
    """The feature tables' windows, from the extraction date."""

    extracted_on: pd.Timestamp
    snapshots: list[pd.Timestamp]
    invoices_from: pd.Timestamp
    invoices_to: pd.Timestamp
    timing_due_from: pd.Timestamp  # exclusive
    timing_due_to: pd.Timestamp

    def describe(self) -> dict[str, str]:
        return {
            "extracted_on": str(self.extracted_on.date()),
            "client_snapshots": f"{self.snapshots[0].date()} to {self.snapshots[-1].date()} "
            f"({len(self.snapshots)} month-ends)",
            "late_invoices_issued": f"{self.invoices_from.date()} to {self.invoices_to.date()}",
            "timing_invoices_due": f"after {self.timing_due_from.date()} to "
            f"{self.timing_due_to.date()}",
        }


def windows(extracted_on: pd.Timestamp, first_record: pd.Timestamp, cfg: RetrainConfig) -> Windows:
    """The windows of a ledger extracted on `extracted_on` whose records start on `first_record`;
    an `InputError` when it is too short for `cfg.min_snapshot_months` uncensored snapshots."""
    last = extracted_on - pd.DateOffset(months=DEFAULT_HORIZON_MONTHS)
    last = last if last.is_month_end else last - pd.offsets.MonthEnd(1)
    earliest = first_record + pd.DateOffset(months=cfg.history_months)
    first = max(earliest, last - pd.DateOffset(months=cfg.snapshot_months - 1))
    snapshots = month_ends(str(first.date()), str(last.date()))
    if len(snapshots) < cfg.min_snapshot_months:
        need = cfg.history_months + DEFAULT_HORIZON_MONTHS + cfg.min_snapshot_months
        raise InputError(
            f"the ledger is extracted on {extracted_on.date()} and starts on "
            f"{first_record.date()}: {len(snapshots)} month-end(s) have a closed "
            f"{DEFAULT_HORIZON_MONTHS}-month default window after {cfg.history_months} months of "
            f"history, fewer than the {cfg.min_snapshot_months} a retraining needs (a ledger of "
            f"at least {need} months)"
        )
    to = extracted_on - pd.Timedelta(days=cfg.invoice_settle_days)
    return Windows(
        extracted_on,
        snapshots,
        to - pd.DateOffset(months=cfg.invoice_months),
        to,
        extracted_on - pd.Timedelta(days=545),
        extracted_on - pd.Timedelta(days=181),
    )


@dataclass
class Verdict:
    """One model's outcome: its new version, the champion before, and the gate's word."""

    model: str
    version: str
    champion_before: str | None
    champion_after: str | None
    promoted: bool
    needs_person: bool
    reason: str
    run_id: str
    measures: str = ""  # the challenger's test figures


@dataclass
class RetrainResult:
    exit_code: int
    verdicts: list[Verdict]
    windows: dict[str, str]
    tables: dict[str, str]  # feature table -> sha256
    parent_run_id: str
    reused: bool = False
    notes: list[str] = field(default_factory=list)


def ledger_hash(folder: Path) -> str:
    """The ledger's identity: every table file's contents and the manifest."""
    files = check_files(folder)
    digest = hashlib.sha256()
    paths = sorted(files.paths.values())
    manifest = folder / "manifest.json"
    for path in [*paths, manifest] if manifest.exists() else paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(file.relative_to(folder).as_posix().encode())
                with file.open("rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _needs_person(decision: PromotionDecision, cfg: TrainConfig) -> bool:
    """Refused with the challenger better on one measure and worse on the other, or refused
    because the gate could not compare them: a person decides. Worse (or no better) on both is
    the gate working as designed."""
    if decision.promoted:
        return False
    if decision.challenger_auc != decision.challenger_auc:  # NaN: not compared
        return "already is the champion" not in decision.reason
    auc_better = decision.challenger_auc > decision.champion_auc
    ece_better = decision.challenger_ece < decision.champion_ece
    auc_worse = decision.challenger_auc < decision.champion_auc - cfg.promotion_auc_tolerance
    ece_worse = decision.challenger_ece > decision.champion_ece + cfg.promotion_ece_tolerance
    return (auc_better and ece_worse) or (ece_better and auc_worse)


def check_inputs(ledger_dir: Path, cfg: RetrainConfig) -> tuple[Windows, str]:
    """Everything checked before any work: the ledger's files and manifest, its extraction date
    against the label horizon; returns the windows and the ledger's hash."""
    files = check_files(ledger_dir)
    if "extracted_on" not in read_manifest(ledger_dir):
        raise InputError(
            f"{ledger_dir}: no manifest.json with extracted_on: a retraining works its windows "
            "out from the extraction date"
        )
    assert files.extracted_on is not None
    first = _first_record(ledger_dir)
    return windows(files.extracted_on, first, cfg), ledger_hash(ledger_dir)


def _first_record(ledger_dir: Path) -> pd.Timestamp:
    """The ledger's first invoice date, read from that column alone."""
    import pyarrow.parquet as pq

    from features.io import find_table, read_layout
    from features.partitioned import earliest

    if read_layout(ledger_dir) is not None:
        first = earliest(ledger_dir, "invoices", "issued_on")
    else:
        path = find_table(ledger_dir, "invoices")
        assert path is not None  # check_files found it
        values = (
            pq.read_table(path, columns=["issued_on"])["issued_on"].to_pandas()
            if path.suffix == ".parquet"
            else pd.read_csv(path, usecols=["issued_on"], dtype=str)["issued_on"]
        )
        first = pd.to_datetime(values, errors="coerce", format="mixed").min()
    if first is None or pd.isna(first):
        raise InputError(f"{ledger_dir}: no dated invoice: nothing to train on")
    return pd.Timestamp(first)


def _existing(key: str) -> mlflow.entities.Run | None:
    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    found = mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
        output_format="list",
        max_results=1,
    )
    return found[0] if found else None


def _summary_of(run: mlflow.entities.Run) -> RetrainResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="retrain.json", dst_path=tmp
        )
        data = json.loads(Path(path).read_text())
    return RetrainResult(
        exit_code=int(data["exit_code"]),
        verdicts=[Verdict(**v) for v in data["verdicts"]],
        windows=data["windows"],
        tables=data["tables"],
        parent_run_id=run.info.run_id,
        reused=True,
        notes=data.get("notes", []),
    )


def retrain(
    ledger_dir: Path,
    cfg: RetrainConfig | None = None,
    *,
    work: Path,
    progress: bool = True,
) -> RetrainResult:
    """Build the feature tables, train every model, run each gate, and link it all in one MLflow
    parent run (`work`: where the feature tables are written, kept for inspection)."""
    cfg = cfg or RetrainConfig()
    spans, data = check_inputs(ledger_dir, cfg)
    try:
        work.mkdir(parents=True, exist_ok=True)
        (work / ".write-check").touch()
        (work / ".write-check").unlink()
    except OSError as exc:
        raise InputError(f"--work: {work} cannot be written ({exc.strerror})") from None
    key = hashlib.sha256(
        json.dumps({"ledger": data, "config": asdict(cfg)}, sort_keys=True).encode()
    ).hexdigest()
    done = _existing(key)
    if done is not None:
        return _summary_of(done)
    train_cfg = replace(
        TrainConfig(),
        n_trials=cfg.trials,
        seed=cfg.seed,
        promotion_auc_tolerance=cfg.auc_tolerance,
        promotion_ece_tolerance=cfg.ece_tolerance,
    )
    ledger = load_ledger(ledger_dir)
    tables = {
        "client": work / "features_client.parquet",
        "invoice": work / "features_invoice.parquet",
        "timing": work / "features_timing.parquet",
    }
    write_feature_table(
        ledger, tables["client"], unit="client", as_of_dates=spans.snapshots, progress=progress
    )
    issued = ledger.invoices["issued_on"]
    recent = ledger.invoices.loc[
        (issued >= spans.invoices_from) & (issued <= spans.invoices_to), "invoice_id"
    ]
    write_feature_table(
        ledger, tables["invoice"], unit="invoice", invoices=recent, progress=progress
    )
    due = ledger.invoices["due_on"]
    settled = ledger.invoices.loc[
        (due > spans.timing_due_from) & (due <= spans.timing_due_to), "invoice_id"
    ]
    notes = []
    if cfg.timing and len(settled):
        write_feature_table(
            ledger, tables["timing"], unit="invoice", invoices=settled, progress=progress
        )
    else:
        tables.pop("timing")
        notes.append("payment-timing model not trained (switched off, or no settled invoices)")
    hashes = {name: _file_hash(path) for name, path in tables.items()}

    # every model's events counted before any is trained: none is registered when one cannot be
    for model, table in (("default", "client"), ("late", "invoice")):
        check_events(
            pd.read_parquet(tables[table]),
            ledger_spec(model),  # type: ignore[arg-type]
        )
    client = use_store()
    verdicts: list[Verdict] = []
    for model, table in (("default", "client"), ("late", "invoice")):
        spec = ledger_spec(model)  # type: ignore[arg-type]
        before = _champion(spec.name)
        result = train_model(pd.read_parquet(tables[table]), spec, train_cfg, progress=progress)
        logged = log_training(result, train_cfg)
        decision = promote(spec.name, cfg=train_cfg)
        after = _champion(spec.name)
        version = str(logged.get("version"))
        verdicts.append(
            Verdict(
                spec.name,
                version,
                before,
                after,
                after == version and before != version,  # the first version: champion at once
                _needs_person(decision, train_cfg),
                decision.reason,
                str(logged.get("run_id", "")),
                f"AUC {result.metrics['auc']:.3f} on new clients "
                f"({result.same_client_metrics.get('auc', float('nan')):.3f} on training "
                f"clients, scorecard {result.scorecard_metrics['auc']:.3f}), ECE "
                f"{result.metrics['ece']:.4f}, {result.bundle.metadata.get('model')}",
            )
        )
    if "timing" in tables:
        timing = train_timing(pd.read_parquet(tables["timing"]), train_cfg)
        before = _champion(timing.spec.name)
        logged = log_timing(timing, train_cfg)
        verdicts.append(
            Verdict(
                timing.spec.name,
                str(logged.get("version")),
                before,
                _champion(timing.spec.name),
                bool(logged.get("champion")),
                False,
                str(logged.get("gate")),
                str(logged.get("run_id", "")),
                f"log loss {timing.metrics['log_loss']:.4f} on new clients (training "
                f"frequencies {timing.metrics['naive_log_loss']:.4f})",
            )
        )
    code = NEEDS_PERSON if any(v.needs_person for v in verdicts) else KEPT
    summary = {
        "exit_code": code,
        "verdicts": [asdict(v) for v in verdicts],
        "windows": spans.describe(),
        "tables": hashes,
        "notes": notes,
    }
    mlflow.set_tracking_uri(tracking_uri())
    experiment = mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(
        experiment_id=experiment.experiment_id,
        run_name=f"retrain {spans.extracted_on.date()}",
    ) as parent:
        mlflow.set_tags(
            {
                KEY_TAG: key,
                "creditguard.kind": "retrain",
                "creditguard.ledger": str(ledger_dir.absolute()),
                "creditguard.ledger_hash": data,
                "creditguard.exit_code": str(code),
            }
            | {
                f"creditguard.verdict.{v.model}": ("promoted" if v.promoted else "kept")
                for v in verdicts
            }
        )
        mlflow.log_params(
            {f"window_{k}": v for k, v in spans.describe().items()}
            | {f"table_{k}_sha256": v for k, v in hashes.items()}
            | {f"cfg_{k}": v for k, v in asdict(cfg).items()}
            | {f"run_{v.model}": v.run_id for v in verdicts}
        )
        mlflow.log_dict(summary, "retrain.json")
        for v in verdicts:  # the training runs show under the parent
            if v.run_id:
                client.set_tag(v.run_id, "mlflow.parentRunId", parent.info.run_id)
                client.set_tag(v.run_id, "creditguard.retrain_run", parent.info.run_id)
    return RetrainResult(code, verdicts, spans.describe(), hashes, parent.info.run_id, False, notes)


def _champion(model: str) -> str | None:
    from mlflow.exceptions import MlflowException

    from scoring.store import CHAMPION

    try:
        return str(use_store().get_model_version_by_alias(model, CHAMPION).version)
    except MlflowException:
        return None
