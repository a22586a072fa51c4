"""Benchmark: in-stay early warning on the demo hospital, replayed day by day against the 90% rule.

    .venv/bin/python -m experiments.benchmarks.instay --cases 20000

Generates the demo hospital (3 years, seed 42) with its daily charges and in-stay records, trains
``instay`` through the framework (stays cut at a sampled day; time split by discharge quarter, the last
quarter tests) into a temporary MLflow store, then replays every day of the test quarter: the watch list
as it would have been at the end of each day, judged against how each stay ended (final cost above its
final DRG payment). The rule hospitals use today warns when charges to date reach 90% (watch) or 110%
(overrun) of the payment standard of the DRG pre-grouped so far. Also times the watch list of ~2,000
stays with explanations, and of one stay. Results go to ``experiments/results/instay.md``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import typer

from experiments.benchmarks.report import SHARED_CORES, load_average, machine_line, timed, write_results
from pipelines.demo import generate_demo

RESULTS = Path(__file__).resolve().parents[1] / "results" / "instay.md"
SEED = 42


def run(
    cases: int = typer.Option(20_000, "--cases", help="demo hospital size"),
    min_rows: int = typer.Option(50, "--min-rows", help="smallest split part accepted (lower for toy sizes)"),
    speed_stays: int = typer.Option(2_000, "--speed-stays", help="stays on the timed watch list"),
    output: Path = RESULTS,
) -> None:
    """Train, replay the test quarter, time the watch list; write the markdown report."""
    from contract.settings import Settings
    from features.instay import cut_stays, sample_cuts
    from models.config import load_config
    from models.tasks import get_task
    from models.tasks.instay import final_outcome
    from models.watch_list import watch_list
    from models.watch_replay import crossing_days, judge, matched_threshold, replay
    from pipelines.instay import instay_data
    from pipelines.training.run import train

    hospital, generate_s = timed(lambda: generate_demo(cases, 3, SEED))
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        settings = Settings(data_dir=data_dir, tracking_uri=f"sqlite:///{(data_dir / 'mlflow.db').resolve()}")
        config = load_config()
        config["split"]["min_rows"] = min_rows
        task = get_task("instay")
        data = instay_data(task, hospital.cases, hospital.inpatients, hospital.charges, settings)
        result, train_s = timed(lambda: train(task, data, config, settings))
        model = mlflow.pyfunc.load_model(
            f"models:/caselens-instay/{result.model_version}"
        ).unwrap_python_model()

    test_start = pd.Period(result.split["test_periods"].split("..")[0]).start_time
    last_day = hospital.cases["discharge_date"].max()
    days = pd.date_range(test_start, last_day, freq="D")
    records, charges, stays = hospital.inpatients, hospital.charges, hospital.cases
    rows, replay_s = timed(lambda: replay(model, records, charges, stays, days))
    outcome = final_outcome(stays, settings).set_index(stays["case_id"].to_numpy())
    outcome["overrun"] = outcome["overrun"].astype(bool)
    crossing = crossing_days(charges, outcome["final_payment"])
    judged = {
        "rule: charges to date ≥ 90% of the standard (watch)": judge(
            rows, rows["ratio_to_date"] >= 0.9, outcome, crossing
        ),
        "rule: charges to date ≥ 110% of the standard (overrun)": judge(
            rows, rows["ratio_to_date"] >= 1.1, outcome, crossing
        ),
        "model: level watch or overrun (default policy)": judge(
            rows, rows["warning_level"] != "none", outcome, crossing
        ),
        "model: level overrun (default policy)": judge(
            rows, rows["warning_level"] == "overrun", outcome, crossing
        ),
    }
    target = judged["rule: charges to date ≥ 90% of the standard (watch)"]["precision"]
    threshold, matched = matched_threshold(
        rows, outcome, crossing, target, lambda r: r["overrun_probability"]
    )
    if matched:
        judged[f"model: overrun probability ≥ {threshold:.2f} (precision matched to the 90% rule)"] = matched

    pool = sample_cuts(stays, np.random.default_rng(SEED))
    pool = pool[pool["case_id"].isin(records["case_id"])].tail(speed_stays)
    frame = cut_stays(records, charges, pool)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        watch_list(model, frame, stays)
        timings.append(time.perf_counter() - start)
    single = []
    for i in range(20):
        start = time.perf_counter()
        watch_list(model, frame.iloc[[i]], stays)
        single.append((time.perf_counter() - start) * 1000)

    lines = [
        "# Benchmark: in-stay early warning (replay of the test quarter)",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.instay --cases {cases}`",
        "",
        f"Demo hospital: {cases:,} stays over 3 years from 2023-01-01, seed {SEED} ({generate_s:.1f} s);",
        f"{len(charges):,} daily charge rows, {len(records):,} in-stay records. `instay` trained on",
        f"{result.rows['train']:,} stays cut at a sampled day (validation {result.rows['validation']:,},",
        f"test {result.rows['test']:,}; test {result.split['test_periods']}) in {train_s:.0f} s.",
        "",
        "## The model on its test quarter (one cut per stay)",
        "",
        "| metric | model | baseline (training mean per pre-grouped DRG) |",
        "|---|---:|---:|",
        *(
            f"| {k} | {v:.4f} | {result.baseline_metrics.get(k, float('nan')):.4f} |"
            for k, v in result.metrics.items()
        ),
        "",
        f"## Replay: every day of {result.split['test_periods']} ({len(days)} days, {len(rows):,} stay-days, "
        f"{replay_s:.0f} s)",
        "",
        "Truth: a stay overran when its final cost passed its final DRG payment (the payment rules on the",
        "final abstract, outlier rules included). Judged per stay: precision = warned stays that overran;",
        "recall = overrunning stays warned on some day; lead = days from the first warning to the day the",
        "charges to date passed the final payment (median over warned overruns; > 0 is before).",
        "",
        "| warning rule | stays warned | precision | recall | median lead (days) | warned before crossing |"
        " overrun ¥ in warned stays |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {name} | {f['warned']:,.0f} / {f['stays']:,.0f} | {f['precision']:.3f} | {f['recall']:.3f} | "
            f"{f['lead_days_median']:.1f} | {f['warned_before_crossing']:.1%} | "
            f"{f['overrun_yuan_warned']:,.0f} of {f['overrun_yuan_all']:,.0f} |"
            for name, f in judged.items()
        ),
        "",
        "## Speed",
        "",
        f"- watch list of {len(frame):,} stays in hospital with explanations (features, pre-grouping,",
        "  final cost with interval, overrun probability, top-3 SHAP reasons): median "
        f"{statistics.median(timings):.2f} s of 3 runs (target: under 2 s).",
        f"- one stay: median {statistics.median(single):.0f} ms of 20 runs.",
        "",
        machine_line(f", load average {load_average():.1f} at the end. {SHARED_CORES} wall"),
        "times are upper bounds.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
