"""Benchmark: the in-stay endpoint and the ward page (``POST /v1/predict/in-stay``, ``/watch``).

    nice -n 10 .venv/bin/python -m experiments.benchmarks.instay_serving --cases 4000

Generates the demo hospital (3 years, seed 42), stores it, trains ``instay`` with the project's config
into a temporary MLflow store, then measures one stay per request (the record and its charges to
date, cut, pre-grouped, scored and explained) three ways:

1. over HTTP as the other single-case endpoints are measured (``experiments.benchmarks.serving``):
   ``caselens serve`` in its own process with each ``--workers`` count, one-stay requests sent at a
   fixed rate (50/s) by the lean load generator, latency p50/p99 counted from when each was due;
2. in process through the FastAPI TestClient (no network): one stay, a batch of every stay in
   hospital on the demo's last day (repeated to ``--batch-stays``) and the watch-list page;
3. in process, stage by stage (median ms of wall and of the thread's CPU time): where a stay's time
   goes, for re-measuring on a quiet machine.

Results go to ``experiments/results/instay_serving.md``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from contract.fields import COST_CATEGORIES
from contract.instay import INSTAY_COLUMNS
from experiments.benchmarks.loadgen import HEADER, Load
from experiments.benchmarks.report import SHARED_CORES, load_average, machine_line, timed, write_results
from pipelines.demo import generate_demo

RESULTS = Path(__file__).resolve().parents[1] / "results" / "instay_serving.md"
KEY = "bench-key-clinician"
TARGET_P99_MS = 30.0  # the single-case endpoints' target (experiments.benchmarks.serving.TARGETS)
SEED = 42
PASS = "one stay's whole pass (`_predictions`: the scoring thread's work per request)"


def stay_body(hospital: Any, case_id: str, day: pd.Timestamp) -> dict[str, Any]:
    """The stay's latest record on or before ``day`` and its charges up to it, as JSON."""
    records = hospital.inpatients[
        (hospital.inpatients["case_id"] == case_id) & (hospital.inpatients["recorded_date"] <= day)
    ]
    record = records.sort_values("recorded_date").iloc[-1][list(INSTAY_COLUMNS)]
    charges = hospital.charges[
        (hospital.charges["case_id"] == case_id) & (hospital.charges["charge_date"] <= day)
    ]

    def plain(value: Any) -> Any:
        if isinstance(value, pd.Timestamp):
            return f"{value:%Y-%m-%d}"
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return value.item() if isinstance(value, np.generic) else value

    return {
        "record": {k: plain(v) for k, v in record.items() if plain(v) is not None},
        "charges": [
            {"charge_date": plain(row["charge_date"]), **{c: float(row[c]) for c in COST_CATEGORIES}}
            for _, row in charges.iterrows()
        ],
        "as_of_date": f"{day:%Y-%m-%d}",
    }


def stage_times(model: Any, state: Any, bodies: list[dict[str, Any]], repeats: int) -> dict[str, float]:
    """Median ms (wall, and the thread's CPU) of each step of one stay's answer, as the endpoint runs
    them (``serving.routers.instay``), without HTTP: where the time goes; and the whole pass the
    scoring thread runs for a one-stay request (:data:`PASS`)."""
    from features.instay import cut_columns
    from serving.explain import explanations
    from serving.routers.instay import InstayStay, _history, _predictions, stay_tables

    stays = [InstayStay.model_validate(b) for b in bodies]
    spent: dict[str, list[tuple[float, float]]] = {}

    def step(name: str, work: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        found = work(*args)
        spent.setdefault(name, []).append((time.perf_counter() - wall, time.thread_time() - cpu))
        return found

    for i in range(repeats + 10):  # the first 10 warm up
        if i == 10:
            spent.clear()
        records, charges, cuts = step("stay_tables", stay_tables, [stays[i % len(stays)]])
        frame = step("cut_columns", cut_columns, records, charges, cuts)
        history = step("history", _history, state, list(records["patient_id"]))
        cut = step("pregroup", model.features.pregroup, frame)
        X = step("features", model.features_of, cut, history)
        step("predict", model.outputs_of, X)
        step("shap", model.contributions, X)
        answer = step("explain_frame (features + predict + shap)", model.explain_frame, cut, history)
        step("wording", lambda a: explanations(a, names=model.names, language="zh", top=8), answer)
        step(PASS, _predictions, state, [stays[i % len(stays)]], [("zh", 8)])
    return {
        name: (statistics.median(w for w, _ in times) * 1000, statistics.median(c for _, c in times) * 1000)
        for name, times in spent.items()
    }


def http_paced(
    data_dir: Path, mlflow_uri: str, bodies: list[dict[str, Any]], workers: int, rate: float, seconds: float
) -> tuple[Load, float]:
    """One-stay requests at ``rate`` a second to ``caselens serve --workers N`` in its own process (the
    load of ``experiments.benchmarks.serving``); the load and the server's peak memory (MB)."""
    import json
    import sys

    from experiments.benchmarks.loadgen import encode_posts, paced, saturate
    from experiments.benchmarks.serving import Server
    from serving.security import hash_key

    env = {
        "CASELENS_DATA_DIR": str(data_dir),
        "CASELENS_SERVE_API_KEYS": json.dumps({"bench": {"sha256": hash_key(KEY), "role": "clinician"}}),
        "CASELENS_SERVE_TASKS": "instay",  # the one model registered here: ready once it is loaded
        "CASELENS_SERVE_HISTORY_LOOKUPS_PER_MINUTE": "1000000000",  # one key sends the whole load
        # this run's registry, whatever the calling process has set (MLflow exports the registry URI)
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "MLFLOW_REGISTRY_URI": mlflow_uri,
    }
    log = data_dir / f"serve-{workers}.log"
    service = Server(
        [sys.executable, "-m", "cli.app", "serve", "--port", "{port}", "--workers", str(workers)],
        env,
        "/readyz",
        log,
    )
    label = f"caselens, {workers} worker{'s' if workers > 1 else ''}"
    try:
        url = service.url + "/v1/predict/in-stay"
        requests = encode_posts(url, bodies, {"Authorization": f"Bearer {KEY}"})
        saturate("warm-up", url, requests, 2 * workers, min(seconds, 3.0))
        load = paced(f"{label}, paced {rate:.0f}/s", url, requests, rate, seconds)
    finally:
        service.stop()
    return load, service.peak_mb


def run(
    cases: int = typer.Option(4_000, "--cases", help="demo hospital size"),
    single: int = typer.Option(50, "--single", help="one-stay requests timed in process"),
    batch_stays: int = typer.Option(2_000, "--batch-stays", help="stays in the timed batch"),
    rate: float = typer.Option(50.0, help="requests per second of the paced one-stay load over HTTP"),
    seconds: float = typer.Option(20.0, help="length of each paced load"),
    workers: str = typer.Option("1,2", help="server worker counts (`caselens serve --workers`); '' for none"),
    output: Path = RESULTS,
) -> None:
    """Store, train, serve; time the endpoint over HTTP and in process, and the page; write the report."""
    import os

    from fastapi.testclient import TestClient

    from casemix.payment import PaymentRules
    from contract.settings import Settings, get_settings
    from models.config import load_config
    from models.tasks import get_task
    from models.watch_list import WarningPolicy
    from pipelines.instay import instay_data
    from pipelines.store import write_cases, write_table
    from pipelines.training.run import train
    from pipelines.watch import champion, watch_day, write_watch
    from serving.app import create_app
    from serving.config import ServingSettings
    from serving.security import add_key

    hospital, generate_s = timed(lambda: generate_demo(cases, 3, SEED))
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        os.environ["CASELENS_DATA_DIR"] = str(data_dir)
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):  # this run's store and registry
            os.environ.pop(name, None)
        get_settings.cache_clear()
        settings = Settings(data_dir=data_dir)
        write_cases(hospital.cases)
        write_table("charges", hospital.charges)
        write_table("inpatients", hospital.inpatients)
        task = get_task("instay")
        config = load_config()
        config["split"]["min_rows"] = 50
        data = instay_data(task, hospital.cases, hospital.inpatients, hospital.charges, settings)
        _, train_s = timed(lambda: train(task, data, config, settings))
        day = hospital.cases["discharge_date"].max()
        policy = WarningPolicy.from_rules(PaymentRules.load(settings.payment_config))
        watched, watch_s = timed(lambda: watch_day(champion(settings.mlflow_uri), day, None, policy))
        write_watch(watched, day, None, data_dir / "reports")
        bodies = [stay_body(hospital, c, day) for c in watched["case_id"]]

        counts = [int(n) for n in workers.split(",") if n.strip()]
        served = [http_paced(data_dir, settings.mlflow_uri, bodies, n, rate, seconds) for n in counts]

        keys = data_dir / "keys.json"
        key = add_key(keys, "bench", "clinician")
        serving = ServingSettings(
            api_keys=str(keys), max_batch=batch_stays, max_body_mb=64, history_lookups_per_minute=10**9
        )
        head = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(settings, serving)) as client:
            first, cold_s = timed(lambda: client.post("/v1/predict/in-stay", json=bodies[0], headers=head))
            assert first.status_code == 200, first.text
            one = []
            for i in range(single):
                started = time.perf_counter()
                answer = client.post("/v1/predict/in-stay", json=bodies[i % len(bodies)], headers=head)
                one.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
            many = [
                {**b, "record": {**b["record"], "case_id": f"{b['record']['case_id']}-{i}"}}
                for i, b in enumerate(bodies * (batch_stays // len(bodies) + 1))
            ][:batch_stays]
            batch = []
            for _ in range(3):
                answer, seconds_taken = timed(
                    lambda: client.post("/v1/predict/in-stay/batch", json={"stays": many}, headers=head)
                )
                assert answer.status_code == 200, answer.text[:500]
                batch.append(seconds_taken)
            page = []
            for _ in range(5):
                answer, seconds_taken = timed(lambda: client.get("/watch", headers=head))
                assert answer.status_code == 200
                page.append(seconds_taken * 1000)
            service = client.app.state.service
            model = service.registry.models["instay"].model
            steps = stage_times(model, service, bodies, repeats=200)
        get_settings.cache_clear()

    ordered = sorted(one)
    http_rows = [load.row() for load, _ in served]
    target = [
        f"| {n} worker{'s' if n > 1 else ''} | one-stay p99 at {rate:.0f} req/s ≤ {TARGET_P99_MS:.0f} ms | "
        f"{load.percentiles()[1]:.1f} ms | {'yes' if load.percentiles()[1] <= TARGET_P99_MS else 'no'} |"
        for n, (load, _) in zip(counts, served, strict=True)
    ]
    lines = [
        "# Benchmark: in-stay endpoint and ward watch-list page",
        "",
        f"Command: `nice -n 10 .venv/bin/python -m experiments.benchmarks.instay_serving --cases {cases} "
        f"--rate {rate:.0f} --seconds {seconds:.0f} --workers {workers}`",
        "",
        f"Demo hospital: {cases:,} stays over 3 years, seed {SEED} ({generate_s:.1f} s); `instay` trained",
        f"with models/train.toml in {train_s:.0f} s. {len(watched):,} stays in hospital at the end of",
        f"{day:%Y-%m-%d} (`caselens watch` scoring from the store: {watch_s:.2f} s with the model load).",
        "A request is one of those stays: its in-stay record and daily charges to date, cut at the day,",
        "pre-grouped, scored (final cost with its interval, overrun probability) and explained (top 8",
        "SHAP contributions, reasons in Chinese), its patient's history looked up in the case store.",
        "",
        "## Over HTTP (as `experiments.benchmarks.serving` measures the other single-case endpoints)",
        "",
        "`caselens serve` in its own process on loopback; one-stay requests sent at a fixed rate by the",
        "lean load generator (`experiments/benchmarks/loadgen.py`), latency counted from when each request",
        "was due, after a 3 s warm-up. The load generator shares the 2 cores with the server.",
        "",
        "| server | target | measured | met |",
        "|---|---|---|---|",
        *target,
        "",
        HEADER,
        *http_rows,
        "",
        "Peak memory (RSS of the server process tree): "
        + (", ".join(f"{n} worker(s) {mb:.0f} MB" for n, (_, mb) in zip(counts, served, strict=True)) or "—")
        + ".",
        "",
        "## In process (FastAPI TestClient: JSON and validation included, no network)",
        "",
        "| request | median | p95 | runs |",
        "|---|---:|---:|---:|",
        f"| `POST /v1/predict/in-stay`, one stay (record + charges to date, explained) | "
        f"{statistics.median(one):.0f} ms | {ordered[int(0.95 * (len(ordered) - 1))]:.0f} ms | {single} |",
        f"| `POST /v1/predict/in-stay/batch`, {batch_stays:,} stays "
        "(those in hospital, repeated under new ids) | "
        f"{statistics.median(batch):.2f} s | — | 3 |",
        f"| `GET /watch` ({len(watched):,} stays, rendered) | {statistics.median(page):.0f} ms | — | 5 |",
        "",
        f"First request: {cold_s * 1000:.0f} ms (the champion, its pre-grouper and the service's casemix",
        "engine are built at start-up and reload; what is left is first use of per-process caches).",
        "",
        "## One stay, stage by stage (in process, median of 200)",
        "",
        "Wall time and the thread's CPU time; on a busy machine the CPU column is the steadier one.",
        "`explain_frame` is features + predict + SHAP again, as the endpoint runs them (one pass); the",
        "last row is the whole of a one-stay request's work in the scoring thread (all the stages once).",
        "",
        "| stage | wall ms | CPU ms |",
        "|---|---:|---:|",
        *(f"| {name} | {wall:.2f} | {cpu:.2f} |" for name, (wall, cpu) in steps.items()),
        "",
        machine_line(f", load average {load_average():.1f} at the end. {SHARED_CORES} wall"),
        "times are upper bounds.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
