"""Benchmark: the in-stay endpoint and the ward page over HTTP (``POST /v1/predict/in-stay``, ``/watch``).

    .venv/bin/python -m experiments.benchmarks.instay_serving --cases 4000

Generates the demo hospital (3 years, seed 42), stores it, trains ``instay`` with the project's config
into a temporary MLflow store, then times, through the FastAPI app in-process (no network): one stay
per request (the record and its charges to date, cut, pre-grouped, scored and explained), a batch of
every stay in hospital on the demo's last day (repeated to ``--batch-stays``), and the watch-list page
of that day. Results go to ``experiments/results/instay_serving.md``.
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
from experiments.benchmarks.report import SHARED_CORES, load_average, machine_line, timed, write_results
from pipelines.demo import generate_demo

RESULTS = Path(__file__).resolve().parents[1] / "results" / "instay_serving.md"
SEED = 42


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


def run(
    cases: int = typer.Option(4_000, "--cases", help="demo hospital size"),
    single: int = typer.Option(50, "--single", help="one-stay requests timed"),
    batch_stays: int = typer.Option(2_000, "--batch-stays", help="stays in the timed batch"),
    output: Path = RESULTS,
) -> None:
    """Store, train, serve in-process; time the endpoint and the page; write the markdown report."""
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
        os.environ.pop("MLFLOW_TRACKING_URI", None)
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
        keys = data_dir / "keys.json"
        key = add_key(keys, "bench", "clinician")
        serving = ServingSettings(api_keys=str(keys), max_batch=batch_stays, max_body_mb=64)
        head = {"Authorization": f"Bearer {key}"}
        bodies = [stay_body(hospital, c, day) for c in watched["case_id"]]
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
                answer, seconds = timed(
                    lambda: client.post("/v1/predict/in-stay/batch", json={"stays": many}, headers=head)
                )
                assert answer.status_code == 200, answer.text[:500]
                batch.append(seconds)
            page = []
            for _ in range(5):
                answer, seconds = timed(lambda: client.get("/watch", headers=head))
                assert answer.status_code == 200
                page.append(seconds * 1000)
        get_settings.cache_clear()

    ordered = sorted(one)
    lines = [
        "# Benchmark: in-stay endpoint and ward watch-list page",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.instay_serving --cases {cases}`",
        "",
        f"Demo hospital: {cases:,} stays over 3 years, seed {SEED} ({generate_s:.1f} s); `instay` trained",
        f"with models/train.toml in {train_s:.0f} s. {len(watched):,} stays in hospital at the end of",
        f"{day:%Y-%m-%d} (`caselens watch` scoring from the store: {watch_s:.2f} s with the model load).",
        "In-process FastAPI TestClient (JSON encoding and validation included, no network).",
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
        f"First request (loads the champion from the registry): {cold_s:.1f} s.",
        "",
        machine_line(f", load average {load_average():.1f} at the end. {SHARED_CORES} wall"),
        "times are upper bounds.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
