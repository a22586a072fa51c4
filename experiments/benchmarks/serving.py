"""Benchmark: the prediction service against `mlflow models serve`, on this machine, over loopback only.

    .venv/bin/python -m experiments.benchmarks.serving --cases 20000

1. A demo hospital of N cases goes into a case store; a cost model (CaseFeatures + the cost task's
   CostModel) is fitted on it and registered as ``caselens-cost@champion`` in a private MLflow store.
2. SHAP: LightGBM's native ``pred_contrib`` against shap's TreeExplainer on the same rows (one case
   and a 10,000-case batch): time and largest difference.
3. ``caselens serve`` runs as its own process; single-case predict + explain requests are sent at a
   fixed rate (latency p50/p99), then by a few closed-loop clients for a fixed time (throughput);
   one 10,000-case batch with explanations is timed.
4. The same registered model under ``mlflow models serve --env-manager local`` gets the same
   single-case load (prediction only: it has no explanations and no case store for history).

Every request goes to 127.0.0.1; every load loop is bounded by a request count and a time limit.
Results go to ``experiments/results/serving.md``.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import psutil
import shap
import typer

from experiments.benchmarks.report import peak_memory_mb, write_results
from features.pipeline import CaseFeatures
from models.config import load_config
from models.pyfunc import CaseModel
from models.tasks.cost import CostModel
from pipelines.contract import fields_known_at
from pipelines.demo.generate import generate_demo
from pipelines.settings import Settings
from pipelines.store import write_cases
from serving.security import hash_key

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results" / "serving.md"
WORKDIR = ROOT / "experiments" / "results" / "tmp" / "serving"
KEY = "bench-key-finance"
TARGETS = {"p99_ms": 30.0, "throughput_rps": 300.0, "batch_s": 2.0}


@dataclass
class Load:
    """Latencies (ms) of the successful requests, the error count and the wall time of one load run."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def row(self) -> str:
        n = len(self.latencies)
        p50, p99 = np.percentile(self.latencies, [50, 99]) if n else (float("nan"), float("nan"))
        rps = n / self.seconds if self.seconds else float("nan")
        codes = ", ".join(f"{k}×{v}" for k, v in sorted(self.statuses.items()))
        return f"| {self.name} | {n} | {self.errors} | {p50:.1f} | {p99:.1f} | {rps:.0f} | {codes} |"


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


def train_and_register(cases: pd.DataFrame, settings: Settings, uri: str, trees: int | None = None) -> str:
    admission = cases[list(fields_known_at("admission"))]
    features = CaseFeatures("admission").fit(admission, history=cases)
    X = features.transform(admission, history=cases)
    order = np.argsort(cases["discharge_date"].to_numpy(), kind="stable")
    train, validation = order[: len(order) * 3 // 4], order[len(order) * 3 // 4 :]
    labels = cases[["total_cost"]].rename(columns={"total_cost": "cost"})
    params = {**load_config()["tasks"]["cost"]["lightgbm"], "verbose": -1}
    if trees is not None:
        params["n_estimators"] = trees
    estimator = CostModel(params).fit(
        X.iloc[train], labels.iloc[train], X.iloc[validation], labels.iloc[validation]
    )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment(
        "serving-benchmark", artifact_location=(settings.mlflow_artifacts / "bench").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=CaseModel(features, estimator),
            registered_model_name="caselens-cost",
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_registered_model_alias("caselens-cost", "champion", version)
    return version


def compare_explainers(cases: pd.DataFrame, settings: Settings, batch: int) -> list[str]:
    """Native pred_contrib vs shap TreeExplainer: same numbers? which is faster?"""
    python_model = mlflow.pyfunc.load_model("models:/caselens-cost@champion").unwrap_python_model()
    admission = cases[list(fields_known_at("admission"))]
    X = python_model.features.transform(admission.iloc[:batch], history=cases)
    tree = python_model.estimator.explained
    booster = tree.booster_
    explainer = shap.TreeExplainer(tree)
    rows = []
    for label, frame, repeats in (("1 case", X.iloc[[0]], 200), (f"{len(X):,} cases", X, 3)):
        native = booster.predict(frame, pred_contrib=True, num_threads=1)
        values = explainer.shap_values(frame)
        diff = float(np.abs(native[:, :-1] - values).max())
        base_diff = abs(float(native[0, -1]) - float(np.ravel(explainer.expected_value)[0]))
        timings = {}
        for name, call in (
            ("native", lambda f=frame: booster.predict(f, pred_contrib=True, num_threads=1)),
            ("shap", lambda f=frame: explainer.shap_values(f)),
        ):
            spent = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                spent.append(time.perf_counter() - start)
            timings[name] = float(np.median(spent)) * 1000
        rows.append(
            f"| {label} | {timings['native']:.2f} | {timings['shap']:.2f} | {diff:.2e} | {base_diff:.2e} |"
        )
    return rows


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


def paced(
    name: str, url: str, bodies: list[Any], headers: dict[str, str], rate: float, seconds: float
) -> Load:
    """Open loop: request i is sent at start + i / rate, whatever the answers before it did."""
    load, lock = Load(name), threading.Lock()
    total = int(rate * seconds)
    clients = threading.local()

    def send(i: int, at: float) -> None:
        time.sleep(max(0.0, at - time.perf_counter()))
        client = getattr(clients, "client", None) or httpx.Client(timeout=30)
        clients.client = client
        sent = time.perf_counter()
        try:
            status = client.post(url, json=bodies[i % len(bodies)], headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        elapsed = (time.perf_counter() - sent) * 1000
        with lock:
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status == 200:
                load.latencies.append(elapsed)
            else:
                load.errors += 1

    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=16) as pool:
        for i in range(total):
            pool.submit(send, i, start + i / rate)
    load.seconds = time.perf_counter() - start
    return load


def saturate(
    name: str,
    url: str,
    bodies: list[Any],
    headers: dict[str, str],
    clients: int,
    seconds: float,
    max_requests: int = 100_000,
) -> Load:
    """Closed loop: ``clients`` connections send back to back until the time or the request cap is up."""
    load, lock = Load(name), threading.Lock()
    stop = time.perf_counter() + seconds
    counter = iter(range(max_requests))

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < stop and (i := next(counter, None)) is not None:
                sent = time.perf_counter()
                try:
                    status = client.post(url, json=bodies[i % len(bodies)], headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    load.statuses[status] = load.statuses.get(status, 0) + 1
                    if status == 200:
                        load.latencies.append((time.perf_counter() - sent) * 1000)
                    else:
                        load.errors += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - start
    return load


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
        except RuntimeError:
            self.process.kill()  # never leave a server behind
            self.log.close()
            raise
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
    trees: int = typer.Option(300, help="trees of each cost sub-model (train.toml's cost model has 300)"),
    rate: float = typer.Option(50.0, help="requests per second of the paced single-case load"),
    seconds: float = typer.Option(20.0, help="length of each load run"),
    clients: str = typer.Option("4,8", help="closed-loop client counts for the throughput runs"),
    batch: int = typer.Option(10_000, help="cases in the batch request"),
    mlflow_serve: bool = typer.Option(True, help="also measure `mlflow models serve`"),
    output: Path = typer.Option(RESULTS, help="markdown results file"),
    workdir: Path = typer.Option(WORKDIR, help="scratch folder: data_dir of the served store"),
) -> None:
    """Measure single-case latency and throughput, a batch, and the explainer choice; write a report."""
    started = datetime.now(UTC)
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / f"data-{os.getpid()}"
    settings = Settings(data_dir=data_dir)
    uri = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"  # this run's store, whatever the environment says
    hospital = generate_demo(cases, 3, seed=0).cases
    write_cases(hospital, settings.store_dir)
    clock = time.perf_counter()
    version = train_and_register(hospital, settings, uri, trees)
    fit_seconds = time.perf_counter() - clock
    batch = min(batch, len(hospital))
    explainer_rows = compare_explainers(hospital, settings, batch)
    for row in explainer_rows:
        print(row)

    latest = hospital.sort_values("admission_date").tail(max(batch, 500))
    records = case_bodies(latest)
    singles = [{"case": clean(r)} for r in records[-500:]]
    batch_body = {"cases": [clean(r) for r in records[-batch:]]}
    env = {
        "CASELENS_DATA_DIR": str(data_dir),
        "CASELENS_SERVE_API_KEYS": json.dumps({"bench": {"sha256": hash_key(KEY), "role": "finance"}}),
        "CASELENS_SERVE_MAX_BATCH": str(max(batch, 10_000)),
        "CASELENS_SERVE_MAX_BODY_MB": "256",
        "MLFLOW_TRACKING_URI": uri,
        # `mlflow models serve` starts the uvicorn of the PATH: the venv's.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    counts = [int(c) for c in clients.split(",") if c]
    loads: list[Load] = []
    service = Server(
        [sys.executable, "-m", "pipelines.cli", "serve", "--port", "{port}"],
        env,
        "/readyz",
        workdir / "caselens-serve.log",
    )
    try:
        url = service.url + "/v1/predict/cost"
        saturate("warm-up", url, singles, headers, 2, min(seconds, 3.0))
        loads.append(paced(f"caselens, paced {rate:.0f}/s", url, singles, headers, rate, seconds))
        loads += [saturate(f"caselens, {n} clients", url, singles, headers, n, seconds) for n in counts]
        batch_times, batch_status = [], None
        with httpx.Client(timeout=300) as client:
            for _ in range(3):
                sent = time.perf_counter()
                answer = client.post(url + "/batch", json=batch_body, headers=headers)
                batch_times.append(time.perf_counter() - sent)
                batch_status = answer.status_code
        metrics = httpx.get(service.url + "/metrics").text
    finally:
        service.stop()
    caselens_peak = service.peak_mb

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
            bodies = [{"dataframe_records": [b["case"]]} for b in singles]
            saturate("warm-up", url, bodies, {}, 2, min(seconds, 3.0))
            loads.append(paced(f"mlflow serve, paced {rate:.0f}/s", url, bodies, {}, rate, seconds))
            loads += [saturate(f"mlflow serve, {n} clients", url, bodies, {}, n, seconds) for n in counts]
            mlflow_note = "measured"
        finally:
            other.stop()
        mlflow_peak = other.peak_mb

    report = render(
        started=started,
        cases=cases,
        trees=trees,
        fit_seconds=fit_seconds,
        explainer_rows=explainer_rows,
        loads=loads,
        batch=batch,
        batch_times=batch_times,
        batch_status=batch_status,
        caselens_peak=caselens_peak,
        mlflow_peak=mlflow_peak,
        mlflow_note=mlflow_note,
        rate=rate,
        seconds=seconds,
        metrics=metrics,
    )
    write_results([report], output)


def explainer_verdict(rows: list[str]) -> str:
    """Which explainer was faster at each size, from the table rows just measured."""
    verdicts = []
    for row in rows:
        label, native, other = (cell.strip() for cell in row.strip("|").split("|")[:3])
        faster = "native pred_contrib" if float(native) <= float(other) else "shap TreeExplainer"
        verdicts.append(f"{label}: {faster} ({native} vs {other} ms)")
    return (
        "Both give the same TreeSHAP values (differences at float rounding). Faster here — "
        + "; ".join(verdicts)
        + ". The service uses the native contributions: single-case requests are its main load, and "
        "they need no second copy of the trees."
    )


def render(**r: Any) -> str:
    loads: list[Load] = r["loads"]
    paced_caselens = next(load for load in loads if load.name.startswith("caselens, paced"))
    p99 = float(np.percentile(paced_caselens.latencies, 99)) if paced_caselens.latencies else float("nan")
    best = max(
        (len(x.latencies) / x.seconds for x in loads if x.name.startswith("caselens,") and x.seconds),
        default=float("nan"),
    )
    batch_s = float(np.median(r["batch_times"]))
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Serving benchmark",
        "",
        "Command: `.venv/bin/python -m experiments.benchmarks.serving "
        f"--cases {r['cases']} --trees {r['trees']} --rate {r['rate']:.0f} --seconds {r['seconds']:.0f}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, `nproc` = {os.cpu_count()}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}; "
        f"{r['started']:%Y-%m-%d %H:%M} UTC. The 2 cores are shared with other engineers' jobs "
        f"(load average at the end: {load_avg}), and the load generator runs on the same 2 cores as "
        "the server, so every figure is pessimistic and noisy.",
        "",
        f"Model: `caselens-cost` (CaseFeatures admission stage + CostModel: point, lower and upper LightGBM "
        f"models of {r['trees']} trees each, conformal interval), fitted on {r['cases']:,} demo cases "
        f"in {r['fit_seconds']:.0f} s. Every caselens request scores one case with its history looked up "
        "in the case store, and explains it (top 8 SHAP contributions, reasons in Chinese).",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| single-case p99 at {r['rate']:.0f} req/s ≤ {TARGETS['p99_ms']:.0f} ms | {p99:.1f} ms | "
        f"{'yes' if p99 <= TARGETS['p99_ms'] else 'no'} |",
        f"| throughput ≥ {TARGETS['throughput_rps']:.0f} req/s | {best:.0f} req/s | "
        f"{'yes' if best >= TARGETS['throughput_rps'] else 'no'} |",
        f"| batch of {r['batch']:,} with explanations ≤ {TARGETS['batch_s']:.0f} s | {batch_s:.2f} s "
        f"(HTTP {r['batch_status']}) | {'yes' if batch_s <= TARGETS['batch_s'] else 'no'} |",
        "",
        "## Single-case load (latency in ms, client side)",
        "",
        "| run | ok | errors | p50 | p99 | req/s | statuses |",
        "|---|---|---|---|---|---|---|",
        *(load.row() for load in loads),
        "",
        f"Peak memory (RSS of the server process tree): caselens {r['caselens_peak']:.0f} MB"
        + (f", mlflow models serve {r['mlflow_peak']:.0f} MB" if r["mlflow_peak"] else "")
        + f"; benchmark process {peak_memory_mb():.0f} MB. "
        f"`mlflow models serve`: {r['mlflow_note']}; it answers predictions only (no explanation, no "
        "history lookup, no auth), so it does less work per request.",
        "",
        f"Batch of {r['batch']:,}: " + ", ".join(f"{t:.2f} s" for t in r["batch_times"]) + " (three runs).",
        "",
        "## Explainer: LightGBM `pred_contrib` vs shap `TreeExplainer` (ms, median)",
        "",
        "| rows | native pred_contrib | shap TreeExplainer | max abs difference | base value difference |",
        "|---|---|---|---|---|",
        *r["explainer_rows"],
        "",
        explainer_verdict(r["explainer_rows"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    typer.run(run)
