"""``caselens ingest FILE``: validate a hospital export and write its good rows to the case store."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.settings import get_settings
from pipelines.ingest import STEPS, IngestResult, ingest_file
from pipelines.mapping import presets
from pipelines.scheduler import SCHEDULER_HELP, scheduler_address
from pipelines.validate import Rules

console = Console()


def ingest(
    file: Path = typer.Argument(
        ...,
        help="CSV (UTF-8 or GB18030), Excel .xlsx or Parquet export: one row per stay (--kind cases), "
        "per stay and day (charges) or per stay and day its coding changed (inpatients).",
    ),
    kind: str = typer.Option(
        "cases",
        "--kind",
        "-k",
        help="What FILE holds: cases (discharge abstracts), charges (daily charges feed, 费用明细) or "
        "inpatients (in-stay records: admission, working diagnoses, procedures so far).",
    ),
    mapping: str = typer.Option(
        "canonical",
        "--mapping",
        "-m",
        help=f"Column mapping: a preset ({', '.join(presets())}) or your own TOML file.",
    ),
    store: Path | None = typer.Option(None, help="Case store folder [default: settings.store_dir]."),
    reports: Path | None = typer.Option(
        None,
        help="Folder for rejects.csv, rejected_rows.csv, warnings.csv [default: <data_dir>/ingest/<run>].",
    ),
    cost_tolerance_yuan: float = typer.Option(
        1.0, help="Charge groups may miss total_cost by this many yuan..."
    ),
    cost_tolerance_share: float = typer.Option(
        0.005, help="...or by this share of total_cost, whichever is larger."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help=SCHEDULER_HELP + "; the store's years are written in parallel there, FILE is read and "
        "validated in this process",
    ),
) -> None:
    """Validate FILE, write accepted rows to the store (same key = update) and report the rest.

    Rows that fail a check go to rejects.csv (one line per problem: row, case id, field, value, reason)
    and rejected_rows.csv (the rows as read); unknown diagnosis/procedure codes are warnings and keep
    their row. Exit code 2 when the file or mapping cannot be used at all. With --scheduler the
    store's year partitions are rewritten in parallel on the Dask cluster (docs/dask.md).
    """
    rules = Rules(
        cost_tolerance_yuan=cost_tolerance_yuan,
        cost_tolerance_share=cost_tolerance_share,
        code_tables=get_settings().casemix_tables,
    )
    address = scheduler_address(scheduler)
    with ExitStack() as stack:
        if address is not None:
            from pipelines.cluster import connect

            client = stack.enter_context(connect(address))
        else:
            client = None
        bar = stack.enter_context(progress_bar())
        task = bar.add_task(f"ingest {file.name}", total=len(STEPS))
        result = ingest_file(
            file,
            mapping,
            store_dir=store,
            reports_dir=reports,
            rules=rules,
            on_step=lambda _: bar.advance(task),
            kind=kind,
            client=client,
        )
    _summary(result)


def _summary(result: IngestResult) -> None:
    counts = Table(title="Ingest", show_header=False)
    counts.add_column(justify="left")
    counts.add_column(justify="right")
    for label, value in (
        ("rows read", result.rows_read),
        ("accepted", result.accepted),
        ("rejected", result.rejected),
        ("warnings", result.warnings),
        ("new cases", result.new),
        ("updated cases", result.updated),
        ("cases in store", result.store_rows),
    ):
        counts.add_row(label, f"{value:,}")
    console.print(counts)
    if len(result.by_reason):
        reasons = Table(title="Problems by reason")
        for column in ("severity", "field", "reason", "rows"):
            reasons.add_column(column, justify="right" if column == "rows" else "left")
        for row in result.by_reason.itertuples(index=False):
            style = "red" if row.severity == "error" else "yellow"
            reasons.add_row(f"[{style}]{row.severity}[/]", row.field, row.reason, f"{row.rows:,}")
        console.print(reasons)
    console.print(f"reports: {result.reports_dir}", highlight=False)
