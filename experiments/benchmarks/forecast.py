"""Benchmark and backtest: the quarterly surplus forecast on the demo hospital with N cases.

    .venv/bin/python -m experiments.benchmarks.forecast --cases 1000000

Generates the demo hospital (3 years from 2023-01-01, base rate ¥10,000 → ¥10,500 on 2025-01-01),
groups and prices it, forecasts 4 quarters with a scenario, and runs the rolling-origin backtest over
the last 6 quarters; writes timings, memory and the backtest beside its baselines, with interval
coverage per level and horizon, to ``experiments/results/forecast.md``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from experiments.benchmarks.report import SHARED_CORES, machine_line, peak_memory_line, timed, write_results
from models.forecast import Scenario, backtest, backtest_summary, coverage, forecast_surplus, widen
from models.forecast.levels import level_forecast
from pipelines.demo import generate_demo
from pipelines.forecast import price_history

RESULTS = Path(__file__).resolve().parents[1] / "results" / "forecast.md"
SCENARIO = Scenario(
    name="base rate +5% from 2026-04-01, oncology volume +10%, cardiology cost -5%",
    base_rate=[{"effective_from": date(2026, 4, 1), "change": 0.05}],
    volume=[{"department": "oncology", "change": 0.10}],
    cost=[{"department": "cardiology", "change": -0.05}],
)


def _money(value: float) -> str:
    return f"{value / 1e4:,.0f}"


def run(
    cases: int = typer.Option(60_000, help="number of demo cases"),
    horizon: int = typer.Option(4, help="quarters forecast"),
    origins: int = typer.Option(6, help="backtest origins"),
    draws: int = typer.Option(500, help="simulation draws"),
    seed: int = typer.Option(1, help="demo hospital seed"),
    output: Path = RESULTS,
) -> None:
    """Time every step and write the backtest figures beside the baselines as markdown."""
    demo, generate_s = timed(lambda: generate_demo(cases, 3, seed))
    history, price_s = timed(lambda: price_history(demo.cases))
    priced = history.cases
    (base, changed), forecast_s = timed(
        lambda: forecast_surplus(
            priced, history.reprice, history.schedule, horizon, scenario=SCENARIO, n_draws=draws
        )
    )
    scores, backtest_s = timed(
        lambda: backtest(priced, history.reprice, history.schedule, horizon, origins=origins, n_draws=draws)
    )
    summary = backtest_summary(scores)
    hospital = widen(level_forecast(base, "hospital"), summary.loc["hospital"], "surplus", "surplus_")
    moved = (
        level_forecast(changed, "hospital").set_index("quarter")["surplus"]
        - hospital.set_index("quarter")["surplus"]
    )
    hospital_scores = scores[scores["level"] == "hospital"]
    by_horizon = coverage(scores, ["level", "h"]).join(scores.groupby(["level", "h"]).size().rename("n"))
    steps = [
        ("generate the demo hospital", generate_s),
        ("group and price (calibrate weights)", price_s),
        (
            f"forecast {horizon} quarters, base + scenario, {draws} draws ({len(base.leaves):,} leaves)",
            forecast_s,
        ),
        (f"backtest, {origins} origins × 3 levels", backtest_s),
    ]
    lines = [
        "# Quarterly DRG surplus forecast: backtest and benchmark",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.forecast --cases {cases}"
        + (f" --seed {seed}" if seed != 1 else "")
        + "`",
        "",
        f"Demo hospital: {cases:,} cases discharged 2023-01-01 … 2025-12-31 (seed {seed}), grouped",
        "with CHS-DRG 1.1, priced with the embedded rules (rate method, ¥10,000 → ¥10,500 from",
        "2025-01-01), weights calibrated on the whole history and held fixed (a tariff). Surplus = DRG",
        "payment − charges. History is re-priced at the rate in force in each forecast quarter, so a",
        "forecast made in 2024 for 2025 quarters pays ¥10,500 and history before 2025 is not understated.",
        "",
        "## Backtest: quarterly surplus, rolling origin",
        "",
        f"Origins: the last {origins} quarters of history; each forecasts up to {horizon} quarters ahead,",
        "scored on the quarters inside the history. MAPE and MAE are of surplus; baselines are",
        "seasonal naive (same quarter last year) and naive (last quarter). DRG level: the top 10 DRGs by",
        "volume and by loss at each origin. Origins with less than 9 quarters before them forecast every",
        "cell's volume by seasonal naive grown by its department's year-on-year growth (MSTL needs more).",
        "",
        "| level | forecasts | MAPE | MAPE seasonal naive | MAPE naive | MAE (¥10k) | MAE seasonal naive | "
        "MAE naive | 80% coverage | 95% coverage | calibrated 80% | calibrated 95% | scale 80/95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {level} | {row['n']:.0f} | {row['mape']:.1%} | {row['mape_seasonal_naive']:.1%} | "
            f"{row['mape_naive']:.1%} | {_money(row['mae'])} | {_money(row['mae_seasonal_naive'])} | "
            f"{_money(row['mae_naive'])} | {row['coverage80']:.0%} | {row['coverage95']:.0%} | "
            f"{row['coverage80_calibrated']:.0%} | {row['coverage95_calibrated']:.0%} | "
            f"{row['scale80']:.2f} / {row['scale95']:.2f} |"
            for level, row in summary.iterrows()
        ),
        "",
        "Coverage is of the simulation's own intervals; *calibrated* is of the intervals widened by the",
        "factor that was known at each origin: learnt only from strictly earlier origins' forecasts of",
        "quarters that had ended by then (the first origin has none and keeps its own bands); *scale* is",
        "the factor from all origins that the published forecast uses (surplus bands only).",
        "",
        "Coverage by horizon (quarters ahead; h = 1 is the origin quarter itself):",
        "",
        "| level | h | forecasts | 80% coverage | 95% coverage | calibrated 80% | calibrated 95% |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {level} | {h} | {row['n']:.0f} | {row['coverage80']:.0%} | {row['coverage95']:.0%} | "
            f"{row['coverage80_calibrated']:.0%} | {row['coverage95_calibrated']:.0%} |"
            for (level, h), row in by_horizon.iterrows()
        ),
        "",
        "Hospital level, each origin and quarter (¥10k, simulation's own interval; error is",
        "(forecast − actual) / |actual|: negative when the surplus forecast is too low, a loss too large):",
        "",
        "| origin | quarter | actual | forecast | error | 80% interval | inside | seasonal naive | naive |",
        "|---|---|---:|---:|---:|---:|:---:|---:|---:|",
        *(
            f"| {r.origin} | {r.quarter} | {_money(r.actual)} | {_money(r.forecast)} | "
            f"{(r.forecast - r.actual) / abs(r.actual):+.1%} | {_money(r.lo80)} … {_money(r.hi80)} | "
            f"{'yes' if r.lo80 <= r.actual <= r.hi80 else 'no'} | {_money(r.seasonal_naive)} | "
            f"{_money(r.naive)} |"
            for r in hospital_scores.itertuples()
        ),
        "",
        "## Forecast from the end of the history (hospital, ¥10k, calibrated surplus intervals)",
        "",
        "| quarter | base rate | cases | payment | cost | surplus | 80% interval | 95% interval | "
        "scenario − base |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r.quarter} | {r.rate:,.0f} | {r.volume:,.0f} | {_money(r.payment)} | {_money(r.cost)} | "
            f"{_money(r.surplus)} | {_money(r.surplus_lo80)} … {_money(r.surplus_hi80)} | "
            f"{_money(r.surplus_lo95)} … {_money(r.surplus_hi95)} | {_money(moved[r.quarter])} |"
            for r in hospital.itertuples()
        ),
        "",
        f"Scenario: {SCENARIO.name}.",
        "",
        "## Timings",
        "",
        "| step | seconds |",
        "|---|---:|",
        *(f"| {name} | {seconds:.1f} |" for name, seconds in steps),
        "",
        peak_memory_line(),
        "",
        machine_line(f". {SHARED_CORES}"),
        "timings are upper bounds; statsforecast runs with n_jobs=1.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
