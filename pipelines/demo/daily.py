"""What the demo hospital's information system records day by day: charges and coding so far.

Each stay's abstract charge groups are spread over its days (admission day to the day before
discharge; a same-day stay has one) by shapes a ward would show: bed and nursing (general services)
every day, diagnostics front-loaded, drugs spread with more in the first half, and for a surgical stay
consumables, treatment (the operation) and blood concentrated on the surgery day. Amounts are split
in integer fen by the largest-remainder rule, so a stay's days add up to each of its groups exactly.

Coding grows during the stay: the admission diagnosis first, the working principal diagnosis
(the final one) from a day or two in, each secondary diagnosis from a day of its own, and the
procedures from the surgery day; ``inpatients`` holds one row per stay per day this changed. Stays
still in hospital at the end of the census day keep only their days up to it.
Everything runs on whole arrays of stay-days; the only loops are over the ten charge groups and the
handful of secondary-diagnosis slots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from contract.charges import CHARGE_COLUMNS
from contract.fields import CODE_SEPARATOR, COST_CATEGORIES
from contract.instay import INSTAY_COLUMNS

NOISE_SHAPE = 4.0  # day-to-day gamma noise on every group's weight (coefficient of variation 0.5)
# Share of a surgical stay's group charged on the surgery day, on top of its spread over the stay.
SURGERY_DAY_SHARE = {"cost_consumables": 0.75, "cost_treatment": 0.55, "cost_blood": 0.5}
DIAGNOSTICS_DECAY = 0.35  # per day: tests cluster at the start of a stay
DRUG_DECAY = 0.08


def stay_days(cases: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The stay (row position) and day of stay (1..) of every charge day: ``los_days`` days per stay."""
    days = np.maximum(cases["los_days"].to_numpy(dtype=np.int64), 1)
    stay = np.repeat(np.arange(len(cases)), days)
    starts = np.cumsum(days) - days
    return stay, np.arange(len(stay)) - starts[stay] + 1


def surgery_days(cases: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """The day of stay of the principal procedure (0: none): day 1-2 for an emergency, 2-3 elective."""
    days = np.maximum(cases["los_days"].to_numpy(dtype=np.int64), 1)
    elective = cases["admission_type"].to_numpy(dtype=np.int64) != 2
    day = rng.geometric(0.6, len(cases)) + elective
    return np.where(cases["principal_procedure"].notna().to_numpy(), np.minimum(day, days), 0)


def daily_charges(cases: pd.DataFrame, surgery: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """One row per stay and day with the ten charge groups, adding up per stay to the abstract's."""
    stay, day = stay_days(cases)
    on_surgery = (surgery[stay] == day).astype(np.float64)
    surgical = (surgery[stay] > 0).astype(np.float64)
    flat = np.ones(len(stay))
    shapes = {
        "cost_diagnostics": np.exp(-DIAGNOSTICS_DECAY * (day - 1)) + 0.15,
        "cost_western_drugs": np.exp(-DRUG_DECAY * (day - 1)) + 0.3 * on_surgery,
        "cost_chinese_drugs": np.exp(-DRUG_DECAY * (day - 1)),
    }
    columns: dict[str, np.ndarray] = {
        "case_id": cases["case_id"].to_numpy(dtype=object)[stay],
        "charge_date": cases["admission_date"].to_numpy(dtype="datetime64[ns]")[stay]
        + ((day - 1) * np.timedelta64(1, "D")).astype("timedelta64[ns]"),
    }
    for name in COST_CATEGORIES:
        weight = shapes.get(name, flat) * rng.gamma(NOISE_SHAPE, 1 / NOISE_SHAPE, len(stay))
        if name in SURGERY_DAY_SHARE:
            share = SURGERY_DAY_SHARE[name] * surgical
            weight = (1 - share) * weight / _per_stay_sum(weight, stay)[stay] + share * on_surgery
        fen = np.round(cases[name].to_numpy(dtype=np.float64) * 100).astype(np.int64)
        columns[name] = largest_remainder(fen, weight, stay) / 100
    return pd.DataFrame({name: columns[name] for name in CHARGE_COLUMNS})


def largest_remainder(totals: np.ndarray, weight: np.ndarray, stay: np.ndarray) -> np.ndarray:
    """Integer parts of ``totals`` (one per stay) in proportion to ``weight`` over each stay's rows.

    Floors first, then gives the units left one each to the rows with the largest remainders, so the
    parts of a stay add up to its total exactly (Hamilton's method). ``stay`` is sorted, as from
    :func:`stay_days`.
    """
    share = weight / _per_stay_sum(weight, stay)[stay]
    ideal = totals[stay] * share
    parts = np.floor(ideal).astype(np.int64)
    left = totals - np.bincount(stay, weights=parts, minlength=len(totals)).astype(np.int64)
    # One sort by stay, then largest remainder first (a remainder is in [0, 1), so it stays in its stay).
    order = np.argsort(stay + (1.0 - (ideal - parts)) * 0.5, kind="stable")
    first = np.searchsorted(stay, np.arange(len(totals)))
    rank = np.empty(len(stay), dtype=np.int64)
    rank[order] = np.arange(len(stay)) - first[stay[order]]
    return parts + (rank < left[stay])


def _per_stay_sum(values: np.ndarray, stay: np.ndarray) -> np.ndarray:
    total = np.bincount(stay, weights=values)
    return np.where(total > 0, total, 1.0)


def coding_so_far(cases: pd.DataFrame, surgery: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """In-stay records: one row per stay per day its diagnoses or procedures so far changed.

    The working principal is the admission diagnosis until the day the final principal is settled on
    (day 1 for 60% of stays, else day 2-3); secondary diagnoses join, in the abstract's order, on days
    drawn over the stay; the procedures are known from the surgery day.
    """
    n = len(cases)
    los = np.maximum(cases["los_days"].to_numpy(dtype=np.int64), 1)
    principal_day = np.minimum(np.where(rng.random(n) < 0.6, 1, rng.integers(2, 4, n)), los)
    secondary = _code_matrix(cases["other_diagnoses"])
    drawn = 1 + np.floor(rng.random(secondary.shape) * los[:, None]).astype(np.int64)
    # Codes fill slots from the left: sorted with empty slots last, the abstract's order is kept.
    reveal = np.sort(np.where(secondary == "", np.iinfo(np.int64).max, drawn), axis=1)
    reveal = np.where(secondary == "", 0, reveal)
    events = np.column_stack([np.ones(n, dtype=np.int64), principal_day, surgery, reveal])
    stay = np.repeat(np.arange(n), events.shape[1])
    day = events.ravel()
    keep = day > 0
    snapshots = pd.DataFrame({"stay": stay[keep], "day": day[keep]}).drop_duplicates()
    snapshots = snapshots.sort_values(["stay", "day"], kind="stable")
    s, d = snapshots["stay"].to_numpy(), snapshots["day"].to_numpy()

    principal = np.where(
        principal_day[s] <= d,
        cases["principal_diagnosis"].to_numpy(dtype=object)[s],
        cases["admission_diagnosis"].to_numpy(dtype=object)[s],
    )
    diagnoses = principal.astype(object)
    for slot in range(secondary.shape[1]):
        known = (reveal[s, slot] > 0) & (reveal[s, slot] <= d)
        diagnoses = np.where(known, diagnoses + CODE_SEPARATOR + secondary[s, slot], diagnoses)
    procedures = _joined(cases["principal_procedure"], cases["other_procedures"])[s]
    procedures = np.where((surgery[s] > 0) & (surgery[s] <= d), procedures, None)
    admission = cases[[c for c in INSTAY_COLUMNS if c in cases.columns]].iloc[s].reset_index(drop=True)
    records = admission.assign(
        recorded_date=admission["admission_date"].to_numpy()
        + ((d - 1) * np.timedelta64(1, "D")).astype("timedelta64[ns]"),
        working_diagnoses=diagnoses,
        procedures_so_far=procedures,
    )
    return records[list(INSTAY_COLUMNS)]


def _code_matrix(column: pd.Series) -> np.ndarray:
    """A code-list column as an (n, slots) object array, "" where a stay has fewer codes."""
    split = column.fillna("").astype(str).str.split(CODE_SEPARATOR, expand=True)
    return split.fillna("").to_numpy(dtype=object)


def _joined(principal: pd.Series, others: pd.Series) -> np.ndarray:
    first = principal.fillna("").astype(str).to_numpy(dtype=object)
    rest = others.fillna("").astype(str).to_numpy(dtype=object)
    joined = np.where(rest != "", first + CODE_SEPARATOR + rest, first)
    return np.where(joined != "", joined, None)


def cut_at(daily: pd.DataFrame, date_column: str, census: np.datetime64) -> pd.DataFrame:
    """The rows recorded by the end of the census day."""
    return daily[daily[date_column].to_numpy() <= census].reset_index(drop=True)


def daily_records(
    cases: pd.DataFrame, in_hospital: pd.DataFrame, census: np.datetime64, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The daily charges and in-stay records of the discharged stays (``cases``, as generated, before
    any corruption) and of the stays still in hospital, cut at the end of the census day."""
    stays = pd.concat([cases, in_hospital], ignore_index=True) if len(in_hospital) else cases
    surgery = surgery_days(stays, rng)
    day = np.datetime64(census, "ns")
    charges = cut_at(daily_charges(stays, surgery, rng), "charge_date", day)
    return charges, cut_at(coding_so_far(stays, surgery, rng), "recorded_date", day)


def write_daily(
    tables: dict[str, pd.DataFrame], in_hospital: pd.DataFrame, out: Path, fmt: str
) -> list[Path]:
    """charges and inpatients (Parquet, or CSV for the CSV formats) and in_hospital_final.parquet."""
    paths = []
    for name, frame in tables.items():
        if fmt == "parquet":
            paths.append(out / f"{name}.parquet")
            frame.to_parquet(paths[-1], index=False)
        else:
            paths.append(out / f"{name}.csv")
            frame.to_csv(paths[-1], index=False, encoding="utf-8")
    if len(in_hospital):
        paths.append(out / "in_hospital_final.parquet")
        in_hospital.drop(columns="los_days").to_parquet(paths[-1], index=False)
    return paths
