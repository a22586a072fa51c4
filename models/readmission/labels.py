"""The 30-day unplanned readmission label and the split-hospitalisation (分解住院) flag, from case histories.

Every discharged stay is an *index stay*. Its label is 1 when the same patient has at least one
**unplanned** admission to this hospital admitted 0-30 days after the index discharge date (an
admission on the discharge day counts), 0 otherwise. The rules, all in :class:`ReadmissionRules`:

- **Planned readmissions do not count.** A readmission is planned when
  (a) its principal diagnosis starts with a planned-care prefix: Z51 (chemotherapy, radiotherapy and
  other planned sessions: Z51.0 radiotherapy, Z51.1/Z51.2 chemotherapy cycles), Z50 (planned
  rehabilitation), Z47.0 (staged removal of fracture fixation); or
  (b) the index stay recorded a planned readmission within 31 days (``readmission_plan_31d``, the
  abstract's 出院31天内再住院计划: staged procedures, next cycle) and the readmission is elective or a
  day case (``admission_type`` 1 or 3). An *emergency* readmission after a planned-return stay is
  still unplanned: the plan did not foresee it.
- **Index stays that cannot be followed are not labels**: the patient died (离院方式 5), or was
  transferred to another hospital (离院方式 2; the readmission, if any, is that hospital's). Transfers
  to a community or township facility (3) stay labels: care continues nearby and a return to this
  hospital is exactly what the indicator watches. Stays left against advice (4) stay labels too.
- **Censoring**: an index stay needs 30 days of follow-up, so stays discharged less than 30 days
  before the data's end (by default the last discharge date in the data) are not labels. Stays still
  open at the data's end are not in the abstracts at all; they would only make the last month's
  labels slightly low, which this censoring also covers.
- **Other departments**: readmissions to *any* department count (the national indicator is
  hospital-wide: a surgical patient readmitted to internal medicine with a complication is the case
  it exists for). ``readmitted_same_department`` is returned beside it for departments' own reviews.

**Split hospitalisation** (分解住院, a compliance screen, not part of the label): a stay followed within
15 days by an admission of the same patient grouped into the same ADRG, planned-care principals (a)
excepted, is flagged ``split_suspect_15d`` for the insurance office to review, whatever the plan flag
says (a plan flag is exactly how a split would be disguised).

All counts are vectorised: each patient (or patient-ADRG pair) is an integer block and each index
stay's window one :func:`features.point_in_time.as_of` look-up over the block's admissions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from contract.errors import InputError
from contract.fields import ADMISSION_TYPE_BY_SOURCE
from features.point_in_time import Timeline, as_of, day_numbers

LABEL = "readmitted_30d"
STATUSES = ("label", "censored", "died", "transferred")


@dataclass(frozen=True)
class ReadmissionRules:
    """Every choice of the label, so a hospital or a city can change it in one place."""

    window_days: int = 30
    split_window_days: int = 15
    planned_principal_prefixes: tuple[str, ...] = ("Z51", "Z50", "Z47.0")
    elective_admission_types: tuple[int, ...] = (1, 3)
    excluded_dispositions: tuple[tuple[int, str], ...] = ((5, "died"), (2, "transferred"))


def _count_within(
    block: np.ndarray, day: np.ndarray, counted: np.ndarray, lo: np.ndarray, width: int
) -> np.ndarray:
    """Per row: admissions of the same block flagged ``counted`` admitted in [lo, lo + width] days,
    the row's own admission excluded (the admissions known at lo + width, looking back ``width``)."""
    admissions = Timeline.of(block[counted], day[counted])
    first, last = as_of(admissions, block, lo + width, rule="at_or_before", lookback=width)
    found = last - first
    own = counted & (day >= lo) & (day <= lo + width)
    return found - own.astype(np.int64)


def _blocks(*columns: pd.Series) -> np.ndarray:
    """One integer per distinct combination of the columns' values (missing values are a value)."""
    frame = pd.DataFrame({i: c.to_numpy(dtype=object) for i, c in enumerate(columns)})
    return frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy(np.int64)


def admission_types(cases: pd.DataFrame) -> pd.Series:
    """``admission_type``, a missing one read from ``admission_source`` the way ingestion derives it."""
    found = pd.to_numeric(cases["admission_type"], errors="coerce")
    if "admission_source" in cases.columns:
        source = pd.to_numeric(cases["admission_source"], errors="coerce")
        found = found.fillna(source.map(ADMISSION_TYPE_BY_SOURCE))
    return found


def planned_principal(principal: pd.Series, rules: ReadmissionRules = ReadmissionRules()) -> np.ndarray:
    """Whether each stay's principal diagnosis is planned care (chemo/radiotherapy, rehabilitation...)."""
    text = principal.astype(object).where(principal.notna(), "").astype(str).str.strip().str.upper()
    return text.str.startswith(rules.planned_principal_prefixes).to_numpy()


def readmission_labels(
    cases: pd.DataFrame,
    rules: ReadmissionRules = ReadmissionRules(),
    data_end: pd.Timestamp | None = None,
    adrg: pd.Series | None = None,
) -> pd.DataFrame:
    """Label, status and flags of every case as an index stay (same index as ``cases``).

    Columns: ``readmitted_30d`` (1.0 / 0.0, NaN when the stay is not a label), ``label_status``
    (one of ``STATUSES``), ``readmitted_same_department`` (same rules, same department only, NaN
    when not a label) and, when ``adrg`` (the stays' ADRG) is given, ``split_suspect_15d``.
    """
    needed = (
        "patient_id",
        "admission_date",
        "discharge_date",
        "department",
        "principal_diagnosis",
        "admission_type",
        "discharge_disposition",
        "readmission_plan_31d",
    )
    missing = [c for c in needed if c not in cases.columns]
    if missing:
        raise InputError(f"readmission labels need column(s) {', '.join(missing)}")
    for name in ("patient_id", "admission_date", "discharge_date"):
        bad = cases[name].isna().to_numpy()
        if bad.any():
            raise InputError(f"row {cases.index[bad][0]}: {name} is missing ({int(bad.sum())} rows)")

    admitted = day_numbers(cases["admission_date"])
    discharged = day_numbers(cases["discharge_date"])
    end = cases["discharge_date"].max() if data_end is None else pd.Timestamp(data_end)
    end_day = day_numbers(pd.Series([end]))[0]

    patient = _blocks(cases["patient_id"])
    intrinsic = ~planned_principal(cases["principal_diagnosis"], rules)
    emergency = ~admission_types(cases).isin(rules.elective_admission_types)
    unplanned_after_plan = intrinsic & emergency.to_numpy()
    plan = cases["readmission_plan_31d"].astype("boolean").fillna(False).to_numpy(dtype=bool)

    def readmitted(block: np.ndarray) -> np.ndarray:
        any_unplanned = _count_within(block, admitted, intrinsic, discharged, rules.window_days)
        after_plan = _count_within(block, admitted, unplanned_after_plan, discharged, rules.window_days)
        return np.where(plan, after_plan, any_unplanned) > 0

    status = np.full(len(cases), "label", dtype=object)
    status[discharged + rules.window_days > end_day] = "censored"
    disposition = pd.to_numeric(cases["discharge_disposition"], errors="coerce").to_numpy()
    for code, name in rules.excluded_dispositions:
        status[disposition == code] = name
    labelled = status == "label"

    same_department = _blocks(cases["patient_id"], cases["department"])
    out = pd.DataFrame(
        {
            LABEL: np.where(labelled, readmitted(patient).astype(np.float64), np.nan),
            "label_status": pd.Categorical(status, categories=STATUSES),
            "readmitted_same_department": np.where(
                labelled, readmitted(same_department).astype(np.float64), np.nan
            ),
        },
        index=cases.index,
    )
    if adrg is not None:
        pair = _blocks(cases["patient_id"], adrg)
        grouped = adrg.notna().to_numpy() & ~adrg.isin(["00", "0000"]).to_numpy()
        split = _count_within(pair, admitted, intrinsic & grouped, discharged, rules.split_window_days)
        out["split_suspect_15d"] = (split > 0) & grouped
    return out
