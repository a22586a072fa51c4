"""Benchmark: train the case-cost and DRG-margin models on the demo hospital with N cases.

    .venv/bin/python -m experiments.benchmarks.training --cases 1000000

Generates the demo hospital (3 years), trains each task exactly as ``caselens train`` does (time
split by discharge quarter, baseline, MLflow logging and registration, into a throw-away local
tracking store) and reports test metrics beside the baseline and the demo oracle, wall time per task
and peak memory. Target: at most 5 minutes per model at 1,000,000 cases. Results go to
``experiments/results/training.md``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import typer

from experiments.benchmarks.report import peak_memory_mb

RESULTS = Path(__file__).resolve().parents[1] / "results" / "training.md"
TASKS = ("cost", "margin")
LEVEL, BAND = 0.8, 0.05  # the cost interval's nominal coverage and the band each department must hold
ENOUGH_CASES = 250
NOTES = (
    "Reading the figures: every metric is on the test quarter, the latest, which no model saw. The "
    "baseline is the training-period mean of the same department and admission diagnosis category "
    "(cost; department mean as fallback) or of the admission diagnosis category (margin, and the "
    "category's loss share as its P(loss)). `oracle_mae` is the error of the demo generator's own "
    "expected cost against the actual charges: the noise floor no admission-time model can beat; "
    "`mae_vs_oracle` is each forecast's distance from that expected cost. Coverage is the share of "
    "test cases inside the conformalized 80% interval.",
)


def run(
    cases: int, tasks: tuple[str, ...], config: Path | None, on_task: Callable[[dict], None], seed: int = 11
) -> dict:
    """Generate, train each task, ``on_task(figures)`` after each; the tracking store is thrown away."""
    from contract.settings import Settings
    from models.config import load_config
    from models.tasks import get_task
    from pipelines.demo import generate_demo
    from pipelines.training.data import case_data
    from pipelines.training.run import train

    started = time.perf_counter()
    demo = generate_demo(cases, 3, seed)
    figures: dict = {"generate_seconds": time.perf_counter() - started, "tasks": {}}
    parsed = load_config(config)
    with tempfile.TemporaryDirectory(prefix="caselens-bench-") as folder:
        settings = Settings(data_dir=Path(folder))
        for name in tasks:
            task = get_task(name)
            started = time.perf_counter()
            data = case_data(task, demo.cases, settings, oracle=demo.oracle)
            labels_seconds = time.perf_counter() - started
            result = train(task, data, parsed, settings)
            figures["tasks"][name] = {
                "result": result,
                "by_department": _logged_table(result.run_id, "evaluation/by_department.csv"),
                "labels_seconds": labels_seconds,
                "total_seconds": time.perf_counter() - started,
                "peak_mb": peak_memory_mb(),
            }
            on_task(figures)
    return figures


def _logged_table(run_id: str, path: str) -> pd.DataFrame | None:
    """An evaluation table the run logged (None when the task logs no such table)."""
    import mlflow

    try:
        return pd.read_csv(
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path), index_col=0
        )
    except OSError:
        return None


def coverage_table(by_department: pd.DataFrame, level: float = LEVEL) -> list[str]:
    """Markdown rows of interval coverage per department, flagging those outside the target band.

    Only departments with ``ENOUGH_CASES`` test cases are held to the band: below that, sampling noise
    alone (±1.96·√(0.16/n)) is wider than ±5 points.
    """
    low, high = level - BAND, level + BAND
    lines = [
        f"Interval coverage by department (test quarter; target {low:.0%}–{high:.0%} for departments with"
        f" at least {ENOUGH_CASES} test cases):",
        "",
        "| department | cases | coverage | median width | MAE | held to target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for department, row in by_department.iterrows():
        held = row["cases"] >= ENOUGH_CASES
        verdict = ("yes" if low <= row["coverage"] <= high else "**no**") if held else "too few cases"
        lines.append(
            f"| {department} | {row['cases']:,.0f} | {row['coverage']:.1%} | {row['width_median']:,.0f} |"
            f" {row['mae']:,.0f} | {verdict} |"
        )
    return [*lines, ""]


def report(cases: int, figures: dict, command: str) -> str:
    lines = [
        "# Training benchmark: case cost and DRG margin",
        "",
        f"Command: `{command}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · machine: {platform.machine()}, "
        f"`nproc` = {os.cpu_count()} (shared with other engineers' jobs while this ran, so times are "
        "upper bounds) · LightGBM n_jobs from models/train.toml",
        "",
        f"Demo hospital: {cases:,} cases over 3 years, generated in {figures['generate_seconds']:.0f} s.",
        "",
        *NOTES,
        "",
    ]
    for name, found in figures["tasks"].items():
        result = found["result"]
        lines += [
            f"## {name} (caselens-{name} v{result.model_version})",
            "",
            f"Split: train {result.split['train_periods']} ({result.rows['train']:,} cases), validation "
            f"{result.split['validation_periods']} ({result.rows['validation']:,}), test "
            f"{result.split['test_periods']} ({result.rows['test']:,}).",
            "",
            "| test metric | model | baseline |",
            "|---|---:|---:|",
        ]
        for metric, value in result.metrics.items():
            base = result.baseline_metrics.get(metric)
            lines.append(f"| {metric} | {value:,.4g} | {'' if base is None else f'{base:,.4g}'} |")
        table = found.get("by_department")
        if table is not None and "coverage" in table.columns:
            lines += ["", *coverage_table(table)]
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
        lines += [
            "",
            f"Wall time: {found['total_seconds']:.0f} s in all ({found['labels_seconds']:.0f} s for labels, "
            f"then {steps}). Peak memory of the process so far: {found['peak_mb']:,.0f} MB.",
            "",
        ]
    return "\n".join(lines)


def main(
    cases: int = typer.Option(1_000_000, "--cases", help="demo hospital size"),
    out: Path = typer.Option(RESULTS, "--out", help="markdown report to write"),
    tasks: str = typer.Option(",".join(TASKS), "--tasks", help="comma-separated tasks"),
    config: Path | None = typer.Option(None, "--config", help="training config (default train.toml)"),
) -> None:
    """Train the tasks on N demo cases and write the timing and metrics report (after every task)."""
    command = f".venv/bin/python -m experiments.benchmarks.training --cases {cases}"
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(figures: dict) -> None:
        text = report(cases, figures, command)
        out.write_text(text + "\n", encoding="utf-8")
        print(text, flush=True)

    run(cases, tuple(tasks.split(",")), config, write)


if __name__ == "__main__":
    typer.run(main)
