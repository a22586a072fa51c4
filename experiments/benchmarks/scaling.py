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

``--no-pandas-above N`` skips the in-process path past N stays (the page gives the peak its measured
growth predicts there); ``partitions --cases N --row-group-rows R …`` runs the Dask path on one region
with several store part sizes (what a worker's peak follows); ``page D/*.json`` puts sizes and the
sweep measured in separate runs (``--raw-dir D``) on one page.
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
YEAR_IN_ONE_PIECE = "year in one piece"
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
    first, hospital by hospital, and deleted once measured."""
    rows = []
    for n in sizes:
        modes = ("dask",) if no_pandas_above is not None and n > no_pandas_above else ("pandas", "dask")
        with _region(n, hospital_cases) as (data, generated):
            found = _row(n, generated, memory_limit, row_group_rows)
            for mode in modes:
                found[mode] = _child(mode, data, workers, memory_limit, row_group_rows)
                _keep(found, folder, f"scaling-{n}.json")
        rows.append(found)
    return rows


def sweep(
    n: int,
    part_sizes: list[int],
    workers: int = 2,
    memory_limit: str = "3GiB",
    hospital_cases: int = 200_000,
    folder: Path | None = None,
) -> list[dict[str, Any]]:
    """The Dask path on one region with each store part size: what a worker's peak follows."""
    rows = []
    with _region(n, hospital_cases) as (data, generated):
        for rows_per_part in part_sizes:
            found = _row(n, generated, memory_limit, rows_per_part)
            found["dask"] = _child("dask", data, workers, memory_limit, rows_per_part)
            _keep(found, folder, f"partitions-{n}-{rows_per_part}.json")
            rows.append(found)
    return rows


@contextmanager
def _region(n: int, hospital_cases: int) -> Iterator[tuple[Path, float]]:
    """An ``n``-stay demo region in a temporary folder (``TMPDIR`` picks the disk), deleted after."""
    from pipelines.demo.partitioned import write_region

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "region"
        started = time.perf_counter()
        files = list(write_region(data, n, years=3, seed=42, hospital_cases=hospital_cases))
        generated = time.perf_counter() - started
        print(f"{n:,} stays in {len(files)} files: {generated:.1f} s", file=sys.stderr, flush=True)
        yield data, generated


def _row(n: int, generated: float, memory_limit: str, row_group_rows: int | None) -> dict[str, Any]:
    from pipelines import store

    return {
        "cases": n,
        "generate_seconds": round(generated, 1),
        "memory_limit": memory_limit,
        "row_group_rows": row_group_rows or store.ROW_GROUP_ROWS,
        "store_write": STREAMED,
        "pandas": None,
    }


def _child(mode: str, data: Path, workers: int, memory_limit: str, rows: int | None) -> dict:
    """One path in its own child process (its peak memory its own), with a work folder deleted after."""
    with tempfile.TemporaryDirectory(dir=data.parent) as work:
        args = [sys.executable, "-m", "experiments.benchmarks.scaling", "run", "--mode", mode]
        args += ["--data", str(data), "--work", work, "--workers", str(workers)]
        args += ["--memory-limit", memory_limit, *(["--row-group-rows", str(rows)] if rows else [])]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _keep(found: dict[str, Any], folder: Path | None, name: str) -> None:
    """The figures so far, kept as soon as measured (a long run's sizes survive a later failure)."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(found), encoding="utf-8")


def report(
    rows: list[dict[str, Any]],
    workers: int,
    memory_limit: str,
    commands: list[str],
    parts: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> list[str]:
    """The results page: the table per size and stage, the part-size sweep, growth, and the marked
    extrapolation."""
    limits = sorted({_limit(r, memory_limit) for r in [*rows, *parts]})
    lines = [
        "# Benchmark: scaling past one machine (in-process pandas against a local Dask cluster)",
        "",
        "Commands (each size in its own run, `--raw-dir D` keeping its figures; the page from them with "
        "`python -m experiments.benchmarks.scaling page D/*.json`):",
        "",
        *[f"- `{c}`" for c in commands],
        "",
        f"Dask: `LocalCluster` of {workers} worker processes, 1 thread and a `memory_limit` each "
        f"({', '.join(limits)}: see the commands), on the same 2-core machine as the client. Demo region "
        "written hospital by hospital (200,000 stays each, `pipelines.demo.partitioned`: memory follows "
        "the hospital, not the region); store partitions = part files of one Parquet row group, "
        f"{_rows_per_part(rows):,} rows unless said. Stages: ingest (file by file; Dask writes the store's "
        "years on the workers), group + price with the default rules (readmission rule: shuffle by "
        "patient), admission features (levels from partition counts, shuffle by patient), the cost point "
        "model (train.toml's `tasks.cost.lightgbm`; Dask: `DaskLGBMRegressor`). Peak memory = highest "
        "RSS sampled every 100 ms during the stage.",
        "",
        "| stays | stage | pandas s | pandas peak MB | Dask s | Dask peak MB per worker | Dask client MB |",
        "|---:|---|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        for stage in STAGES:
            d = row["dask"][stage]
            p = row["pandas"][stage] if row.get("pandas") else None
            shown = f"{stage} †" if _write_path(row) != STREAMED else stage
            pandas = f"{p['seconds']:,} | {p['process']:,}" if p else "— | —"
            per_worker = " / ".join(f"{v:,}" for v in _workers(d))
            dask = f"{d['seconds']:,} | {per_worker} | {d['client']:,}"
            lines.append(f"| {row['cases']:,} | {shown} | {pandas} | {dask} |")
    lines += ["", *_reading(rows)]
    lines += _skipped_pandas(rows)
    if parts:
        lines += _part_sweep(parts, rows)
    if len(rows) >= 2:
        lines += _growth(rows, parts) + _extrapolation(rows, parts, workers)
    return lines


def _limit(row: dict[str, Any], default: str) -> str:
    return str(row.get("memory_limit", default))


def _write_path(row: dict[str, Any]) -> str:
    return str(row.get("store_write", YEAR_IN_ONE_PIECE))


def _rows_per_part(rows: list[dict[str, Any]]) -> int:
    from pipelines import store

    return int(rows[-1].get("row_group_rows", store.ROW_GROUP_ROWS)) if rows else store.ROW_GROUP_ROWS


def _reading(rows: list[dict[str, Any]]) -> list[str]:
    old = [f"{r['cases']:,}" for r in rows if _write_path(r) != STREAMED]
    lines = [
        "Reading the table: the pandas process keeps what earlier stages left (a stage's peak starts "
        "from the RSS it inherits), while each Dask stage's work lives in the workers. The Dask client "
        "holds the file being validated during ingest (one hospital, 200,000 stays) and little after. "
        "Ingest merges each file into the store's years a row group at a time (`pipelines.store`), so a "
        "worker holds one hospital's stays of a year and a part or two, whatever the stays already "
        "stored; the later stages read one part per partition and the shuffles by patient keep that "
        "size. Both paths share the machine's 2 cores with other jobs; Dask adds per-stage costs (each "
        "worker loads the grouping tables, the shuffles by patient), so on one machine it is about as "
        "fast as pandas, and its gain is the memory per process and the machines it can add."
    ]
    if old:
        lines += [
            "",
            f"† measured at {', '.join(old)} stays before the streaming store write: ingest then "
            "rewrote a whole year of the store on one worker (its peak followed the stays of a year, and "
            "the group stage inherited it), and every file rewrote its years whole (time growing with "
            "the stays already stored). Those sizes' ingest and group peaks are not partition-bound; "
            "the growth below uses runs with the streaming write only.",
        ]
    return lines


def _skipped_pandas(rows: list[dict[str, Any]]) -> list[str]:
    """Why the in-process path has no figure at the big sizes, from its own measured growth."""
    ran = [r for r in rows if r.get("pandas")]
    if len(ran) < 2:
        return []
    skipped = [r for r in rows if not r.get("pandas") and r["cases"] > ran[-1]["cases"]]
    if not skipped:
        return []
    small, large = ran[0], ran[-1]
    k = {s: _exponent(small, large, lambda r, s=s: r["pandas"][s]["process"]) for s in STAGES}
    stage = max(STAGES, key=lambda s: large["pandas"][s]["process"])
    lines = [""]
    for row in skipped:
        projected = large["pandas"][stage]["process"] * (row["cases"] / large["cases"]) ** k[stage]
        lines.append(
            f"In-process pandas was not run at {row['cases']:,} stays (`--no-pandas-above "
            f"{large['cases']}`, an explicit option): its {stage} stage peaked at "
            f"{large['pandas'][stage]['process']:,} MB at {large['cases']:,} stays and grew as "
            f"stays^{k[stage]:.2f} from {small['cases']:,}, which makes about {projected / 1024:,.0f} GB "
            f"at {row['cases']:,}, more than this machine's {psutil.virtual_memory().total / 2**30:.0f} GiB "
            "shared with other jobs."
        )
    return lines


def _part_sweep(parts: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """The same stays with several part sizes, and the same part size at several sizes."""
    parts = sorted(parts, key=lambda r: (r["cases"], r["row_group_rows"]))
    n = parts[0]["cases"]
    lines = [
        "",
        "## Memory follows the partition size, not the stays",
        "",
        f"The same {n:,} stays on the Dask path with the store cut into parts of different sizes "
        f"(`python -m experiments.benchmarks.scaling partitions --cases {n} "
        + " ".join(f"--row-group-rows {r['row_group_rows']}" for r in parts)
        + f" --memory-limit {_limit(parts[0], '3GiB')}`): peak MB per worker (the larger of the two) and "
        "seconds.",
        "",
        "| rows per part | partitions | " + " | ".join(f"{s} peak MB | {s} s" for s in STAGES) + " |",
        "|---:|---:|" + "---:|---:|" * len(STAGES),
    ]
    for r in parts:
        d = r["dask"]
        cells = " | ".join(f"{max(_workers(d[s])):,} | {d[s]['seconds']:,}" for s in STAGES)
        lines.append(f"| {r['row_group_rows']:,} | {d['partitions']} | {cells} |")
    small, large = parts[0], parts[-1]
    ks = ", ".join(
        f"{s} {_k(small['row_group_rows'], large['row_group_rows'], _peak(small, s), _peak(large, s))}"
        for s in STAGES
    )
    lines += [
        "",
        f"Per-worker peak against rows per part (exponent k, peak ∝ part rows^k, "
        f"{small['row_group_rows']:,} → {large['row_group_rows']:,}): {ks}. A worker's peak holds its "
        "process (Python, pandas, LightGBM, the grouping tables: a few hundred MB) plus the partitions "
        "it works on, so it grows with the part size but less than in proportion. Training holds "
        "the worker's share of the whole feature matrix, so it does not follow the part size.",
    ]
    base = next((r for r in parts if r["row_group_rows"] == _rows_per_part(rows)), None)
    same = [r for r in rows if base is not None and _comparable(r, base)]
    if base is not None and same and same[-1]["cases"] > base["cases"]:
        top = same[-1]
        cells = " | ".join(
            f"{_peak(base, s):,} → {_peak(top, s):,} "
            f"(k {_k(base['cases'], top['cases'], _peak(base, s), _peak(top, s))})"
            for s in STAGES
        )
        lines += [
            "",
            f"The same part size ({base['row_group_rows']:,} rows), {base['cases']:,} → "
            f"{top['cases']:,} stays, peak MB per worker (k: growth exponent over stays):",
            "",
            "| " + " | ".join(STAGES) + " |",
            "|" + "---|" * len(STAGES),
            f"| {cells} |",
        ]
    return lines


def _comparable(row: dict[str, Any], other: dict[str, Any]) -> bool:
    """Two runs whose Dask figures can be compared: the same store write path and part size."""
    return _write_path(row) == _write_path(other) and row.get("row_group_rows") == other.get("row_group_rows")


def _k(n_small: float, n_large: float, a: float, b: float) -> str:
    """The exponent k in growth ∝ n^k between two measurements."""
    return (
        f"{np.log(b / a) / np.log(n_large / n_small):.2f}"
        if a > 0 and b > 0 and n_large != n_small
        else "n/a"
    )


def _workers(stage: dict[str, float]) -> list[float]:
    return [v for k, v in stage.items() if k.startswith("worker")]


def _peak(row: dict[str, Any], stage: str) -> float:
    """The larger of the workers' peaks in a stage."""
    return max(_workers(row["dask"][stage]))


def _dask_ends(rows: list[dict[str, Any]], parts: list[dict[str, Any]]) -> tuple[dict, dict] | None:
    """The smallest and largest Dask runs measured the same way as the largest (write path, part
    size), the part-size sweep's run at that size included."""
    largest = rows[-1]
    same = sorted((r for r in [*rows, *parts] if _comparable(r, largest)), key=lambda r: r["cases"])
    return (same[0], largest) if same[0]["cases"] < largest["cases"] else None


def _growth(rows: list[dict[str, Any]], parts: list[dict[str, Any]]) -> list[str]:
    """How wall time and peak memory grew with stays: the exponent k in growth ∝ stays^k."""
    ran = [r for r in rows if r.get("pandas")]
    ends = _dask_ends(rows, parts)
    pandas = (ran[0], ran[-1]) if len(ran) >= 2 else None
    span = []
    if pandas:
        span.append(f"pandas from {pandas[0]['cases']:,} to {pandas[1]['cases']:,} stays")
    if ends:
        span.append(f"Dask from {ends[0]['cases']:,} to {ends[1]['cases']:,}")
    lines = [
        "",
        f"Growth ({'; '.join(span)}; exponent k: grows as stays^k; 1 = linear, 0 = flat):",
        "",
        "| stage | pandas time k | pandas memory k | Dask time k | Dask memory per worker k |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage in STAGES:
        cells = ["n/a", "n/a", "n/a", "n/a"]
        if pandas:
            (a, b) = (pandas[0], pandas[1])
            cells[0] = _k(
                a["cases"], b["cases"], a["pandas"][stage]["seconds"], b["pandas"][stage]["seconds"]
            )
            cells[1] = _k(
                a["cases"], b["cases"], a["pandas"][stage]["process"], b["pandas"][stage]["process"]
            )
        if ends:
            (a, b) = ends
            da, db = a["dask"][stage], b["dask"][stage]
            cells[2] = _k(a["cases"], b["cases"], da["seconds"], db["seconds"])
            cells[3] = _k(a["cases"], b["cases"], max(_workers(da)), max(_workers(db)))
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return lines


def _exponent(a: dict[str, Any], b: dict[str, Any], value: Callable[[dict[str, Any]], float]) -> float:
    return float(np.log(value(b) / value(a)) / np.log(b["cases"] / a["cases"]))


def _extrapolation(rows: list[dict[str, Any]], parts: list[dict[str, Any]], workers: int) -> list[str]:
    """10M and 50M stays on M machines of ``workers`` workers each: clearly an extrapolation (the
    network cost of the shuffles is not in it: the local cluster's workers share one machine).

    Per-worker peaks grow from the largest Dask run by the growth between the Dask ends (runs
    measured the same way). Times grow from the runs where both paths ran (one ``measure`` session,
    back to back) when there are two, else from the Dask ends; ingest's time only when those runs
    used the streaming store write.
    """
    ends = _dask_ends(rows, parts)
    if ends is None:
        return []
    ran = [r for r in rows if r.get("pandas")]
    timed = (ran[0], ran[-1]) if len(ran) >= 2 else ends
    bound = ("ingest", "group", "features")

    def scaled(pair: tuple[dict, dict], stage: str, ratio: float, memory: bool) -> float:
        def value(r: dict[str, Any]) -> float:
            return _peak(r, stage) if memory else r["dask"][stage]["seconds"]

        return value(pair[1]) * ratio ** max(_exponent(*pair, value), 0.0)

    ingest_timed = _write_path(timed[1]) == STREAMED
    lines = [
        "",
        f"**Extrapolation, not measured**, for M machines of {workers} workers like these: a stage's "
        "figure is scaled by (stays per worker ÷ the run's)^k with the stage's k (negative k taken as 0). "
        f"Per-worker peaks: from the {ends[1]['cases']:,}-stay run, k from {ends[0]['cases']:,} stays "
        "(the growth table's Dask memory column). Times: from the "
        f"{timed[1]['cases']:,}-stay run, k from {timed[0]['cases']:,} stays"
        + (" of the runs where both paths ran" if timed is not ends else "")
        + "; ingest "
        + (
            "by stays alone (the command validates its files in one process: more machines do not shorten it)"
            if ingest_timed
            else "not extrapolated (those runs rewrote whole years)"
        )
        + ". The partition-bound stages' peak stays near the measured one; training holds each "
        "worker's share of the feature matrix, so its peak grows with stays ÷ workers. The shuffles' "
        "network traffic between machines is not in these figures.",
        "",
        "| stays | machines | ingest s | group + features s | training s | peak MB per worker, "
        "ingest/group/features | training peak MB per worker |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target in (10_000_000, 50_000_000):
        for machines in (1, 4, 10):
            per_worker = target / (workers * machines)
            t, m = per_worker / (timed[1]["cases"] / workers), per_worker / (ends[1]["cases"] / workers)
            ingest = (
                f"{scaled(timed, 'ingest', target / timed[1]['cases'], False):,.0f}" if ingest_timed else "—"
            )
            work = scaled(timed, "group", t, False) + scaled(timed, "features", t, False)
            peak = max(scaled(ends, s, m, True) for s in bound)
            train, train_peak = scaled(timed, "train", t, False), scaled(ends, "train", m, True)
            lines.append(
                f"| {target:,} | {machines} | {ingest} | {work:,.0f} | {train:,.0f} | {peak:,.0f} "
                f"| {train_peak:,.0f} |"
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
    write_page(rows, [], workers, memory_limit, output, f"load average {started_load:.1f} at the start")


@app.command("partitions")
def partitions(
    cases: int = typer.Option(1_000_000, "--cases", help="region size"),
    row_group_rows: list[int] = typer.Option(
        [32_768, 131_072, 262_144], "--row-group-rows", help="store part sizes to compare (repeat)"
    ),
    workers: int = typer.Option(2, "--workers"),
    memory_limit: str = typer.Option("3GiB", "--memory-limit"),
    raw_dir: Path = typer.Option(..., "--raw-dir", help="where partitions-N-R.json files are kept"),
) -> None:
    """The Dask path on one region with several store part sizes; put them on the page with `page`."""
    for row in sweep(cases, sorted(row_group_rows), workers, memory_limit, folder=raw_dir):
        typer.echo(json.dumps(row))


@app.command("page")
def page(
    raw: list[Path] = typer.Argument(..., help="scaling-N.json and partitions-N-R.json files (--raw-dir)"),
    workers: int = typer.Option(2, "--workers"),
    memory_limit: str = typer.Option(
        "2GiB", "--memory-limit", help="the limit of runs whose file does not record it"
    ),
    output: Path = typer.Option(RESULTS, "-o", "--output"),
    note: str = typer.Option("", "--note", help="how the runs were made, for the page's machine line"),
) -> None:
    """Write the results page from sizes measured in separate runs (big sizes take long)."""
    found = [(p.name, json.loads(p.read_text(encoding="utf-8"))) for p in raw]
    rows = sorted(
        (r for name, r in found if not name.startswith("partitions-")),
        key=lambda r: (r["cases"], _write_path(r) == STREAMED),
    )
    parts = [r for name, r in found if name.startswith("partitions-")]
    write_page(rows, parts, workers, memory_limit, output, note or "sizes measured in separate runs")


def commands(rows: list[dict[str, Any]], memory_limit: str) -> list[str]:
    """The command that measured each size (as its figures record it)."""
    ran = [r["cases"] for r in rows if r.get("pandas")]
    out = []
    for row in rows:
        below = max((n for n in ran if n < row["cases"]), default=0)
        skip = "" if row.get("pandas") else f" --no-pandas-above {below}"
        out.append(
            f"python -m experiments.benchmarks.scaling measure --cases {row['cases']} "
            f"--memory-limit {_limit(row, memory_limit)}{skip}"
        )
    return out


def write_page(
    rows: list[dict[str, Any]],
    parts: list[dict[str, Any]],
    workers: int,
    memory_limit: str,
    output: Path,
    note: str,
) -> str:
    lines = report(rows, workers, memory_limit, commands(rows, memory_limit), parts)
    extra = f", {note}, load average {load_average():.1f} at the end"
    raw = json.dumps(rows) + ("\n" + json.dumps(parts) if parts else "")
    lines += [
        "",
        machine_line(extra),
        "",
        "Raw figures (JSON: the sizes, then the part-size sweep):",
        "",
        "```",
        raw,
        "```",
    ]
    return write_results(lines, output)


if __name__ == "__main__":
    app()
