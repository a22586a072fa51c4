"""Benchmark: which TreeSHAP explainer the service should use, on the cost model it serves.

    .venv/bin/python -m experiments.benchmarks.explainers --cases 20000

The demo cost model (:mod:`experiments.benchmarks.cost_model`) is fitted on N demo cases; LightGBM's
native ``pred_contrib`` (one thread, and the service's ``CASELENS_SERVE_EXPLAIN_THREADS``) and shap's
TreeExplainer then explain the same rows, one case and a batch: median time and the largest
difference between their values. Results go to ``experiments/results/explainers.md``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import shap
import typer

from contract.fields import fields_known_at
from experiments.benchmarks.cost_model import fit_cost_model
from experiments.benchmarks.report import peak_memory_line, write_results
from features.pipeline import CaseFeatures
from models import lgbm
from models.explain import tree_contributions
from models.tasks.cost import CostModel
from pipelines.demo.generate import generate_demo
from serving.config import ServingSettings

RESULTS = Path(__file__).resolve().parents[1] / "results" / "explainers.md"


def compare_explainers(
    features: CaseFeatures, estimator: CostModel, cases: pd.DataFrame, batch: int, threads: int
) -> list[str]:
    """Native pred_contrib (1 and ``threads`` threads) vs shap TreeExplainer: same numbers? the faster?"""
    admission = cases[list(fields_known_at("admission"))]
    X = features.transform(admission.iloc[:batch], history=cases)
    tree = estimator.explained
    booster = tree.booster_
    explainer = shap.TreeExplainer(tree)
    rows = []
    for label, frame, repeats in (("1 case", X.iloc[[0]], 200), (f"{len(X):,} cases", X, 3)):
        matrix = lgbm.frame_matrix(frame, booster.pandas_categorical)
        native = booster.predict(matrix, pred_contrib=True, num_threads=1)
        values = explainer.shap_values(frame)
        diff = float(np.abs(native[:, :-1] - values).max())
        base_diff = abs(float(native[0, -1]) - float(np.ravel(explainer.expected_value)[0]))
        timings = {}
        for name, call in (
            ("native", lambda f=frame: tree_contributions(booster, f, 1)),
            ("native_threads", lambda f=frame: tree_contributions(booster, f, threads)),
            ("shap", lambda f=frame: explainer.shap_values(f)),
        ):
            spent = []
            for _ in range(repeats):
                start = time.perf_counter()
                call()
                spent.append(time.perf_counter() - start)
            timings[name] = float(np.median(spent)) * 1000
        rows.append(
            f"| {label} | {timings['native']:.2f} | {timings['native_threads']:.2f} | {timings['shap']:.2f} "
            f"| {diff:.2e} | {base_diff:.2e} |"
        )
    return rows


def explainer_verdict(rows: list[str], threads: int) -> str:
    """Which explainer was faster at each size, from the table rows just measured."""
    verdicts = []
    for row in rows:
        label, native, native_threads, other = (cell.strip() for cell in row.strip("|").split("|")[:4])
        times = {
            "native pred_contrib, 1 thread": float(native),
            f"native pred_contrib, {threads} threads": float(native_threads),
            "shap TreeExplainer": float(other),
        }
        fastest = min(times, key=times.__getitem__)
        verdicts.append(f"{label}: {fastest} ({times[fastest]:.2f} ms)")
    return (
        "Both give the same TreeSHAP values (differences at float rounding). Fastest here — "
        + "; ".join(verdicts)
        + f". The service uses the native contributions: one thread for micro-batches of one-case requests "
        f"(concurrency comes from the requests), {threads} threads (`CASELENS_SERVE_EXPLAIN_THREADS`) for "
        "batch requests of 1,000 cases or more; shap's explainer has no threads of its own."
    )


def run(
    cases: int = typer.Option(20_000, help="demo cases the cost model is fitted on"),
    trees: int = typer.Option(None, help="trees of each cost sub-model (default: train.toml's)"),
    batch: int = typer.Option(10_000, help="cases in the batch explained"),
    output: Path = typer.Option(RESULTS, help="markdown results file"),
) -> None:
    """Time both explainers on one case and on a batch, check they agree, write a report."""
    started = datetime.now(UTC)
    hospital = generate_demo(cases, 3, seed=0).cases
    features, estimator, params = fit_cost_model(hospital, trees)
    threads = ServingSettings().explain_threads
    rows = compare_explainers(features, estimator, hospital, min(batch, len(hospital)), threads)
    command = " ".join(sys.argv[1:]) if sys.argv[0].endswith("explainers.py") else None
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Explainer benchmark: LightGBM `pred_contrib` vs shap `TreeExplainer`",
        "",
        "Command: `.venv/bin/python -m experiments.benchmarks.explainers "
        f"{command or f'--cases {cases} --batch {batch}'}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, `nproc` = {os.cpu_count()}, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}, "
        f"shap {shap.__version__}; {started:%Y-%m-%d %H:%M} UTC. The 2 cores are shared with other "
        f"engineers' jobs (load average at the end: {load_avg}), so timings are noisy.",
        "",
        f"Model: the served `caselens-cost` shape (CaseFeatures admission stage + CostModel, "
        f"{params['n_estimators']} trees, {params['num_leaves']} leaves, depth "
        f"{params.get('max_depth', 'unlimited')}), fitted on {cases:,} demo cases; SHAP explains its point "
        "model (log cost), as the service does.",
        "",
        "## Time per call (ms, median)",
        "",
        f"| rows | native, 1 thread | native, {threads} threads | shap TreeExplainer "
        "| max abs difference | base value difference |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        explainer_verdict(rows, threads),
        "",
        peak_memory_line(),
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
