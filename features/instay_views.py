"""The in-stay feature views: what is known about a stay in hospital by the end of day d.

Declared at stage ``in_stay`` with the cut day (``as_of_date``) as their timestamp, so the views'
stage check covers them like the others: a feature reading a discharge field (``discharge_date``, the
abstract's ``cost_consumables``, ``principal_diagnosis``…) cannot even be declared here. They read the
frame :func:`features.instay.cut_stays` builds, which holds nothing recorded after the day. Registered
with ``shared=False``: :class:`features.instay.InstayFeatures` joins them (with the admission views),
the admission and discharge stages of ``CaseFeatures`` do not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.fields import COST_CATEGORIES, FIELD_BY_NAME, split_codes
from features import codes
from features.catalog import VIEWS
from features.view import Columns, Feature, FeatureContext, FeatureView

TIMESTAMP = "as_of_date"
DRUG_GROUPS = ("cost_western_drugs", "cost_chinese_drugs")


def _to_date_name(group: str) -> str:
    return f"{group}_to_date"


def _numbers(stays: Columns, name: str) -> np.ndarray:
    return np.asarray(stays[name], dtype=np.float64)


def _charges(stays: Columns, context: FeatureContext) -> Columns:
    day = _numbers(stays, "day_of_stay")
    total = _numbers(stays, "charges_to_date")
    per_day = total / day
    recent = _numbers(stays, "charges_last_3_days") / np.minimum(day, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        trend = np.where(per_day > 0, recent / per_day, np.nan)
        drugs = sum(_numbers(stays, f"charges.{g}") for g in DRUG_GROUPS) / total
        consumables = _numbers(stays, "charges.cost_consumables") / total
    columns = {_to_date_name(g): _numbers(stays, f"charges.{g}") for g in COST_CATEGORIES}
    return columns | {
        "charges_to_date": total,
        "charges_per_day": per_day,
        "charges_last_day": _numbers(stays, "charges_last_day"),
        "charges_trend": trend,
        "drug_share_to_date": np.where(total > 0, drugs, np.nan),
        "consumables_share_to_date": np.where(total > 0, consumables, np.nan),
    }


INSTAY_CHARGES = VIEWS.register(
    FeatureView(
        name="instay_charges",
        entity="case",
        stage="in_stay",
        description="charges to date by group and their trajectory, at the end of the day",
        features=(
            *(
                Feature(
                    _to_date_name(g),
                    f"累计{FIELD_BY_NAME[g].zh}",
                    f"{FIELD_BY_NAME[g].en} to date",
                    (f"charges.{g}",),
                )
                for g in COST_CATEGORIES
            ),
            Feature("charges_to_date", "累计总费用", "charges to date", ("charges_to_date",)),
            Feature(
                "charges_per_day", "日均费用", "charges per day so far", ("charges_to_date", "day_of_stay")
            ),
            Feature("charges_last_day", "当日费用", "charges on the day", ("charges_last_day",)),
            Feature(
                "charges_trend",
                "近3日费用趋势",
                "last 3 days' daily charges over the stay's daily mean",
                ("charges_last_3_days", "charges_to_date", "day_of_stay"),
            ),
            Feature(
                "drug_share_to_date",
                "药占比(累计)",
                "drug share of charges to date",
                (*(f"charges.{g}" for g in DRUG_GROUPS), "charges_to_date"),
            ),
            Feature(
                "consumables_share_to_date",
                "耗占比(累计)",
                "consumables share of charges to date",
                ("charges.cost_consumables", "charges_to_date"),
            ),
        ),
        compute=_charges,
        timestamp=TIMESTAMP,
        shared=False,
    )
)


def _first(values: np.ndarray) -> np.ndarray:
    """The first code of each code list (None for an empty or missing list)."""
    out = np.empty(len(values), dtype=object)
    out[:] = [codes[0] if (codes := split_codes(v)) else None for v in values]
    return out


def _count(values: np.ndarray) -> np.ndarray:
    return np.array([len(split_codes(v)) for v in values], dtype=np.float64)


def _progress(stays: Columns, context: FeatureContext) -> Columns:
    # On the columns' arrays, not Series: a one-stay request pays pandas' cost per operation.
    working = np.asarray(stays["working_diagnoses"], dtype=object)
    admitted = np.asarray(stays["admission_diagnosis"], dtype=object)
    first = _first(working)
    principal = np.where(pd.isna(first), admitted, first)
    changed = (principal != admitted) | pd.isna(principal) | pd.isna(admitted)  # pandas' != on None
    procedures = np.asarray(stays["procedures_so_far"], dtype=object)
    principal = principal.astype(object, copy=False)
    return {
        "day_of_stay": _numbers(stays, "day_of_stay"),
        "working_principal_category": codes.icd10_category(principal),
        "working_principal_chapter": codes.icd10_chapter(principal),
        "principal_changed": changed.astype("float64"),
        "working_diagnoses_count": _count(working),
        "procedures_so_far_count": _count(procedures),
        "procedure_so_far_section": codes.icd9cm3_section(_first(procedures)),
    }


INSTAY_PROGRESS = VIEWS.register(
    FeatureView(
        name="instay_progress",
        entity="case",
        stage="in_stay",
        description="day of stay and the diagnoses and procedures coded so far",
        features=(
            Feature("day_of_stay", "住院第几天", "day of stay", ("day_of_stay",)),
            Feature(
                "working_principal_category",
                "在院主要诊断类目(3位)",
                "working principal diagnosis, ICD-10 category",
                ("working_diagnoses", "admission_diagnosis"),
                "categorical",
            ),
            Feature(
                "working_principal_chapter",
                "在院主要诊断章",
                "working principal diagnosis, ICD-10 chapter",
                ("working_diagnoses", "admission_diagnosis"),
                "categorical",
            ),
            Feature(
                "principal_changed",
                "主要诊断已变更",
                "working principal differs from the admission diagnosis",
                ("working_diagnoses", "admission_diagnosis"),
            ),
            Feature(
                "working_diagnoses_count", "在院诊断数", "diagnoses coded so far", ("working_diagnoses",)
            ),
            Feature(
                "procedures_so_far_count", "已行手术操作数", "procedures done so far", ("procedures_so_far",)
            ),
            Feature(
                "procedure_so_far_section",
                "已行主要手术章节",
                "first procedure so far, ICD-9-CM-3 section",
                ("procedures_so_far",),
                "categorical",
            ),
        ),
        compute=_progress,
        timestamp=TIMESTAMP,
        shared=False,
    )
)


def _pregrouping(stays: Columns, context: FeatureContext) -> Columns:
    standard = _numbers(stays, "payment_standard")
    total = _numbers(stays, "charges_to_date")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(standard > 0, total / standard, np.nan)
    return {
        "pregroup_drg": np.asarray(stays["pregroup_drg"], dtype=object),
        "pregroup_adrg": np.asarray(stays["pregroup_adrg"], dtype=object),
        "pregroup_rw": _numbers(stays, "pregroup_rw"),
        "payment_standard": standard,
        "ratio_to_date": ratio,
        "standard_left": standard - total,
    }


INSTAY_PREGROUPING = VIEWS.register(
    FeatureView(
        name="instay_pregrouping",
        entity="case",
        stage="in_stay",
        description="the DRG the codes so far group to, its payment standard and the charges against it",
        features=(
            Feature("pregroup_drg", "预分组DRG", "pre-grouped DRG", ("pregroup_drg",), "categorical"),
            Feature("pregroup_adrg", "预分组ADRG", "pre-grouped ADRG", ("pregroup_adrg",), "categorical"),
            Feature("pregroup_rw", "预分组权重", "pre-grouped DRG's relative weight", ("pregroup_rw",)),
            Feature("payment_standard", "支付标准", "payment standard", ("payment_standard",)),
            Feature(
                "ratio_to_date",
                "费用/支付标准",
                "charges to date over the payment standard",
                ("charges_to_date", "payment_standard"),
            ),
            Feature(
                "standard_left",
                "距支付标准余额",
                "payment standard left after the charges to date",
                ("payment_standard", "charges_to_date"),
            ),
        ),
        compute=_pregrouping,
        timestamp=TIMESTAMP,
        shared=False,
    )
)

INSTAY_VIEWS: tuple[FeatureView, ...] = (INSTAY_CHARGES, INSTAY_PROGRESS, INSTAY_PREGROUPING)
