"""Benchmark: generating the synthetic demo hospital, and the figures it comes out with.

    .venv/bin/python -m experiments.benchmarks.demo_data --cases 1000000

Times ``generate_demo`` (3 years, seed 42; the grouper and payment code included, as the settlement
step runs them) and writing the cases and oracle as Parquet, then lists the realism figures the tests
hold it to. Results go to ``experiments/results/demo_data.md``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import typer

from contract.fields import COST_CATEGORIES
from experiments.benchmarks.report import (
    SHARED_CORES,
    load_average,
    machine_line,
    peak_memory_line,
    timed_cpu,
    write_results,
)
from pipelines.demo import DemoHospital, generate_demo
from pipelines.demo.coding import FINGERPRINT_LIMITS, fingerprints

RESULTS = Path(__file__).resolve().parents[1] / "results" / "demo_data.md"


def figures(hospital: DemoHospital) -> list[tuple[str, str]]:
    """Headline figures of a generated hospital, as (measure, value) rows."""
    cases, oracle = hospital.cases, hospital.oracle
    ordered = cases.assign(kind=oracle["stay_kind"].to_numpy()).sort_values(["patient_id", "admission_date"])
    gap = (ordered.groupby("patient_id")["admission_date"].shift(-1) - ordered["discharge_date"]).dt.days
    unplanned = (gap <= 30) & (ordered.groupby("patient_id")["kind"].shift(-1) == "readmission")
    total = cases["total_cost"].sum()
    median = cases.groupby(oracle["case_type"].to_numpy())["total_cost"].median()
    month = cases.loc[cases["department"] == "respiratory", "admission_date"].dt.month
    by_year = cases["discharge_date"].dt.year.value_counts().sort_index()
    traces = fingerprints(cases, oracle)
    return [
        ("patients", f"{cases['patient_id'].nunique():,}"),
        ("30-day unplanned readmission rate", f"{unplanned.mean():.1%}"),
        (
            "stays with a planned readmission (chemotherapy cycles)",
            f"{cases['readmission_plan_31d'].mean():.1%}",
        ),
        ("in-hospital deaths", f"{(cases['discharge_disposition'] == 5).mean():.2%}"),
        ("stays with a CC or MCC that counts (true codes)", f"{(oracle['true_cc_level'] > 0).mean():.1%}"),
        (
            "abstracts with a coding error / audited",
            f"{oracle['true_error_type'].notna().mean():.1%} / {cases['audited'].astype(bool).mean():.1%}",
        ),
        (
            "drugs / consumables share of charges",
            f"{(cases['cost_western_drugs'] + cases['cost_chinese_drugs']).sum() / total:.1%}"
            f" / {cases['cost_consumables'].sum() / total:.1%}",
        ),
        (
            "charge groups add up to total",
            str(bool(((cases[list(COST_CATEGORIES)].sum(axis=1) - cases["total_cost"]).abs() < 0.011).all())),
        ),
        (
            "median charge: acute MI (medical) / lung-cancer surgery",
            f"¥{median['ami_medical']:,.0f} / ¥{median['lung_cancer_surgery']:,.0f}",
        ),
        (
            "respiratory admissions Dec-Feb vs Jun-Aug",
            f"{month.isin([12, 1, 2]).sum():,} vs {month.isin([6, 7, 8]).sum():,}",
        ),
        (
            "daily charge rows / in-stay coding records / stays in hospital on the last day",
            f"{len(hospital.charges):,} / {len(hospital.inpatients):,} / {len(hospital.in_hospital):,}",
        ),
        ("discharges by year", ", ".join(f"{y}: {n:,}" for y, n in by_year.items())),
        ("mean charge per stay", f"¥{cases['total_cost'].mean():,.0f}"),
        *[
            (f"coding-error trace: {name} (limit {sense} {limit:.0%})", f"{traces[name]:.1%}")
            for name, (sense, limit) in FINGERPRINT_LIMITS.items()
        ],
    ]


def run(cases: int = typer.Option(1_000_000, help="number of cases"), output: Path = RESULTS) -> None:
    """Time generation and writing; write a markdown report with the hospital's figures."""
    hospital, (generate_s, generate_cpu) = timed_cpu(lambda: generate_demo(cases, 3, 42))
    with tempfile.TemporaryDirectory() as folder:
        paths, (write_s, write_cpu) = timed_cpu(lambda: hospital.write(folder, "parquet"))
        files = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths)
    lines = [
        "# Benchmark: synthetic demo hospital",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.demo_data --cases {cases}`",
        "",
        f"{cases:,} stays over 3 years from 2023-01-01, seed 42: simulation, coding and audit, charges, and",
        "settlement (grouping every abstract with the real CHS-DRG 1.1 grouper, weights, payment rules).",
        "",
        "| step | wall seconds | CPU seconds |",
        "|---|---:|---:|",
        f"| `generate_demo` | {generate_s:.2f} | {generate_cpu:.2f} |",
        f"| write cases + oracle Parquet ({files}) | {write_s:.2f} | {write_cpu:.2f} |",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in figures(hospital)),
        "",
        peak_memory_line(),
        "",
        machine_line(
            f", load average {load_average():.1f} at the end. {SHARED_CORES} wall", f"pandas {pd.__version__}"
        ),
        "times are upper bounds; CPU seconds (this process) are closer to an idle machine's wall time.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
