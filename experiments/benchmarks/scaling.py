"""Benchmark: ingest → group → features → training, in-process pandas against a local Dask cluster.

    .venv/bin/python -m experiments.benchmarks.scaling measure --cases 300000 --cases 1000000

For each size the demo region is written hospital by hospital (``pipelines.demo.partitioned``: memory
follows the hospital, not the region), then each path runs in its own child process so that its peak
memory is its own:

- ``pandas``: the embedded default. Ingest file by file, then ``read_cases`` of the whole store and
  the same per-partition functions the cluster runs, called once on everything.
- ``dask``: a ``LocalCluster`` of ``--workers`` worker processes with ``--memory-limit`` each (one
  thread each). Ingest writes the store's years on the workers; grouping and pricing
  (``pipelines.cluster_casemix``), features (``pipelines.cluster_features``: levels from counts,
  shuffle by patient) and the cost model (``lightgbm.dask.DaskLGBMRegressor``) run per partition.

Every stage records wall seconds and peak resident memory, sampled every 100 ms: of the process for
pandas; of each worker process and of the client for Dask. Results: ``experiments/results/scaling.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import typer

from experiments.benchmarks.report import load_average, machine_line, write_results

RESULTS = Path(__file__).resolve().parents[1] / "results" / "scaling.md"
STAGES = ("ingest", "group", "features", "train")
COST_PARAMS_TABLE = "cost"
# How the store was written: part files merged a row group at a time (pipelines.store); rows without
# the mark were measured when ingest rewrote a whole year in one piece.
STREAMED = "streamed parts"
app = typer.Typer(add_completion=False)


class PeakSampler:
    """Highest RSS of each watched process (by name) while a block runs, sampled every 100 ms."""

    def __init__(self, processes: dict[str, psutil.Process]) -> None:
        self.processes = processes
        self.peaks: dict[str, int] = {}

    @contextmanager
    def stage(self) -> Iterator[dict[str, int]]:
        peaks = {name: self._rss(p) for name, p in self.processes.items()}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                for name, process in self.processes.items():
                    peaks[name] = max(peaks[name], self._rss(process))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield peaks
        finally:
            stop.set()
            thread.join()
            for name, process in self.processes.items():
                peaks[name] = max(peaks[name], self._rss(process))

    @staticmethod
    def _rss(process: psutil.Process) -> int:
        try:
            return process.memory_info().rss
        except psutil.Error:
            return 0


def _timed_stages(sampler: PeakSampler, stages: dict[str, Callable[[], Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, step in stages.items():
        with sampler.stage() as peaks:
            started = time.perf_counter()
            step()
            seconds = time.perf_counter() - started
        out[name] = {"seconds": round(seconds, 2), **{k: round(v / 2**20) for k, v in peaks.items()}}
        print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def _cost_params() -> dict[str, Any]:
    from models.config import load_config

    return dict(load_config()["tasks"][COST_PARAMS_TABLE]["lightgbm"])


def _with_label(cases: pd.DataFrame, features: Any) -> pd.DataFrame:
    """A partition's features (``feature_partition``) with the cost model's label, log cost."""
    from pipelines.cluster_features import feature_partition

    table = feature_partition(cases, features)
    table["log_cost"] = np.log1p(cases["total_cost"].astype(float).to_numpy())
    return table


def run_pandas(data: Path, work: Path) -> dict[str, Any]:
    """Every stage in this process on pandas, as the embedded default does."""
    from casemix.payment import PaymentRules
    from contract.settings import get_settings
    from features.pipeline import CaseFeatures
    from models import lgbm
    from pipelines.cluster_casemix import group_partition
    from pipelines.ingest import ingest_file
    from pipelines.store import read_cases

    store, rules = work / "store", PaymentRules.load()
    tables = get_settings().casemix_tables.resolve()

    def ingest() -> None:
        for k, path in enumerate(sorted(data.glob("cases-*.parquet"))):
            ingest_file(path, store_dir=store, reports_dir=work / f"reports-{k}")

    def group() -> None:
        from casemix.engine import CasemixEngine

        cases = read_cases(store)
        weights = CasemixEngine(rules=rules).weights()  # the rules' insurer table
        group_partition(cases, tables, rules, weights).to_parquet(work / "grouped.parquet", index=False)

    def features() -> None:
        cases = read_cases(store)
        fitted = CaseFeatures("admission").fit(cases)
        _with_label(cases, fitted).to_parquet(work / "features.parquet", index=False)

    def train() -> None:
        table = pd.read_parquet(work / "features.parquet")
        X = table.drop(columns=["case_id", "log_cost"])
        lgbm.regressor(_cost_params()).fit(X, table["log_cost"])

    sampler = PeakSampler({"process": psutil.Process()})
    return _timed_stages(sampler, {"ingest": ingest, "group": group, "features": features, "train": train})


def run_dask(data: Path, work: Path, workers: int, memory_limit: str) -> dict[str, Any]:
    """Every stage on a LocalCluster of ``workers`` processes with ``memory_limit`` each."""
    import dask.dataframe as dd
    from distributed import LocalCluster
    from lightgbm.dask import DaskLGBMRegressor

    from casemix.payment import PaymentRules
    from features.pipeline import CaseFeatures
    from pipelines import cluster
    from pipelines.cluster_casemix import group_store
    from pipelines.cluster_features import fit_levels
    from pipelines.ingest import ingest_file

    store, rules = work / "store", PaymentRules.load()
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            dashboard_address=None,
        ) as local,
        cluster.connect(local) as client,
    ):
        pids = client.run(os.getpid)
        watched = {f"worker {i + 1}": psutil.Process(pid) for i, pid in enumerate(pids.values())}
        sampler = PeakSampler({"client": psutil.Process(), **watched})
        state: dict[str, Any] = {}

        def ingest() -> None:
            for k, path in enumerate(sorted(data.glob("cases-*.parquet"))):
                ingest_file(path, store_dir=store, reports_dir=work / f"reports-{k}", client=client)

        def group() -> None:
            found = group_store(client, work / "grouped", store_dir=store, rules=rules)
            state["partitions"] = found.partitions

        def features() -> None:
            stored = cluster.read_store(store)
            fitted = fit_levels(stored, CaseFeatures("admission"))
            sample = cluster.store_sample(store)
            state["dtypes"] = _with_label(sample, fitted).dtypes
            table = cluster.map_partitions(cluster.by_patient(stored), sample, _with_label, fitted)
            cluster.write_folder(table, work / "features")

        def train() -> None:
            # Held on the workers (LightGBM trains in memory anyway), so that X and y are cut from the
            # same partitions: read separately, Dask fuses the narrow label's files into fewer parts.
            table = dd.read_parquet(str(work / "features")).astype(state["dtypes"].to_dict())
            table = client.persist(table)
            X = table.drop(columns=["case_id", "log_cost"])
            params = {k: v for k, v in _cost_params().items() if k != "n_jobs"}
            DaskLGBMRegressor(client=client, verbose=-1, **params).fit(X, table["log_cost"]).to_local()

        stages = _timed_stages(
            sampler, {"ingest": ingest, "group": group, "features": features, "train": train}
        )
    return {**stages, "partitions": state.get("partitions")}


@app.command("run", hidden=True)
def run(
    mode: str = typer.Option(..., "--mode"),
    data: Path = typer.Option(..., "--data"),
    work: Path = typer.Option(..., "--work"),
    workers: int = typer.Option(2, "--workers"),
    memory_limit: str = typer.Option("3GiB", "--memory-limit"),
    row_group_rows: int | None = typer.Option(None, "--row-group-rows"),
) -> None:
    """One path on one region, in this (child) process; prints its figures as JSON."""
    from pipelines import store

    if row_group_rows:
        store.ROW_GROUP_ROWS = row_group_rows
    found = run_pandas(data, work) if mode == "pandas" else run_dask(data, work, workers, memory_limit)
    print(json.dumps(found))


def _child(mode: str, data: Path, work: Path, workers: int, memory_limit: str, rows: int | None) -> dict:
    args = [sys.executable, "-m", "experiments.benchmarks.scaling", "run", "--mode", mode]
    args += ["--data", str(data), "--work", str(work), "--workers", str(workers)]
    args += ["--memory-limit", memory_limit, *(["--row-group-rows", str(rows)] if rows else [])]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    sizes: list[int],
    workers: int = 2,
    memory_limit: str = "3GiB",
    hospital_cases: int = 200_000,
    row_group_rows: int | None = None,
    folder: Path | None = None,
    no_pandas_above: int | None = None,
) -> list[dict[str, Any]]:
    """Both paths at every size (pandas only up to ``no_pandas_above`` stays); each region written
    first, hospital by hospital."""
    rows = []
    for n in sizes:
        modes = ("dask",) if no_pandas_above is not None and n > no_pandas_above else ("pandas", "dask")
        found = _region_runs(n, modes, workers, memory_limit, hospital_cases, row_group_rows, folder)
        rows.append(found)
    return rows


def _region_runs(
    n: int,
    modes: tuple[str, ...],
    workers: int,
    memory_limit: str,
    hospital_cases: int,
    row_group_rows: int | None,
    folder: Path | None,
    name: str = "scaling-{n}.json",
) -> dict[str, Any]:
    """Write an ``n``-stay region, run each mode on it in a child process, delete the region."""
    from pipelines import store
    from pipelines.demo.partitioned import write_region

    with tempfile.TemporaryDirectory() as tmp:  # TMPDIR chooses the disk
        data = Path(tmp) / "region"
        started = time.perf_counter()
        files = list(write_region(data, n, years=3, seed=42, hospital_cases=hospital_cases))
        generated = time.perf_counter() - started
        print(f"{n:,} stays in {len(files)} files: {generated:.1f} s", file=sys.stderr, flush=True)
        found: dict[str, Any] = {
            "cases": n,
            "generate_seconds": round(generated, 1),
            "memory_limit": memory_limit,
            "row_group_rows": row_group_rows or store.ROW_GROUP_ROWS,
            "store_write": STREAMED,
            "pandas": None,
        }
        for mode in modes:
            work = Path(tmp) / mode
            work.mkdir()
            found[mode] = _child(mode, data, work, workers, memory_limit, row_group_rows)
            subprocess.run(["rm", "-rf", str(work)], check=False)
            if folder is not None:  # kept as soon as measured
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name.format(n=n, rows=found["row_group_rows"])).write_text(
                    json.dumps(found), encoding="utf-8"
                )
    return found


def report(rows: list[dict[str, Any]], workers: int, memory_limit: str, command: str) -> list[str]:
    """The results page: the table per size and stage, growth, and the marked extrapolation."""
    lines = [
        "# Benchmark: scaling past one machine (in-process pandas against a local Dask cluster)",
        "",
        f"Command: `{command}`",
        "",
        f"Dask: `LocalCluster` of {workers} worker processes, 1 thread and `memory_limit={memory_limit}` "
        "each, on the same 2-core machine as the client. Demo region written hospital by hospital "
        "(200,000 stays each, `pipelines.demo.partitioned`); store partitions = Parquet row groups of "
        "131,072 rows. Stages: ingest (file by file; Dask writes the store's years on the workers), "
        "group + price with the default rules (readmission rule: shuffle by patient), admission features "
        "(levels from partition counts, shuffle by patient), the cost point model (train.toml's "
        "`tasks.cost.lightgbm`; Dask: `DaskLGBMRegressor`). Peak memory = highest RSS sampled every "
        "100 ms during the stage.",
        "",
        "| stays | stage | pandas s | pandas peak MB | Dask s | Dask peak MB per worker | Dask client MB |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        for stage in STAGES:
            p, d = row["pandas"][stage], row["dask"][stage]
            per_worker = " / ".join(f"{v:,}" for v in _workers(d))
            lines.append(
                f"| {row['cases']:,} | {stage} | {p['seconds']:,} | {p['process']:,} | {d['seconds']:,} | "
                f"{per_worker} | {d['client']:,} |"
            )
    lines += [
        "",
        "Reading the table: the pandas process keeps what earlier stages left (a stage's peak starts "
        "from the RSS it inherits), while each Dask stage's work lives in the workers. The Dask client "
        "holds the file being validated during ingest (one hospital, 200,000 stays) and little after. "
        "Workers too start a stage from what the one before left: ingest rewrites a whole year of the "
        "store on one worker, so its peak follows the stays of a year, not the partition size, and the "
        "group stage inherits it; features, the partition-bound stage measured after a shuffle, show "
        "the partition bound best. "
        "Both paths share the machine's 2 cores with other jobs; Dask adds per-stage costs (each worker "
        "loads the grouping tables, the shuffles by patient), so on one machine it is about as fast as "
        "pandas, and its gain is the memory per process and the machines it can add.",
    ]
    if len(rows) >= 2:
        lines += _growth(rows[0], rows[-1]) + _extrapolation(rows[-1], workers)
    return lines


def _workers(stage: dict[str, float]) -> list[float]:
    return [v for k, v in stage.items() if k.startswith("worker")]


def _growth(small: dict[str, Any], large: dict[str, Any]) -> list[str]:
    """How wall time and peak memory grew between two sizes: the exponent k in growth ∝ stays^k."""
    ratio = np.log(large["cases"] / small["cases"])

    def k(a: float, b: float) -> str:
        return f"{np.log(b / a) / ratio:.2f}" if a > 0 and b > 0 else "n/a"

    lines = [
        "",
        f"Growth from {small['cases']:,} to {large['cases']:,} stays (exponent k: grows as stays^k; "
        "1 = linear, 0 = flat):",
        "",
        "| stage | pandas time k | pandas memory k | Dask time k | Dask memory per worker k |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage in STAGES:
        ps, pl = small["pandas"][stage], large["pandas"][stage]
        ds, dl = small["dask"][stage], large["dask"][stage]
        lines.append(
            f"| {stage} | {k(ps['seconds'], pl['seconds'])} | {k(ps['process'], pl['process'])} | "
            f"{k(ds['seconds'], dl['seconds'])} | {k(max(_workers(ds)), max(_workers(dl)))} |"
        )
    return lines


def _extrapolation(largest: dict[str, Any], workers: int) -> list[str]:
    """10M and 50M stays on M machines of ``workers`` workers each, from the largest measured size:
    clearly an extrapolation (linear in stays per worker; the network cost of the shuffles is not in
    it: the local cluster's workers share one machine)."""
    n = largest["cases"]
    lines = [
        "",
        f"**Extrapolation, not measured**: from the {n:,}-stay run, assuming each stage's work grows "
        f"linearly with stays per worker (as measured above) and M machines of {workers} workers like "
        "these. Partition-bound stages (ingest's year rewrite aside, group, features) keep the measured "
        "peak per worker; training holds each worker's share of the feature matrix, so its peak grows "
        "with stays ÷ workers. The shuffles' network traffic between machines is not in these figures.",
        "",
        "| stays | machines | group + features s | training s | training peak MB per worker |",
        "|---:|---:|---:|---:|---:|",
    ]
    dask = largest["dask"]
    base = max(_workers(dask["features"]))  # what a worker holds before training starts
    train_peak = max(_workers(dask["train"]))
    for target in (10_000_000, 50_000_000):
        for machines in (1, 4, 10):
            scale = target / n / machines
            per_partition = (dask["group"]["seconds"] + dask["features"]["seconds"]) * scale
            memory = base + max(train_peak - base, 0) * scale
            lines.append(
                f"| {target:,} | {machines} | {per_partition:,.0f} | {dask['train']['seconds'] * scale:,.0f} "
                f"| {memory:,.0f} |"
            )
    return lines


@app.command("measure")
def main(
    cases: list[int] = typer.Option([300_000, 1_000_000], "--cases", help="region sizes (repeat)"),
    workers: int = typer.Option(2, "--workers"),
    memory_limit: str = typer.Option("3GiB", "--memory-limit"),
    raw_dir: Path | None = typer.Option(
        None, "--raw-dir", help="also keep each size's figures there as scaling-N.json, as measured"
    ),
    no_pandas_above: int | None = typer.Option(
        None, "--no-pandas-above", help="run the in-process pandas path only up to this many stays"
    ),
    output: Path = typer.Option(RESULTS, "-o", "--output"),
) -> None:
    """Measure both paths at every size and write the results page."""
    started_load = load_average()
    rows = measure(sorted(cases), workers, memory_limit, folder=raw_dir, no_pandas_above=no_pandas_above)
    write_page(rows, workers, memory_limit, output, f"load average {started_load:.1f} at the start")


@app.command("page")
def page(
    raw: list[Path] = typer.Argument(..., help="scaling-N.json files kept by measure --raw-dir"),
    workers: int = typer.Option(2, "--workers"),
    memory_limit: str = typer.Option("3GiB", "--memory-limit"),
    output: Path = typer.Option(RESULTS, "-o", "--output"),
) -> None:
    """Write the results page from sizes measured in separate runs (big sizes take long)."""
    rows = sorted((json.loads(p.read_text(encoding="utf-8")) for p in raw), key=lambda r: r["cases"])
    write_page(rows, workers, memory_limit, output, "sizes measured in separate runs")


def write_page(rows: list[dict[str, Any]], workers: int, memory_limit: str, output: Path, note: str) -> str:
    sizes = " ".join(f"--cases {row['cases']}" for row in rows)
    command = f"python -m experiments.benchmarks.scaling measure {sizes} --memory-limit {memory_limit}"
    lines = report(rows, workers, memory_limit, command)
    extra = f", {note}, load average {load_average():.1f} at the end"
    lines += ["", machine_line(extra), "", "Raw figures (JSON):", "", "```", json.dumps(rows), "```"]
    return write_results(lines, output)


if __name__ == "__main__":
    app()
