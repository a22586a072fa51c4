"""``caselens demo-data``: write the synthetic demo hospital."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.progress import progress_bar
from contract.settings import get_settings
from pipelines.demo import generate_demo


def demo_data(
    cases: int = typer.Option(60_000, "--cases", min=1, help="number of inpatient stays"),
    years: int = typer.Option(3, "--years", min=1, help="years of discharges"),
    seed: int = typer.Option(42, "--seed", help="random seed; the same seed gives identical files"),
    start: datetime = typer.Option("2023-01-01", "--start", formats=["%Y-%m-%d"], help="first day"),
    dirty: bool = typer.Option(
        False, "--dirty", help="corrupt ~2% of rows to exercise every ingestion check"
    ),
    out: Path | None = typer.Option(None, "--out", help="output folder (default: <data_dir>/demo)"),
    fmt: str = typer.Option("parquet", "--format", help="parquet, csv or zh-csv (Chinese abstract, GB18030)"),
) -> None:
    """Generate a synthetic CHS-DRG hospital: cases, plus oracle.parquet (true probabilities, expected
    cost, true codes) kept apart so models are measured against it, never trained on it."""
    if fmt not in ("parquet", "csv", "zh-csv"):
        raise typer.BadParameter(f"{fmt!r}: use parquet, csv or zh-csv", param_hint="--format")
    target = out or get_settings().data_dir / "demo"
    with progress_bar() as bar:
        task = bar.add_task("generating the demo hospital", total=2)
        hospital = generate_demo(cases, years, seed, dirty=dirty, start=start.date())
        bar.advance(task)
        paths = hospital.write(target, fmt)  # type: ignore[arg-type]
        bar.advance(task)
    c = hospital.cases
    table = Table(title=f"demo hospital, seed {seed}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("cases", f"{len(c):,}")
    table.add_row("patients", f"{c['patient_id'].nunique():,}")
    table.add_row(
        "discharges", f"{c['discharge_date'].min():%Y-%m-%d} to {c['discharge_date'].max():%Y-%m-%d}"
    )
    table.add_row("departments", str(c["department"].nunique()))
    table.add_row("total charges (yuan)", f"{c['total_cost'].astype(float).sum():,.0f}")
    table.add_row("audited", f"{c['audited'].astype('boolean').mean():.1%}")
    if len(hospital.manifest):
        table.add_row("corrupted rows", f"{len(hospital.manifest):,}")
    Console().print(table)
    for path in paths:
        Console().print(f"wrote {path}")
