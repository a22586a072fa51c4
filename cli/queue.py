"""``caselens queue``: work queues built from the trained models (the coding-review queue)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.errors import NotFound
from contract.settings import get_settings
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address

app = typer.Typer(help="Work queues ranked by the trained models.", no_args_is_help=True)
console = Console()
SHOWN_ROWS = 30


@app.command("coding")
def coding(
    period: str = typer.Option(..., "--period", help="discharge period: 2025Q4, 2025-11 or 2025"),
    department: str | None = typer.Option(None, "--department", help="only this department"),
    budget: int | None = typer.Option(None, "--budget", min=1, help="how many cases the team can review"),
    out: Path | None = typer.Option(None, "--out", help="CSV path (default: <data_dir>/reports/...)"),
    compliance_weight: float = typer.Option(
        3.0, "--compliance-weight", min=1.0, help="weight of overpayment (upcoding) money at stake"
    ),
    error_value: float = typer.Option(
        3000.0, "--error-value", min=0.0, help="yuan-equivalent of finding any error, money or not"
    ),
    store: Path | None = typer.Option(None, "--store", help="case store folder (default: configured)"),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help=SCHEDULER_HELP + "; the period's cases are scored there per patient partition, the queue "
        "is ranked here",
    ),
) -> None:
    """The coding-review queue of unaudited cases discharged in PERIOD, by expected value.

    Expected value = Σ over error types of P(type) × |money at stake of its likely correction|, with
    overpayment (upcoding, a compliance risk) weighted by --compliance-weight so it is never buried,
    plus P(error) × --error-value for finding an error at all.
    Uses the `champion` of caselens-coding; writes the whole queue as CSV and shows its top here.

    On a Dask cluster (--scheduler; docs/dask.md) the stays discharged by the period's end are shuffled
    by patient and each partition scores its cases of the period; the coder's and department's error
    history (other patients' audits) comes from audit counts per coder, department and day, added up
    over the store and sent to every worker. Only the period's scored cases come back to be ranked
    here: the same queue as in-process, to the row.
    """
    from models.review_queue import QueuePolicy, coding_queue, queue_period

    settings = get_settings()
    policy = QueuePolicy(compliance_weight, error_value)
    queue_period(period)  # a bad period fails before any work
    address = scheduler_address(scheduler)
    with progress_bar() as bar:
        step = bar.add_task("ranking the coding-review queue", total=3)
        if address is None:
            from pipelines.store import read_cases

            cases = read_cases(store)
            bar.advance(step)
            model = _champion(settings.mlflow_uri)
            bar.advance(step)
            queue = coding_queue(cases, model, period, department, budget, policy)
        else:
            from pipelines.cluster import connect
            from pipelines.cluster_queue import coding_queue_on_cluster

            with connect(address) as client:
                model = _champion(settings.mlflow_uri)
                bar.advance(step, 2)
                queue = coding_queue_on_cluster(
                    client, model, period, department, budget, policy, store_dir=store
                )
        bar.advance(step)
    target = (
        out
        or settings.data_dir
        / "reports"
        / f"coding_queue_{period}{'_' + department if department else ''}.csv"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    queue.assign(reasons=queue["reasons"].str.join("; ")).to_csv(target, index=False, encoding="utf-8-sig")
    _show(queue, period)
    console.print(f"wrote {len(queue):,} cases to {target}")


def _champion(mlflow_uri: str) -> object:
    """The coding champion's Python model; a registry without one is a ``NotFound`` saying what to run."""
    import mlflow

    from models.tracking import CHAMPION

    mlflow.set_tracking_uri(mlflow_uri)
    try:
        return mlflow.pyfunc.load_model(f"models:/caselens-coding@{CHAMPION}").unwrap_python_model()
    except mlflow.exceptions.MlflowException:
        raise NotFound("no champion of caselens-coding: run `caselens train coding` first") from None


def _show(queue, period: str) -> None:
    """The top of the queue: one line per case, its first reason (the CSV holds them all)."""
    table = Table(
        title=f"coding-review queue, {period} (top {min(len(queue), SHOWN_ROWS)} of {len(queue):,})"
    )
    for name in ("#", "case", "department", "likely error", "P", "¥ at stake", "¥ expected", "what-if"):
        table.add_column(
            name, justify="right" if name in ("#", "P", "¥ at stake", "¥ expected") else "left", no_wrap=True
        )
    table.add_column("first reason", overflow="fold")
    for row in queue.head(SHOWN_ROWS).itertuples(index=False):
        table.add_row(
            str(row.rank),
            str(row.case_id),
            str(row.department),
            f"{row.error_type}{' [red]![/red]' if row.compliance_risk else ''}",
            f"{row.error_probability:.2f}",
            f"{row.money_at_stake:,.0f}",
            f"{row.expected_value:,.0f}",
            f"{row.coded_drg}→{row.whatif_drg or '—'}",
            row.reasons[0] if row.reasons else "",
        )
    console.print(table)
    console.print("[red]![/red] compliance risk: the likely correction pays less (upcoding)")
