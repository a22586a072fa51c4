"""Benchmark: the prediction service against `mlflow models serve`, on this machine, over loopback only.

    .venv/bin/python -m experiments.benchmarks.serving --cases 20000

1. A demo hospital of N cases goes into a case store; a cost model (CaseFeatures + the cost task's
   CostModel) is fitted on it and registered as ``caselens-cost@champion`` in a private MLflow store.
2. ``caselens serve`` runs as its own process (with each ``--workers`` count); single-case predict +
   explain requests are sent at a fixed rate (latency p50/p99, counted from when each request was
   due), then by closed-loop clients for a fixed time (throughput); a 10,000-case batch with
   explanations is timed three times. The load comes from ``loadgen``, a lean asyncio client whose
   CPU per request is reported beside the figures (it shares the 2 cores with the server).
3. The same registered model under ``mlflow models serve --env-manager local`` gets the same
   single-case load (prediction only: it has no explanations and no case store for history).

Every request goes to 127.0.0.1; every load loop is bounded by a time limit.
Results go to ``experiments/results/serving.md``. Which explainer the service uses (LightGBM's native
contributions or shap's TreeExplainer) is measured apart, by :mod:`experiments.benchmarks.explainers`.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import psutil
import typer

from contract.fields import canonical_records, fields_known_at
from contract.settings import Settings
from experiments.benchmarks.cost_model import fit_cost_model
from experiments.benchmarks.loadgen import HEADER, Load, encode_posts, paced, saturate
from experiments.benchmarks.report import peak_memory_mb, write_results
from features.history import StayIndex
from models.pyfunc import CaseModel, servable
from models.tasks import get_task
from models.tracking import CHAMPION
from pipelines.demo.generate import generate_demo
from pipelines.store import write_cases
from serving.predictions import predict_explained
from serving.registry import ServedModel
from serving.schemas import CASE_MODELS
from serving.security import hash_key
from serving.tasks import SERVED_TASKS

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results" / "serving.md"
WORKDIR = ROOT / "experiments" / "results" / "tmp" / "serving"
KEY = "bench-key-finance"
TARGETS = {"p99_ms": 30.0, "throughput_rps": 300.0, "batch_s": 2.0}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def case_bodies(cases: pd.DataFrame) -> list[dict[str, Any]]:
    """Admission-stage JSON records (what a pre-admission request carries)."""
    frame = cases[list(fields_known_at("admission"))]
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:10] if k.endswith("_date") and v else v) for k, v in record.items() if v is not None}


def train_and_register(
    cases: pd.DataFrame, settings: Settings, uri: str, trees: int | None = None
) -> tuple[str, dict[str, Any]]:
    features, estimator, params = fit_cost_model(cases, trees)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment(
        "serving-benchmark", artifact_location=(settings.mlflow_artifacts / "bench").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CaseModel(features, estimator, get_task("cost").output),
            registered_model_name="caselens-cost",
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias("caselens-cost", CHAMPION, version)
    return version, params


def in_process(cases: pd.DataFrame, store: pd.DataFrame, repeats: int = 300) -> dict[str, float]:
    """Median ms of one case's steps inside the service's code, without HTTP (where the time goes)."""
    python_model = mlflow.pyfunc.load_model(f"models:/caselens-cost@{CHAMPION}").unwrap_python_model()
    model = ServedModel(SERVED_TASKS["cost"], "bench", servable(python_model, "bench"))
    stays = StayIndex(store)
    frames = [cases.iloc[[i % len(cases)]].reset_index(drop=True) for i in range(repeats)]
    spent: dict[str, list[float]] = {"features": [], "predict": [], "explain": [], "whole": []}
    for frame in frames:
        start = time.perf_counter()
        X = model.model.features_of(frame, stays)
        features = time.perf_counter()
        model.model.estimator.predict(X)
        predicted = time.perf_counter()
        model.model.contributions(X)
        explained = time.perf_counter()
        predict_explained(model, frame, history=stays)
        whole = time.perf_counter() - explained
        for name, value in zip(
            spent, (features - start, predicted - features, explained - predicted, whole), strict=True
        ):
            spent[name].append(value * 1000)
    return {name: float(np.median(values)) for name, values in spent.items()}


def wait_until(url: str, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


class Server:
    """A server process on a free loopback port, its peak memory sampled while it runs."""

    def __init__(self, command: list[str], env: dict[str, str], ready_path: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        command = [part.replace("{port}", str(self.port)) for part in command]
        self.process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.peak_mb = 0.0
        try:
            wait_until(self.url + ready_path, 300, self.process)
        except RuntimeError as error:
            self.process.kill()  # never leave a server behind
            self.log.close()
            tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
            raise RuntimeError(f"{error}; the server's log ends:\n{tail}") from None
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self._sampling:
            try:
                tree = [
                    psutil.Process(self.process.pid),
                    *psutil.Process(self.process.pid).children(recursive=True),
                ]
                self.peak_mb = max(self.peak_mb, sum(p.memory_info().rss for p in tree) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self) -> None:
        self._sampling = False
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def run(
    cases: int = typer.Option(20_000, help="demo cases: the store, the training data and the request pool"),
    trees: int = typer.Option(None, help="trees of each cost sub-model (default: train.toml's)"),
    rate: float = typer.Option(50.0, help="requests per second of the paced single-case load"),
    seconds: float = typer.Option(20.0, help="length of each load run"),
    clients: str = typer.Option("16,64", help="closed-loop client counts for the throughput runs"),
    workers: str = typer.Option("1,2", help="server worker counts to measure (`caselens serve --workers`)"),
    batch: int = typer.Option(10_000, help="cases in the batch request"),
    mlflow_serve: bool = typer.Option(True, help="also measure `mlflow models serve`"),
    output: Path = typer.Option(RESULTS, help="markdown results file"),
    workdir: Path = typer.Option(WORKDIR, help="scratch folder: data_dir of the served store"),
) -> None:
    """Measure single-case latency and throughput and a batch, beside `mlflow models serve`; report."""
    started = datetime.now(UTC)
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / f"data-{os.getpid()}"
    settings = Settings(data_dir=data_dir)
    uri = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"  # this run's store, whatever the environment says
    hospital = generate_demo(cases, 3, seed=0).cases
    write_cases(hospital, settings.store_dir)
    clock = time.perf_counter()
    version, params = train_and_register(hospital, settings, uri, trees)
    fit_seconds = time.perf_counter() - clock
    batch = min(batch, len(hospital))

    latest = hospital.sort_values("admission_date").tail(max(batch, 500))
    records = case_bodies(latest)
    singles = [{"case": clean(r)} for r in records[-500:]]
    requests = canonical_records(
        [CASE_MODELS["admission"].model_validate(s["case"]).model_dump() for s in singles]
    )
    steps = in_process(requests, hospital)
    print("in process (ms):", steps)
    batch_body = json.dumps({"cases": [clean(r) for r in records[-batch:]]}).encode()
    env = {
        "CASELENS_DATA_DIR": str(data_dir),
        "CASELENS_SERVE_API_KEYS": json.dumps({"bench": {"sha256": hash_key(KEY), "role": "finance"}}),
        "CASELENS_SERVE_MAX_BATCH": str(max(batch, 10_000)),
        "CASELENS_SERVE_MAX_BODY_MB": "256",
        "CASELENS_SERVE_TASKS": "cost",  # the one model registered here: ready once it is loaded
        "CASELENS_SERVE_HISTORY_LOOKUPS_PER_MINUTE": "1000000000",  # one key sends the whole load
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_REGISTRY_URI": uri,  # this run's registry, whatever the calling process exported
        # `mlflow models serve` starts the uvicorn of the PATH: the venv's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    counts = [int(c) for c in clients.split(",") if c]
    loads: list[Load] = []
    servers: list[dict[str, Any]] = []
    for n in (int(w) for w in workers.split(",") if w):
        service = Server(
            [sys.executable, "-m", "cli.app", "serve", "--port", "{port}", "--workers", str(n)],
            env,
            "/readyz",
            workdir / f"caselens-serve-{n}.log",
        )
        label = f"caselens, {n} worker{'s' if n > 1 else ''}"
        try:
            url = service.url + "/v1/predict/cost"
            requests = encode_posts(url, singles, {"Authorization": f"Bearer {KEY}"})
            saturate("warm-up", url, requests, 4 * n, min(seconds, 3.0))
            run_loads = [paced(f"{label}, paced {rate:.0f}/s", url, requests, rate, seconds)]
            run_loads += [saturate(f"{label}, {c} clients", url, requests, c, seconds) for c in counts]
            batch_times, batch_status = [], None
            with httpx.Client(timeout=300) as client:
                for _ in range(3):
                    sent = time.perf_counter()
                    answer = client.post(url + "/batch", content=batch_body, headers=headers)
                    batch_times.append(time.perf_counter() - sent)
                    batch_status = answer.status_code
        finally:
            service.stop()
        loads += run_loads
        servers.append(
            {
                "workers": n,
                "loads": run_loads,
                "batch_times": batch_times,
                "batch_status": batch_status,
                "peak_mb": service.peak_mb,
            }
        )

    mlflow_peak, mlflow_note = None, "not run (--no-mlflow-serve)"
    if mlflow_serve:
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        other = Server(
            [
                mlflow_bin,
                "models",
                "serve",
                "-m",
                f"models:/caselens-cost/{version}",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                "{port}",
            ],
            env,
            "/ping",
            workdir / "mlflow-serve.log",
        )
        try:
            url = other.url + "/invocations"
            requests = encode_posts(url, [{"dataframe_records": [b["case"]]} for b in singles], {})
            saturate("warm-up", url, requests, 2, min(seconds, 3.0))
            loads.append(paced(f"mlflow serve, paced {rate:.0f}/s", url, requests, rate, seconds))
            loads += [saturate(f"mlflow serve, {c} clients", url, requests, c, seconds) for c in counts]
            mlflow_note = "measured"
        finally:
            other.stop()
        mlflow_peak = other.peak_mb

    report = render(
        started=started,
        cases=cases,
        params=params,
        fit_seconds=fit_seconds,
        steps=steps,
        loads=loads,
        servers=servers,
        batch=batch,
        mlflow_peak=mlflow_peak,
        mlflow_note=mlflow_note,
        rate=rate,
        seconds=seconds,
        command=" ".join(sys.argv[1:]) if sys.argv[0].endswith("serving.py") else None,
    )
    write_results([report], output)


def _target(loads: list[Load], prefix: str) -> tuple[float, float]:
    paced_load = next(x for x in loads if x.name.startswith(prefix) and "paced" in x.name)
    best = max(
        (x.rate for x in loads if x.name.startswith(prefix) and "clients" in x.name), default=float("nan")
    )
    return paced_load.percentiles()[1], best


def render(**r: Any) -> str:
    params = r["params"]
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    command = r["command"] or (f"--cases {r['cases']} --rate {r['rate']:.0f} --seconds {r['seconds']:.0f}")
    target_rows = []
    for server in r["servers"]:
        n = server["workers"]
        p99, best = _target(server["loads"], f"caselens, {n} worker")
        batch_s = float(np.median(server["batch_times"]))
        label = f"{n} worker{'s' if n > 1 else ''}"
        target_rows += [
            f"| {label} | single-case p99 at {r['rate']:.0f} req/s ≤ {TARGETS['p99_ms']:.0f} ms "
            f"| {p99:.1f} ms | {'yes' if p99 <= TARGETS['p99_ms'] else 'no'} |",
            f"| {label} | throughput ≥ {TARGETS['throughput_rps']:.0f} req/s | {best:.0f} req/s | "
            f"{'yes' if best >= TARGETS['throughput_rps'] else 'no'} |",
            f"| {label} | batch of {r['batch']:,} with explanations ≤ {TARGETS['batch_s']:.0f} s | "
            f"{batch_s:.2f} s (HTTP {server['batch_status']}) "
            f"| {'yes' if batch_s <= TARGETS['batch_s'] else 'no'} |",
        ]
    steps = r["steps"]
    lines = [
        "# Serving benchmark",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.serving {command}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, `nproc` = {os.cpu_count()}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}; "
        f"{r['started']:%Y-%m-%d %H:%M} UTC. The 2 cores are shared with other engineers' jobs "
        f"(load average at the end: {load_avg}), and the load generator runs on the same 2 cores as "
        "the server, so every figure is pessimistic and noisy.",
        "",
        f"Model: `caselens-cost` (CaseFeatures admission stage + CostModel: point, lower and upper LightGBM "
        f"models of {params['n_estimators']} trees, {params['num_leaves']} leaves, depth "
        f"{params.get('max_depth', 'unlimited')}, conformal interval), fitted on {r['cases']:,} demo cases "
        f"in {r['fit_seconds']:.0f} s. Every caselens request scores one case with its history looked up "
        "in the case store, and explains it (top 8 SHAP contributions, reasons in Chinese).",
        "",
        "## Targets",
        "",
        "| server | target | measured | met |",
        "|---|---|---|---|",
        *target_rows,
        "",
        "## Single-case load (latency in ms, client side, from when each request was due)",
        "",
        HEADER,
        *(load.row() for load in r["loads"]),
        "",
        "Peak memory (RSS of the server process tree): "
        + ", ".join(f"caselens with {s['workers']} worker(s) {s['peak_mb']:.0f} MB" for s in r["servers"])
        + (f", mlflow models serve {r['mlflow_peak']:.0f} MB" if r["mlflow_peak"] else "")
        + f"; benchmark process {peak_memory_mb():.0f} MB. "
        f"`mlflow models serve`: {r['mlflow_note']}; it answers predictions only (no explanation, no "
        "history lookup, no auth), so it does less work per request.",
        "",
        *(
            f"Batch of {r['batch']:,}, {s['workers']} worker(s): "
            + ", ".join(f"{t:.2f} s" for t in s["batch_times"])
            + " (three runs, whole HTTP round trip)."
            for s in r["servers"]
        ),
        "",
        "One case inside the service's code, no HTTP (median ms): features "
        f"{steps['features']:.2f}, three LightGBM predictions {steps['predict']:.2f}, SHAP "
        f"{steps['explain']:.2f}; features + predictions + SHAP + the worded answer {steps['whole']:.2f}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    typer.run(run)
