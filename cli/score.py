"""``caselens score TASK``: score every stored case with a registered model (batch scoring)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cli.progress import progress_bar
from contract.errors import NotFound
from contract.settings import get_settings
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address

console = Console()


def score(
    task: str = typer.Argument(..., help="task whose model scores: cost, margin, readmission, coding"),
    output: Path = typer.Option(..., "-o", "--output", help="Parquet file (a folder with --scheduler)"),
    alias: str = typer.Option("champion", "--alias", help="registry alias of caselens-TASK to score with"),
    store: Path | None = typer.Option(None, "--store", help="case store folder (default: configured)"),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
) -> None:
    """Score every stored case with the ALIAS version of caselens-TASK: case_id and its predictions.

    Each case is scored from the fields known at the task's stage, with all stored stays as history, as
    training scored its test cases. On a Dask cluster (--scheduler) the cases are shuffled by patient
    and each partition is scored on its own (same numbers; OUTPUT is a Parquet folder); for the coding
    model the coders' and departments' audits are first counted per day over the whole store and sent
    to every worker, so their error history reads other patients' stays as in-process.
    """
    from pipelines.cluster_score import score_store, score_store_on_cluster

    model = _registered(task, alias)
    address = scheduler_address(scheduler)
    with progress_bar() as bar:
        step = bar.add_task(f"scoring with caselens-{task}@{alias}", total=1)
        if address is None:
            scored = score_store(model, store)
            output.parent.mkdir(parents=True, exist_ok=True)
            scored.to_parquet(output, index=False)
            rows = len(scored)
        else:
            from pipelines.cluster import connect

            with connect(address) as client:
                rows = score_store_on_cluster(client, model, output, store)
        bar.advance(step)
    console.print(f"[green]{rows:,} cases[/green] scored by caselens-{task}@{alias} -> {output}")


def _registered(task: str, alias: str) -> object:
    """The registered model's Python model; a missing version is a NotFound saying what to run."""
    import mlflow

    mlflow.set_tracking_uri(get_settings().mlflow_uri)
    try:
        return mlflow.pyfunc.load_model(f"models:/caselens-{task}@{alias}").unwrap_python_model()
    except mlflow.exceptions.MlflowException:
        raise NotFound(f"no {alias} of caselens-{task}: run `caselens train {task}` first") from None
