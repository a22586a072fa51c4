"""A region of demo hospitals written one hospital at a time: millions of stays in bounded memory.

``generate_demo`` builds a hospital in memory (about 3 GB at a million stays); an insurer's region of
10 to 50 million stays is many hospitals. This writes ``n_cases`` stays as consecutive hospitals of at
most ``hospital_cases`` stays each, one Parquet file per hospital (``cases-NNNN.parquet`` and
``oracle-NNNN.parquet``), so memory follows ``hospital_cases``, not ``n_cases``. Hospital 0 is exactly
``generate_demo(size, years, seed)`` (a region no bigger than one hospital is the single-process demo,
ids and all); hospital k > 0 has seed ``seed + k`` and ids prefixed ``Hkkkk-`` (its own patients: no
patient crosses hospitals, as in :mod:`pipelines.demo.region`'s peers).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd

from pipelines.demo.generate import HOSPITAL_ID, generate_demo

HOSPITAL_CASES = 200_000
ID_COLUMNS = ("case_id", "patient_id")


def hospital_sizes(n_cases: int, hospital_cases: int = HOSPITAL_CASES) -> list[int]:
    """Stays per hospital: full hospitals, then the rest."""
    if n_cases < 1 or hospital_cases < 1:
        raise ValueError(f"need at least one case per hospital, got {n_cases=}, {hospital_cases=}")
    full, rest = divmod(n_cases, hospital_cases)
    return [hospital_cases] * full + ([rest] if rest else [])


def write_region(
    out_dir: Path | str,
    n_cases: int,
    years: int,
    seed: int,
    hospital_cases: int = HOSPITAL_CASES,
    start: date = date(2023, 1, 1),
) -> Iterator[Path]:
    """Write the region hospital by hospital, yielding each cases file once written (progress)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for k, size in enumerate(hospital_sizes(n_cases, hospital_cases)):
        hospital = generate_demo(size, years, seed + k, start=start)
        cases, oracle = hospital.cases.drop(columns="los_days"), hospital.oracle
        if k > 0:
            cases, oracle = _renamed(cases, k), _renamed(oracle, k)
            cases["hospital_id"] = f"{HOSPITAL_ID}-{k:04d}"
        target = out / f"cases-{k:04d}.parquet"
        cases.to_parquet(target, index=False)
        oracle.to_parquet(out / f"oracle-{k:04d}.parquet", index=False)
        del hospital, cases, oracle
        yield target


def _renamed(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    prefix = f"H{k:04d}-"
    return frame.assign(**{c: prefix + frame[c].astype(str) for c in ID_COLUMNS if c in frame.columns})
