"""Backtest of each DRG × department's loss probability on the demo hospital, beside naive rules.

    .venv/bin/python -m experiments.benchmarks.loss_risk --cases 60000 --seeds 1,2,3

For each seed: generates the demo hospital (3 years from 2023-01-01), groups and prices it, and runs
the surplus forecast's rolling-origin backtest (the last 6 quarters as origins, 4 quarters ahead);
at every origin each leaf's probability of a negative surplus is scored against what happened, by
Brier score and a reliability table, beside the naive rule (lost money in the same quarter last
year → loses again, as 0/1) and the leaf's empirical-Bayes smoothed share of losing quarters; the
published (calibrated) probability is scored as it could have been known at each origin.
Writes ``experiments/results/loss_risk.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from experiments.benchmarks.report import SHARED_CORES, machine_line, peak_memory_line, timed, write_results
from models.forecast import backtest
from models.forecast.loss_risk import (
    BRIER_COLUMNS,
    LossBacktest,
    LossCalibration,
    brier,
    loss_summary,
    reliability,
)
from pipelines.demo import generate_demo
from pipelines.forecast import price_history

RESULTS = Path(__file__).resolve().parents[1] / "results" / "loss_risk.md"


def backtest_seed(
    cases: int, seed: int, horizon: int, origins: int, draws: int
) -> tuple[pd.DataFrame, float]:
    """Loss-risk scores of every origin on one demo hospital, and the seconds the backtest took."""
    history = price_history(generate_demo(cases, 3, seed).cases)
    scorer = LossBacktest(history.cases)
    _, seconds = timed(
        lambda: backtest(
            history.cases,
            history.reprice,
            history.schedule,
            horizon,
            origins=origins,
            n_draws=draws,
            on_forecast=scorer,
        )
    )
    return scorer.scores.assign(seed=seed), seconds


def run(
    cases: int = typer.Option(60_000, help="number of demo cases"),
    seeds: str = typer.Option("1,2,3", help="demo hospital seeds, comma-separated"),
    horizon: int = typer.Option(4, help="quarters forecast"),
    origins: int = typer.Option(6, help="backtest origins"),
    draws: int = typer.Option(500, help="simulation draws"),
    output: Path = RESULTS,
) -> None:
    """Score the loss probabilities at every origin and seed, and write the figures as markdown."""
    chosen = [int(s) for s in seeds.split(",") if s.strip()]
    runs = [backtest_seed(cases, seed, horizon, origins, draws) for seed in chosen]
    scores = pd.concat([r[0] for r in runs], ignore_index=True)
    columns = ("brier_calibrated", "brier_simulated", "brier_naive", "brier_smoothed")
    head = "Brier calibrated | Brier simulated | Brier naive | Brier smoothed"
    lines = [
        "# Loss risk per DRG × department: backtest",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.loss_risk --cases {cases} --seeds {seeds}`",
        "",
        f"Demo hospital: {cases:,} cases discharged 2023-01-01 … 2025-12-31 per seed, grouped with",
        "CHS-DRG 1.1 and priced with the embedded rules, as in `forecast.md`. At each of the last",
        f"{origins} quarters the surplus forecast is refitted on the quarters before it ({draws} draws,",
        f"up to {horizon} quarters ahead) and each department × DRG cell's probability of a negative",
        "surplus is scored on the quarters inside the history (`models/forecast/loss_risk.py`). A cell",
        "without a case in a quarter did not lose money in it. Brier score: mean of (probability −",
        "outcome)², lower is better; always saying the pooled share would score about share × (1 − share).",
        "",
        "- *simulated*: from the forecast's draws, each a Poisson count of cases (the draw's volume as",
        "  mean) whose margins vary around the draw's margin per case by the cell's own case spread",
        "  (shrunk to the pooled spread): the mean over draws of P(the quarter's margins sum below 0).",
        "- *calibrated*: the published probability, a logistic regression on the logits of the simulated",
        "  probability and of the cell's smoothed loss history, learnt at each origin only from earlier",
        "  origins' forecasts of quarters that had ended (the first origin keeps the simulated one).",
        "- *naive*: 1 if the cell lost money in the same quarter a year before, else 0.",
        "- *smoothed*: the cell's share of losing quarters before the origin, shrunk to the pooled share",
        "  (beta-binomial empirical Bayes, `smoothed_loss_rate`).",
        "",
        "## Brier score per seed",
        "",
        f"| seed | cells | forecasts | share that lost | {head} | busy (≥ 10 cases) | busy: {head} |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed in chosen:
        own = scores[scores["seed"] == seed]
        summary = loss_summary(own)
        every, busy = summary.iloc[0], summary.iloc[-1]
        cells = own[["department", "drg"]].drop_duplicates().shape[0]
        lines.append(
            f"| {seed} | {cells:,} | {every['n']:,.0f} | {every['loss_share']:.1%} | "
            + " | ".join(f"{every[c]:.4f}" for c in columns)
            + f" | {busy['n']:,.0f} | "
            + " | ".join(f"{busy[c]:.4f}" for c in columns)
            + " |"
        )
    pooled = loss_summary(scores)
    lines += [
        "",
        "All seeds together:",
        "",
        f"| cells | forecasts | share that lost | {head} |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {subset} | {row['n']:,.0f} | {row['loss_share']:.1%} | "
            + " | ".join(f"{row[c]:.4f}" for c in columns)
            + " |"
            for subset, row in pooled.iterrows()
        ),
        "",
        "By horizon and by origin (all seeds; h = 1 is the origin quarter):",
        "",
        f"| | forecasts | {head} |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {len(g):,} | "
            + " | ".join(f"{brier(g[BRIER_COLUMNS[c]], g['lost']):.4f}" for c in columns)
            + " |"
            for label, g in [
                *((f"h = {h}", g) for h, g in scores.groupby("h")),
                *((f"origin {o}", g) for o, g in scores.groupby("origin")),
            ]
        ),
        "",
        "## Reliability (all seeds)",
        "",
        "Forecasts binned by their loss probability: the share of the bin's cells that did lose money",
        "should match the bin's mean probability (forecasts / mean probability / share that lost).",
        "",
        "| probability | calibrated | | | simulated | | | smoothed | | |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tables = [reliability(scores[c], scores["lost"]) for c in ("p_loss_calibrated", "p_loss_simulated")]
    tables.append(reliability(scores["loss_rate_history"], scores["lost"]))
    for label in tables[0].index:
        cells = [
            f"{row['n']:,.0f} | {_share(row['mean_p'])} | {_share(row['observed'])}"
            for row in (t.loc[label] for t in tables)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    naive = scores.groupby("naive")["lost"].agg(["size", "mean"])
    published = {seed: LossCalibration.fit(scores[scores["seed"] == seed]) for seed in chosen}
    lines += [
        "",
        "Naive rule: "
        + "; ".join(
            f"said {'loss' if flag else 'no loss'} {row['size']:,.0f} times, lost {row['mean']:.1%}"
            for flag, row in naive.iterrows()
        )
        + ".",
        "",
        "Calibration the published forecast would use (learnt from all origins), per seed: "
        + "; ".join(
            f"seed {seed}: {c.intercept:+.2f} + {c.simulated:.2f}·logit(simulated) + "
            f"{c.history:.2f}·logit(history)"
            for seed, c in published.items()
            if c is not None
        )
        + ".",
        "",
        "Backtest time per seed (forecast refits at every origin, shared with the surplus backtest): "
        + ", ".join(f"seed {seed} {seconds:.0f} s" for seed, (_, seconds) in zip(chosen, runs, strict=True))
        + ".",
        "",
        machine_line(f". {SHARED_CORES} times are upper bounds.") + " " + peak_memory_line(),
        "",
    ]
    write_results(lines, output)


def _share(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


if __name__ == "__main__":
    typer.run(run)
