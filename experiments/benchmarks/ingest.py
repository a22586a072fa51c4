"""Benchmark: ingest N cases (read, map, validate, reports, store) from a canonical CSV and from Parquet.

    .venv/bin/python -m experiments.benchmarks.ingest --cases 1000000

The cases are demo-hospital stays (``pipelines.demo.generate_demo``, at most 20,000) resampled with new
case ids up to N, with 1% of rows made invalid and 1% given an unknown code so the reject and warning
paths do real work. Each format is ingested twice into a fresh store: the first run writes, the second is
the idempotent re-ingest (every case an update). Peak memory is the process's resident set sampled
during each run. Results go to ``experiments/results/ingest.md``.
"""

from __future__ import annotations

import os
import platform
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import typer

from experiments.benchmarks.report import load_average
from pipelines.demo import generate_demo
from pipelines.ingest import STEPS, ingest_file
from pipelines.store import read_cases

RESULTS = Path(__file__).resolve().parents[1] / "results" / "ingest.md"
BASE_CASES = 20_000


def benchmark_cases(n_cases: int, seed: int = 0) -> pd.DataFrame:
    """``n_cases`` canonical cases: demo stays resampled with fresh ids, 1% invalid, 1% unknown codes."""
    base = generate_demo(min(n_cases, BASE_CASES), years=3, seed=seed).cases.drop(columns="los_days")
    rng = np.random.default_rng(seed)
    cases = base.iloc[rng.integers(0, len(base), n_cases)].reset_index(drop=True)
    cases["case_id"] = [f"B{i:09d}" for i in range(n_cases)]
    invalid = rng.random(n_cases) < 0.01
    cases.loc[invalid, "total_cost"] = -1.0
    unknown = rng.random(n_cases) < 0.01
    cases.loc[unknown, "principal_diagnosis"] = "X99.999"
    return cases


class PeakMemory:
    """Highest resident set size of this process while the block runs, sampled every 50 ms."""

    def __enter__(self) -> PeakMemory:
        self._process, self._stop = psutil.Process(), threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def timed_ingest(path: Path, store: Path, reports: Path) -> dict[str, object]:
    """One ingest with per-step seconds, counts and peak memory."""
    marks: list[float] = []
    with PeakMemory() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        result = ingest_file(
            path, store_dir=store, reports_dir=reports, on_step=lambda _: marks.append(time.perf_counter())
        )
    edges = [start, *marks]
    steps = {name: round(edges[i + 1] - edges[i], 2) for i, name in enumerate(STEPS)}
    return {
        "seconds": round(marks[-1] - start, 2),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "steps": steps,
        "peak_mb": memory.peak / 2**20,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "warnings": result.warnings,
        "new": result.new,
        "updated": result.updated,
        "store_rows": result.store_rows,
    }


def run(n_cases: int, work: Path, results: Path = RESULTS) -> str:
    """Run the benchmark in ``work`` and write the markdown report to ``results``; returns the report."""
    load_before = load_average()
    cases = benchmark_cases(n_cases)
    inputs = {"csv": work / "cases.csv", "parquet": work / "cases.parquet"}
    cases.to_csv(inputs["csv"], index=False, date_format="%Y-%m-%d")
    cases.to_parquet(inputs["parquet"], index=False)
    del cases
    rows = []
    for fmt, path in inputs.items():
        store = work / f"store-{fmt}"
        for attempt in ("first", "re-ingest"):
            figures = timed_ingest(path, store, work / f"reports-{fmt}-{attempt}")
            rows.append({"input": fmt, "run": attempt, "MB": round(path.stat().st_size / 2**20), **figures})
        with PeakMemory() as memory:
            start = time.perf_counter()
            stored = read_cases(store)
            read_seconds = time.perf_counter() - start
        rows[-1]["read_cases_s"] = round(read_seconds, 2)
        rows[-1]["read_cases_peak_mb"] = memory.peak / 2**20
        assert len(stored) == rows[-1]["store_rows"]
    report = _markdown(n_cases, rows, (load_before, load_average()))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(report, encoding="utf-8")
    return report


def _markdown(n_cases: int, rows: list[dict[str, object]], load: tuple[float, float]) -> str:
    lines = [
        "# Ingest benchmark",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.ingest --cases {n_cases}`  ",
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        f"nproc = {os.cpu_count()}, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, shared with other "
        f"engineers' jobs while it ran: 1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} "
        "at the end (wall times are upper bounds).",
        "",
        f"{n_cases:,} cases (demo stays resampled, 1% invalid, 1% unknown principal diagnosis). Target: "
        "1,000,000 cases in ≤ 60 s.",
        "",
        "| input | run | MB | total s | CPU s | "
        + " | ".join(f"{s} s" for s in STEPS)
        + " | peak RSS MB | accepted | rejected | warnings | new | updated |",
        "|---|---|---|---|---|" + "---|" * len(STEPS) + "---|---|---|---|---|---|",
    ]
    for r in rows:
        steps = " | ".join(str(r["steps"][s]) for s in STEPS)
        lines.append(
            f"| {r['input']} | {r['run']} | {r['MB']} | **{r['seconds']}** | {r['cpu_seconds']} | {steps} "
            f"| {r['peak_mb']:,.0f} | {r['accepted']:,} | {r['rejected']:,} | {r['warnings']:,} "
            f"| {r['new']:,} | {r['updated']:,} |"
        )
    lines.append("")
    for r in rows:
        if "read_cases_s" in r:
            lines.append(
                f"- `read_cases()` of the {r['input']} store ({r['store_rows']:,} rows): "
                f"{r['read_cases_s']} s, peak RSS {r['read_cases_peak_mb']:,.0f} MB"
            )
    lines.append(
        "- total s is wall time; CPU s is the process's CPU time over all its threads (Arrow reads and "
        "writes on both cores), the better guide when other jobs share the machine."
    )
    lines.append(
        "- Peak RSS is the whole benchmark process sampled every 50 ms, so it includes the interpreter "
        "and libraries (about 300 MB)."
    )
    return "\n".join(lines) + "\n"


def main(
    cases: int = typer.Option(1_000_000, help="Number of cases to ingest."),
    results: Path = typer.Option(RESULTS, help="Markdown file for the results."),
    work: Path | None = typer.Option(
        None, help="Folder for inputs and stores [default: a temporary folder]."
    ),
) -> None:
    """Benchmark ingestion of CASES cases and write the results file."""
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        print(run(cases, work, results))
        return
    with tempfile.TemporaryDirectory(prefix="caselens-ingest-bench-") as folder:
        print(run(cases, Path(folder), results))


if __name__ == "__main__":
    typer.run(main)
