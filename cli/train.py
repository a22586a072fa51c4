"""``caselens train``: train, evaluate and register the models of one task or of all of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.settings import get_settings
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address

if TYPE_CHECKING:
    from pipelines.training.run import TrainResult

console = Console()


def train(
    task: str | None = typer.Argument(
        None, help="task to train (a module of models/tasks: cost, margin, ...)"
    ),
    all_tasks_: bool = typer.Option(False, "--all", help="train every task on the case store"),
    table: Path | None = typer.Option(None, "--table", help="prepared feature table (.parquet/.csv/.xlsx)"),
    label: str | None = typer.Option(None, "--label", help="the table's label column (with --table)"),
    group: str | None = typer.Option(None, "--group", help="the table's period column the split orders by"),
    entity: str | None = typer.Option(
        None,
        "--entity",
        help="with --table: the column whose earlier rows are each row's history (patient id)",
    ),
    order: str | None = typer.Option(
        None, "--order", help="with --entity: the column that orders an entity's rows (admission date, ...)"
    ),
    label_horizon_days: float | None = typer.Option(
        None,
        "--label-horizon-days",
        help="with a date --order: an earlier row's label is history once this many days have passed",
    ),
    config: Path | None = typer.Option(None, "--config", help="hyperparameters (default: models/train.toml)"),
    tune_seconds: float = typer.Option(0.0, "--tune-seconds", help="Optuna budget per task; 0: no tuning"),
    oracle: Path | None = typer.Option(
        None,
        "--oracle",
        exists=True,
        dir_okay=False,
        help="demo oracle.parquet: truths to evaluate against, never trained on",
    ),
    sample_stays: int | None = typer.Option(
        None,
        "--sample-stays",
        help="train on at most N stays of whole patients drawn at random (seeded; printed): for a store "
        "larger than this process's memory, with or without --scheduler",
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help=SCHEDULER_HELP + "; the LightGBM fits run there (lightgbm.dask), the feature table, "
        "evaluation and registration in this process, so the table must fit here (else --sample-stays)",
    ),
) -> None:
    """Train TASK (or --all) on the case store, or on a prepared --table, and log it to MLflow.

    Cases are split by discharge quarter: the latest is the test set, the one before calibrates and
    tunes. The model is compared with the task's baseline and registered as caselens-TASK; the
    `champion` alias moves only when it beats the current champion on test periods neither model
    trained or was calibrated on (docs/model-selection.md). With --scheduler the LightGBM models are
    trained on the Dask cluster by lightgbm.dask and registered as plain LightGBM models (docs/dask.md).
    """
    from cli.failures import show
    from contract.errors import exit_code
    from models.config import load_config

    names = _task_names(task, all_tasks_, table, label)
    parsed = load_config(config)
    failed = []
    with _lightgbm_on(scheduler_address(scheduler)):
        for name in names:  # with --all, one task's bad data does not stop the others
            if all_tasks_ and _lacks_daily_tables(name):
                console.print(
                    f"{name}: skipped, the store has no daily charges (caselens ingest --kind charges)"
                )
                continue
            try:
                history = (entity, order, label_horizon_days)
                found = _train_one(
                    name, table, label, group, parsed, tune_seconds, oracle, history, sample_stays
                )
                _summary(found)
            except Exception as error:
                if exit_code(error) is None:
                    raise
                show(error, f"{name}: ")
                failed.append(name)
    if failed:
        raise typer.Exit(2)


@contextmanager
def _lightgbm_on(address: str | None) -> Iterator[None]:
    """LightGBM fits on the Dask cluster at ``address`` (plain models come back), or in this process."""
    if address is None:
        yield
        return
    from models.lgbm import on_cluster
    from pipelines.cluster import connect

    with connect(address) as client, on_cluster(client):
        workers = len(client.scheduler_info().get("workers", {}))
        console.print(f"LightGBM fits on the Dask cluster ({workers} workers, lightgbm.dask)")
        yield


def _train_one(
    name: str,
    table: Path | None,
    label: str | None,
    group: str | None,
    config: dict,
    tune_seconds: float,
    oracle: Path | None,
    history: tuple[str | None, str | None, float | None] = (None, None, None),
    sample_stays: int | None = None,
) -> TrainResult:
    from models.tasks import get_task
    from pipelines.training import data, run

    settings = get_settings()
    task = get_task(name)
    if table is not None and task.stage == "in_stay":
        from models.errors import TrainingInputError

        raise TrainingInputError(
            f"{name} trains on the store's daily charges and in-stay records, not --table"
        )
    if table is not None:
        training_data = data.table_data(task, data.read_table(table), label, group, *history)
    elif task.stage == "in_stay":
        from pipelines.instay import instay_data
        from pipelines.store import read_table

        records, charges = read_table("inpatients"), read_table("charges")
        training_data = instay_data(task, _read_cases(), records, charges, settings)
    else:
        truths = pd.read_parquet(oracle) if oracle is not None else None
        training_data = data.case_data(task, _read_cases(sample_stays), settings, oracle=truths)
    with progress_bar() as bar:
        step = bar.add_task(f"training {name}", total=len(run.STEPS))
        return run.train(task, training_data, config, settings, tune_seconds, lambda _: bar.advance(step))


def _task_names(task: str | None, every: bool, table: Path | None, label: str | None) -> list[str]:
    from models.errors import TrainingInputError
    from models.tasks import all_tasks

    if every == (task is not None):
        raise TrainingInputError("give one TASK or --all")
    if every and table is not None:
        raise TrainingInputError("--table trains one TASK, not --all")
    if (table is None) != (label is None):
        raise TrainingInputError("--table and --label go together")
    return sorted(all_tasks()) if every else [task]


def _lacks_daily_tables(name: str) -> bool:
    """An in-stay task on a store of abstracts only (no daily charges ingested)."""
    from models.tasks import get_task
    from pipelines.store import PART_FILE, table_path

    if get_task(name).stage != "in_stay":
        return False
    return not any(table_path("charges", get_settings().store_dir).glob(f"*/{PART_FILE}"))


def _read_cases(sample_stays: int | None = None) -> pd.DataFrame:
    from pipelines.store import read_cases

    if sample_stays is None:
        return read_cases()
    from pipelines.sample import sample_by_patient

    sample = sample_by_patient(sample_stays)
    console.print(f"training on {sample.describe()}")
    return sample.cases


def _summary(result: TrainResult) -> None:
    title = f"caselens-{result.task} v{result.model_version}, test {result.split['test_periods']}"
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    for name in result.comparisons:
        table.add_column(name.replace("_", " "), justify="right")
    for name, value in result.metrics.items():
        base = result.baseline_metrics.get(name)
        others = [result.comparisons[c].get(name) for c in result.comparisons]
        table.add_row(name, f"{value:.4g}", *("" if v is None else f"{v:.4g}" for v in (base, *others)))
    console.print(table)
    colour = "green" if result.promoted else "yellow"
    encoding = result.choices.get("encoding")
    if encoding:
        columns = ", ".join(f"{c} ({v['kind']})" for c, v in encoding["columns"].items()) or "none"
        console.print(f"text columns: {columns}; encoding chosen on validation: {encoding['strategy']}")
    depth = result.choices.get("depth")
    if depth:
        shape = ", ".join(f"{k}={v}" for k, v in depth["chosen"].items())
        console.print(
            f"tree shape chosen on validation within {depth['budget_ms']} ms per explanation: {shape}"
        )
    console.print(f"[{colour}]champion:[/{colour}] {result.reason}")
    console.print(f"run {result.run_id} · rows {result.rows} · seconds {result.seconds}")
