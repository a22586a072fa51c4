"""Deliberately corrupted records: a small share of rows, each breaking one ingestion check.

Every check ingestion runs is exercised (missing required field, bad type, value out of range or not
allowed, discharge before admission, missing age in days for an infant, duplicate case id, unknown
code, charge groups not adding up, negotiated drugs above western drugs, sex-specific diagnosis on
the other sex, audit fields inconsistent). The manifest lists row, case_id, check and field, so a
test can assert that ingestion rejects or warns about each one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

DIRTY_SHARE = 0.02
MANIFEST_COLUMNS = ("row", "case_id", "check", "field")


def _set(field: str, value: Callable[[pd.DataFrame, np.ndarray], object]):
    def apply(cases: pd.DataFrame, rows: np.ndarray) -> None:
        cases.loc[rows, field] = value(cases, rows)

    return apply


def _text(field: str, value: str):
    """A value of the wrong type: the column becomes text, as it would arrive in a raw export."""

    def apply(cases: pd.DataFrame, rows: np.ndarray) -> None:
        col = cases[field].astype(object)
        cases[field] = col.where(col.isna(), col.astype(str)).astype(object)
        cases.loc[rows, field] = value

    return apply


def _duplicate(cases: pd.DataFrame, rows: np.ndarray) -> None:
    cases.loc[rows[1:], "case_id"] = cases.loc[rows[0], "case_id"]


def _infant_without_days(cases: pd.DataFrame, rows: np.ndarray) -> None:
    cases.loc[rows, "age_years"] = 0
    cases.loc[rows, "age_days"] = pd.NA


def _audit_without_audit(cases: pd.DataFrame, rows: np.ndarray) -> None:
    cases.loc[rows, ["audited", "audit_date"]] = [False, pd.NaT]
    cases.loc[rows, "audit_error"] = True


CORRUPTIONS: dict[str, tuple[str, Callable[[pd.DataFrame, np.ndarray], None]]] = {
    "missing_required": ("principal_diagnosis", _set("principal_diagnosis", lambda c, r: None)),
    "discharge_before_admission": (
        "discharge_date",
        _set("discharge_date", lambda c, r: c.loc[r, "admission_date"] - pd.Timedelta(days=3)),
    ),
    "out_of_range": ("age_years", _set("age_years", lambda c, r: 150)),
    "not_allowed": ("discharge_disposition", _set("discharge_disposition", lambda c, r: 7)),
    "age_days_missing": ("age_days", _infant_without_days),
    "duplicate_case_id": ("case_id", _duplicate),
    "unknown_code": ("principal_diagnosis", _set("principal_diagnosis", lambda c, r: "X99.999")),
    "costs_not_adding_up": (
        "total_cost",
        _set("total_cost", lambda c, r: (c.loc[r, "total_cost"] * 1.2).round(2)),
    ),
    "negotiated_over_western": (
        "cost_negotiated_drugs",
        _set("cost_negotiated_drugs", lambda c, r: c.loc[r, "cost_western_drugs"] + 500.0),
    ),
    "sex_specific": ("principal_diagnosis", _set("principal_diagnosis", lambda c, r: "O80.000")),
    "audit_inconsistent": ("audit_error", _audit_without_audit),
    "bad_type": ("admission_source", _text("admission_source", "急诊入院")),
}


def corrupt(cases: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A copy of ``cases`` with about 2% of rows corrupted, one check per row, and the manifest."""
    out = cases.copy()
    per_check = max(2, int(len(cases) * DIRTY_SHARE / len(CORRUPTIONS)))
    male = np.flatnonzero(out["sex"].to_numpy() == 1)
    male = rng.permutation(male)[:per_check]
    others = rng.permutation(np.setdiff1d(np.arange(len(out)), male))
    manifest, start = [], 0
    for check, (field, apply) in CORRUPTIONS.items():
        if check == "sex_specific":
            rows = male
        else:
            rows, start = np.sort(others[start : start + per_check]), start + per_check
        apply(out, rows)
        manifest.append(pd.DataFrame({"row": rows, "check": check, "field": field}))
    found = pd.concat(manifest, ignore_index=True)
    found.insert(1, "case_id", out["case_id"].to_numpy()[found["row"].to_numpy()])
    return out, found[list(MANIFEST_COLUMNS)]
