"""``caselens demo``: the whole job on the embedded defaults, as the commands a user would type.

Each step is the real command (same options, same output), so the demo is also a walk-through:
demo hospital → ingest (abstracts, daily charges, in-stay records) → casemix report and cost drivers →
train every model → coding-review queue → ward watch list → surplus forecast → server.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.rule import Rule

from contract.settings import get_settings, mask_credentials

console = Console()


def demo(
    ctx: typer.Context,
    cases: int = typer.Option(60_000, "--cases", min=1_000, help="stays in the demo hospital"),
    years: int = typer.Option(3, "--years", min=2, help="years of history (the forecast needs two)"),
    seed: int = typer.Option(42, "--seed", help="random seed of the demo hospital"),
    horizon: int = typer.Option(4, "--horizon", min=1, help="quarters to forecast"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="end by starting the server"),
    host: str = typer.Option("127.0.0.1", "--host", help="server address"),
    port: int = typer.Option(8000, "--port", help="server port"),
) -> None:
    """Run everything on a synthetic hospital: data, ingest, casemix, training, queue, forecast, server.

    Files go under the data folder (CASELENS_DATA_DIR, default ./caselens-data); MLflow runs and the
    model registry go to its local SQLite store unless MLFLOW_TRACKING_URI says otherwise.
    """
    settings = get_settings()
    demo_dir = settings.data_dir / "demo"
    for title, args in _steps(cases, years, seed, horizon, demo_dir):
        console.print(Rule(f"[bold]caselens {title}"))
        _run(ctx, args() if callable(args) else args)
    console.print(Rule("[bold]done"))
    console.print(f"data, reports and forecasts: {settings.data_dir.resolve()}")
    console.print(
        f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {mask_credentials(settings.mlflow_uri)}"
    )
    if serve:
        base = f"http://{host}:{port}"
        console.print(
            f"pages: {base}/queue (coding review) · {base}/forecast (surplus forecast) · "
            f"{base}/watch (ward watch list, last day) · {base}/drivers (DRG cost drivers) · "
            f"{base}/cases/<case_id> (a case) · API docs {base}/docs"
        )
        _run(ctx, ["serve", "--host", host, "--port", str(port)])


def _steps(cases: int, years: int, seed: int, horizon: int, demo_dir: Path) -> list[tuple[str, object]]:
    size = ["--cases", str(cases), "--years", str(years), "--seed", str(seed)]
    return [
        ("demo-data", ["demo-data", *size, "--out", str(demo_dir)]),
        ("ingest", ["ingest", str(demo_dir / "cases.parquet")]),
        ("ingest charges", ["ingest", str(demo_dir / "charges.parquet"), "--kind", "charges"]),
        ("ingest inpatients", ["ingest", str(demo_dir / "inpatients.parquet"), "--kind", "inpatients"]),
        ("casemix report", ["casemix", "report", "--by", "department", "--period", "quarter"]),
        ("casemix drivers", ["casemix", "drivers", "--period", "quarter"]),
        ("train --all", ["train", "--all", "--oracle", str(demo_dir / "oracle.parquet")]),
        ("queue coding", lambda: ["queue", "coding", "--period", _latest_quarter(), "--budget", "200"]),
        ("watch", lambda: ["watch", "--as-of", _last_day()]),
        ("forecast surplus", ["forecast", "surplus", "--horizon", str(horizon)]),
    ]


def _last_day() -> str:
    """The demo's last day: the stays still in hospital at its end are the watch list."""
    from pipelines.store import read_cases

    return f"{read_cases(columns=['discharge_date'])['discharge_date'].max():%Y-%m-%d}"


def _latest_quarter() -> str:
    from pipelines.store import read_cases

    last = read_cases(columns=["discharge_date"])["discharge_date"].max()
    return f"{last.year}Q{last.quarter}"


def _run(ctx: typer.Context, args: list[str]) -> None:
    """Run one caselens command in this process, through the root command; stop the demo if it fails."""
    root = ctx.find_root().command
    code = root.main(args=args, prog_name="caselens", standalone_mode=False)
    if code:  # click returns a command's non-zero exit code instead of exiting
        console.print(f"[red]caselens {' '.join(args[:2])} failed; the demo stops here[/red]")
        raise typer.Exit(code)
