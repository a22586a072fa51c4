"""Benchmark: point-in-time case features for N cases with their histories, at both stages.

    .venv/bin/python -m experiments.benchmarks.features --cases 1000000

Cases are synthetic canonical stays (patients with several stays each, codes drawn from the CHS-DRG
dictionaries); every case is both a row to describe and history for the patient's later stays. The
target is 1,000,000 cases in at most 60 s. Results go to ``experiments/results/features.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import typer

from contract.fields import COST_CATEGORIES
from contract.settings import CASEMIX_TABLES
from experiments.benchmarks.report import (
    load_average,
    machine_line,
    peak_memory_line,
    timed_cpu,
    write_results,
)
from features.history import history_features
from features.pipeline import CaseFeatures, event_frame

RESULTS = Path(__file__).resolve().parents[1] / "results" / "features.md"
DEPARTMENTS = np.array(
    ["心内科", "呼吸科", "骨科", "普外科", "神经内科", "肿瘤科", "妇产科", "儿科", "消化内科", "肾内科"]
)


def _codes(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    table = pd.read_csv(path, sep="\t", dtype=str)["code"].to_numpy(dtype=object)
    return table[rng.integers(0, len(table), n)]


def _code_lists(pool: np.ndarray, n: int, most: int, rng: np.random.Generator) -> np.ndarray:
    """'|'-joined lists of 0..most codes per row (None when empty)."""
    count = rng.integers(0, most + 1, n)
    out = np.full(n, None, dtype=object)
    for k in range(most):
        code = pool[rng.integers(0, len(pool), n)]
        take = count > k
        first = take & (k == 0)
        later = take & (k > 0)
        out[first] = code[first]
        out[later] = out[later] + "|" + code[later]
    return out


def synthetic_cases(n_cases: int, seed: int = 0) -> pd.DataFrame:
    """``n_cases`` canonical stays of about n/3 patients over three years, in canonical dtypes."""
    rng = np.random.default_rng(seed)
    patient = np.sort(rng.integers(0, max(n_cases // 3, 1), n_cases))
    gap = rng.exponential(120, n_cases).astype(np.int64)
    los = np.clip(rng.gamma(2.0, 4.0, n_cases).astype(np.int64), 0, 90)
    start = rng.integers(0, 365, n_cases)
    first = np.r_[True, patient[1:] != patient[:-1]]
    step = np.where(first, start, gap + np.r_[0, los[:-1]])
    offset = pd.Series(step).groupby(patient).cumsum().to_numpy()
    admission = np.datetime64("2022-01-01") + offset.astype("timedelta64[D]")
    discharge = admission + los.astype("timedelta64[D]")
    diagnoses = _codes(CASEMIX_TABLES / "diagnoses.tsv", 20_000, rng)
    procedures = _codes(CASEMIX_TABLES / "procedures.tsv", 5_000, rng)
    principal = diagnoses[rng.integers(0, len(diagnoses), n_cases)]
    share = rng.dirichlet(np.ones(len(COST_CATEGORIES)), n_cases)
    total = np.round(rng.lognormal(9.3, 0.8, n_cases), 2)
    has_procedure = rng.random(n_cases) < 0.4
    age = rng.integers(1, 95, n_cases)
    frame = pd.DataFrame(
        {
            "case_id": pd.Series(np.arange(n_cases)).map("C{:08d}".format).astype(object),
            "patient_id": pd.Series(patient).map("P{:08d}".format).astype(object),
            "department": DEPARTMENTS[rng.integers(0, len(DEPARTMENTS), n_cases)].astype(object),
            "admission_date": pd.to_datetime(admission),
            "admission_source": rng.choice([1, 2, 3, 9], n_cases, p=[0.3, 0.6, 0.05, 0.05]),
            "admission_type": rng.choice([1, 2, 3], n_cases, p=[0.6, 0.3, 0.1]),
            "sex": rng.integers(1, 3, n_cases),
            "age_years": age,
            "insurance_type": rng.choice([1, 2, 7], n_cases, p=[0.5, 0.4, 0.1]),
            "admission_diagnosis": principal,
            "planned_procedure": np.where(
                has_procedure, procedures[rng.integers(0, len(procedures), n_cases)], None
            ),
            "discharge_date": pd.to_datetime(discharge),
            "principal_diagnosis": principal,
            "other_diagnoses": _code_lists(diagnoses, n_cases, 5, rng),
            "principal_procedure": np.where(
                has_procedure, procedures[rng.integers(0, len(procedures), n_cases)], None
            ),
            "other_procedures": _code_lists(procedures, n_cases, 2, rng),
            "discharge_disposition": rng.choice([1, 2, 4, 5], n_cases, p=[0.9, 0.05, 0.04, 0.01]),
            "total_cost": total,
            **{c: np.round(total * share[:, i], 2) for i, c in enumerate(COST_CATEGORIES)},
        }
    )
    frame["los_days"] = np.maximum(los, 1)
    return frame


def run(cases: int = typer.Option(1_000_000, help="number of cases"), output: Path = RESULTS) -> None:
    """Time the history builder and both stages' CaseFeatures on synthetic cases; write a markdown report."""
    frame, generate_s = timed_cpu(lambda: synthetic_cases(cases))
    queries = frame[["case_id", "patient_id", "admission_date"]]
    _, history_s = timed_cpu(lambda: history_features(queries, event_frame(frame, "cases")))
    admission = CaseFeatures("admission")
    admission_x, admission_s = timed_cpu(lambda: admission.fit_transform(frame))
    discharge = CaseFeatures("discharge")
    discharge_x, discharge_s = timed_cpu(lambda: discharge.fit_transform(frame))
    rows = [
        ("generate synthetic cases", generate_s),
        ("history features alone (`features.history.history_features`)", history_s),
        (f"admission stage `CaseFeatures.fit_transform` ({admission_x.shape[1]} features)", admission_s),
        (
            f"discharge stage `CaseFeatures.fit_transform` ({discharge_x.shape[1]} features, grouping incl.)",
            discharge_s,
        ),
    ]
    patients = frame["patient_id"].nunique()
    lines = [
        "# Benchmark: point-in-time case features",
        "",
        f"Command: `.venv/bin/python -m experiments.benchmarks.features --cases {cases}`",
        "",
        f"{cases:,} synthetic cases of {patients:,} patients (about {cases / patients:.1f} stays each);",
        "every case is described and is also history for the patient's later stays.",
        "Target: 1,000,000 cases in ≤ 60 s.",
        "",
        "| step | wall seconds | CPU seconds |",
        "|---|---:|---:|",
        *(f"| {name} | {wall:.1f} | {cpu:.1f} |" for name, (wall, cpu) in rows),
        "",
        peak_memory_line(),
        "",
        machine_line(f", load average {load_average():.1f} at the end."),
        "The two cores are shared with other engineers' jobs, so wall seconds are upper bounds; CPU",
        "seconds (user + system of this process) are what the work costs. The work is single-threaded",
        "numpy/pandas/pyarrow.",
        "",
    ]
    write_results(lines, output)


if __name__ == "__main__":
    typer.run(run)
