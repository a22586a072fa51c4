"""The feature catalogue: every shared case feature, declared as a view of :mod:`features.view`.

Nine views, by stage: at admission ``demographics``, ``admission``, ``calendar`` and
``patient_history``; at discharge ``stay``, ``coding``, ``casemix``, ``costs`` and ``comorbidity``.
Each registers in :data:`VIEWS` at import, where the stage guard checks it; ``docs/features.md`` is
generated from this registry (:mod:`features.docs`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from casemix.cases import CANONICAL_INPUT_COLUMNS
from contract.fields import COST_CATEGORIES, FIELD_BY_NAME
from features import codes, comorbidity
from features.encoding import factorize_column
from features.history import WINDOWS
from features.view import Columns, Feature, FeatureContext, FeatureView, ViewRegistry

VIEWS = ViewRegistry()
"""The registered views: these nine, then any a model declares for itself (``coding_audit``)."""

# ---------------------------------------------------------------------------------------------------
# helpers


Column = pd.Series | np.ndarray | pd.api.extensions.ExtensionArray


def _code_text(values: Column) -> np.ndarray:
    """A coded integer field (sex, payer, route...) as text levels ("1"), None when missing or not a code.

    The helpers take and return arrays, not Series: the views' columns make one frame, and a Series
    per column is pandas' per-call cost that a single served case pays in full."""
    positions, distinct = factorize_column(values)
    kind = distinct.dtype
    if pd.api.types.is_integer_dtype(kind) or pd.api.types.is_float_dtype(kind):
        # Numeric codes (what store frames hold) are read in plain Python: the same text as below
        # without the fixed cost of the pandas calls, which dominates for a single case.
        whole = [str(int(v)) if v % 1 == 0 else None for v in distinct.tolist()]
        text = np.array([*whole, None], dtype=object)
        return text[positions]
    number = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    whole = number.where(number % 1 == 0)  # 1.0 reads as "1"; 1.5 is no code
    text = np.append(whole.map(lambda v: None if pd.isna(v) else str(int(v))).to_numpy(dtype=object), None)
    return text[positions]


def _texts(values: Column) -> np.ndarray:
    """Text, None when missing or blank (a new array)."""
    text = np.array(values, dtype=object)
    text[pd.isna(text)] = None
    text[text == ""] = None
    return text


def _number(values: Column) -> np.ndarray:
    """float64, NaN when missing or not a number."""
    if not pd.api.types.is_numeric_dtype(values.dtype):  # numbers already: to_numeric would return them
        values = pd.to_numeric(values, errors="coerce")
    if isinstance(values, np.ndarray):
        return values.astype(np.float64)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


# ---------------------------------------------------------------------------------------------------
# admission stage


def _demographics(cases: Columns, context: FeatureContext) -> Columns:
    return {
        "age_years": _number(cases["age_years"]),
        "age_days": _number(cases["age_days"]),
        "birth_weight_g": _number(cases["birth_weight_g"]),
        "sex": _code_text(cases["sex"]),
        "insurance_type": _code_text(cases["insurance_type"]),
    }


VIEWS.register(
    FeatureView(
        name="demographics",
        entity="case",
        stage="admission",
        description="who the patient is at admission",
        features=(
            Feature("age_years", "年龄(岁)", "age in years", ("age_years",)),
            Feature("age_days", "年龄不足1周岁的天数", "age in days (infants)", ("age_days",)),
            Feature(
                "birth_weight_g",
                "新生儿出生体重(克)",
                "birth weight in grams (newborns)",
                ("birth_weight_g",),
            ),
            Feature("sex", "性别", "sex", ("sex",), "categorical"),
            Feature("insurance_type", "医疗付费方式", "payer", ("insurance_type",), "categorical"),
        ),
        compute=_demographics,
    )
)


def _admission(cases: Columns, context: FeatureContext) -> Columns:
    planned = _texts(cases["planned_procedure"])
    diagnosis = np.asarray(cases["admission_diagnosis"], dtype=object)
    return {
        "admission_source": _code_text(cases["admission_source"]),
        "admission_type": _code_text(cases["admission_type"]),
        "department": _texts(cases["department"]),
        "admission_diagnosis_category": codes.icd10_category(diagnosis),
        "admission_diagnosis_chapter": codes.icd10_chapter(diagnosis),
        "planned_procedure_section": codes.icd9cm3_section(planned),
        "has_planned_procedure": pd.notna(planned).astype("float64"),
    }


VIEWS.register(
    FeatureView(
        name="admission",
        entity="case",
        stage="admission",
        description="how and why the patient is admitted",
        features=(
            Feature("admission_source", "入院途径", "admission route", ("admission_source",), "categorical"),
            Feature("admission_type", "入院类型", "admission type", ("admission_type",), "categorical"),
            Feature("department", "入院科别", "admitting department", ("department",), "categorical"),
            Feature(
                "admission_diagnosis_category",
                "门(急)诊诊断类目(3位)",
                "admission diagnosis, ICD-10 category",
                ("admission_diagnosis",),
                "categorical",
            ),
            Feature(
                "admission_diagnosis_chapter",
                "门(急)诊诊断章",
                "admission diagnosis, ICD-10 chapter",
                ("admission_diagnosis",),
                "categorical",
            ),
            Feature(
                "planned_procedure_section",
                "拟行手术操作(2位类目)",
                "planned procedure, ICD-9-CM-3 section",
                ("planned_procedure",),
                "categorical",
            ),
            Feature(
                "has_planned_procedure", "有拟行手术操作", "a procedure is planned", ("planned_procedure",)
            ),
        ),
        compute=_admission,
    )
)


def _calendar(cases: Columns, context: FeatureContext) -> Columns:
    # Calendar fields from the day numbers (a DatetimeIndex's fields cost a served case more).
    day = np.asarray(cases["admission_date"], dtype="datetime64[D]")
    missing = np.isnat(day)
    month = (day.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype("float64")
    weekday = ((day.astype(np.int64) + 3) % 7).astype("float64")  # 1970-01-01 was a Thursday (3)
    month[missing] = weekday[missing] = np.nan
    return {"admission_month": month, "admission_quarter": (month - 1) // 3 + 1, "admission_weekday": weekday}


VIEWS.register(
    FeatureView(
        name="calendar",
        entity="case",
        stage="admission",
        description="when the patient is admitted: seasonality (winter respiratory load) and weekday",
        features=(
            Feature("admission_month", "入院月份", "admission month", ("admission_date",)),
            Feature("admission_quarter", "入院季度", "admission quarter", ("admission_date",)),
            Feature(
                "admission_weekday", "入院星期(0=周一)", "admission weekday (0 = Monday)", ("admission_date",)
            ),
        ),
        compute=_calendar,
    )
)

_HISTORY_KEYS = ("patient_id", "admission_date")
_PRIOR = ("admission_date", "discharge_date")


def _history_features() -> tuple[Feature, ...]:
    out = [
        Feature(
            "prior_admissions",
            "既往住院次数",
            "earlier admissions, all time",
            _HISTORY_KEYS,
            prior_sources=_PRIOR,
        ),
    ]
    for w in WINDOWS:
        out += [
            Feature(
                f"prior_admissions_{w}d",
                f"既往{w}天住院次数",
                f"admissions in previous {w} days",
                _HISTORY_KEYS,
                prior_sources=_PRIOR,
            ),
            Feature(
                f"prior_cost_{w}d",
                f"既往{w}天住院总费用",
                f"inpatient charges in previous {w} days",
                _HISTORY_KEYS,
                prior_sources=(*_PRIOR, "total_cost"),
            ),
            Feature(
                f"prior_los_days_{w}d",
                f"既往{w}天住院总天数",
                f"inpatient days in previous {w} days",
                _HISTORY_KEYS,
                prior_sources=(*_PRIOR, "los_days"),
            ),
            Feature(
                f"prior_readmissions_{w}d",
                f"既往{w}天30天内再入院次数",
                f"30-day readmissions in previous {w} days",
                _HISTORY_KEYS,
                prior_sources=_PRIOR,
            ),
            Feature(
                f"prior_emergency_admissions_{w}d",
                f"既往{w}天急诊入院次数",
                f"emergency admissions (ED visits) in previous {w} days",
                _HISTORY_KEYS,
                prior_sources=(*_PRIOR, "admission_source"),
            ),
        ]
    diagnoses = (*_PRIOR, "principal_diagnosis", "other_diagnoses")
    out += [
        Feature(
            "days_since_last_discharge",
            "距上次出院天数",
            "days since last discharge",
            _HISTORY_KEYS,
            prior_sources=_PRIOR,
        ),
        Feature(
            "prior_charlson_conditions",
            "既往慢性病(Charlson)种数",
            "chronic (Charlson) conditions seen before",
            _HISTORY_KEYS,
            prior_sources=diagnoses,
        ),
        Feature(
            "prior_charlson_index",
            "既往Charlson合并症指数",
            "Charlson index from earlier stays",
            _HISTORY_KEYS,
            prior_sources=diagnoses,
        ),
    ]
    return tuple(out)


def _patient_history(cases: Columns, context: FeatureContext) -> Columns:
    prior = context.prior
    mask = np.asarray(prior["prior_condition_mask"])
    out = {name: np.asarray(column) for name, column in prior.items() if name != "prior_condition_mask"}
    out["prior_charlson_conditions"] = comorbidity.condition_count(mask)
    out["prior_charlson_index"] = comorbidity.charlson_index(mask)
    return out


VIEWS.register(
    FeatureView(
        name="patient_history",
        entity="patient",
        stage="admission",
        description="earlier stays known at admission: discharged on or before the admission day",
        features=_history_features(),
        compute=_patient_history,
    )
)

# ---------------------------------------------------------------------------------------------------
# discharge stage


def _stay(cases: Columns, context: FeatureContext) -> Columns:
    planned = pd.Series(cases["readmission_plan_31d"], copy=False).astype("boolean").astype("Float64")
    return {
        "los_days": _number(cases["los_days"]),
        "discharge_disposition": _code_text(cases["discharge_disposition"]),
        "discharge_department": _texts(cases["discharge_department"]),
        "readmission_planned": _number(planned),
    }


VIEWS.register(
    FeatureView(
        name="stay",
        entity="case",
        stage="discharge",
        description="how the stay ended",
        features=(
            Feature("los_days", "实际住院天数", "length of stay (days)", ("los_days",)),
            Feature(
                "discharge_disposition",
                "离院方式",
                "discharge disposition",
                ("discharge_disposition",),
                "categorical",
            ),
            Feature(
                "discharge_department",
                "出院科别",
                "discharging department",
                ("discharge_department",),
                "categorical",
            ),
            Feature(
                "readmission_planned",
                "出院31天内再住院计划",
                "readmission within 31 days planned",
                ("readmission_plan_31d",),
            ),
        ),
        compute=_stay,
    )
)


def _chapter_feature(row: pd.Series) -> Feature:
    return Feature(
        f"secondary_diagnoses_chapter_{row['chapter']}",
        f"其他诊断第{row['chapter']}章({row['zh']})个数",
        f"secondary diagnoses in ICD-10 chapter {row['chapter']} ({row['en']})",
        ("other_diagnoses",),
    )


def _coding(cases: Columns, context: FeatureContext) -> Columns:
    principal = np.asarray(cases["principal_diagnosis"], dtype=object)
    principal_procedure = _texts(cases["principal_procedure"])
    n = len(principal)
    procedures = pd.notna(principal_procedure) + codes.code_count(cases["other_procedures"])
    rows, secondary = codes.explode_codes(cases["other_diagnoses"])
    chapter = codes.icd10_chapter(np.asarray(secondary, dtype=object))
    chapters = codes.icd10_chapters()["chapter"]
    level = pd.Categorical(chapter, categories=chapters).codes
    known = level >= 0
    counts = np.bincount(rows[known] * len(chapters) + level[known], minlength=n * len(chapters)).reshape(
        n, len(chapters)
    )
    proc_rows, proc_codes = codes.explode_codes(principal_procedure, cases["other_procedures"])
    is_or = pd.Series(proc_codes).isin(context.tables.or_procedures).to_numpy()
    has_or = np.bincount(proc_rows[is_or], minlength=n) > 0
    out = {
        "principal_diagnosis_category": codes.icd10_category(principal),
        "principal_diagnosis_chapter": codes.icd10_chapter(principal),
        "diagnosis_count": (pd.notna(_texts(principal)) + codes.code_count(cases["other_diagnoses"])).astype(
            "float64"
        ),
        "principal_procedure_section": codes.icd9cm3_section(principal_procedure),
        "procedure_count": procedures.astype("float64"),
        "has_or_procedure": has_or.astype("float64"),
    }
    for i, ch in enumerate(chapters):
        out[f"secondary_diagnoses_chapter_{ch}"] = counts[:, i].astype("float64")
    return out


VIEWS.register(
    FeatureView(
        name="coding",
        entity="case",
        stage="discharge",
        description="the coded diagnoses and procedures, rolled up",
        features=(
            Feature(
                "principal_diagnosis_category",
                "主要诊断类目(3位)",
                "principal diagnosis, ICD-10 category",
                ("principal_diagnosis",),
                "categorical",
            ),
            Feature(
                "principal_diagnosis_chapter",
                "主要诊断章",
                "principal diagnosis, ICD-10 chapter",
                ("principal_diagnosis",),
                "categorical",
            ),
            Feature(
                "diagnosis_count",
                "诊断个数",
                "number of diagnoses",
                ("principal_diagnosis", "other_diagnoses"),
            ),
            Feature(
                "principal_procedure_section",
                "主要手术操作(2位类目)",
                "principal procedure, ICD-9-CM-3 section",
                ("principal_procedure",),
                "categorical",
            ),
            Feature(
                "procedure_count",
                "手术操作个数",
                "number of procedures",
                ("principal_procedure", "other_procedures"),
            ),
            Feature(
                "has_or_procedure",
                "有手术室手术",
                "an operating-room procedure was done",
                ("principal_procedure", "other_procedures"),
            ),
            *(_chapter_feature(row) for _, row in codes.icd10_chapters().iterrows()),
        ),
        compute=_coding,
    )
)

_GROUPER_SOURCES = CANONICAL_INPUT_COLUMNS


def _casemix(cases: Columns, context: FeatureContext) -> Columns:
    groups = context.casemix.group(pd.DataFrame(dict(cases.items())))  # the grouper reads a frame
    weights = context.weights
    rw = np.full(len(groups), np.nan)
    if weights is not None:
        table = weights.set_index("drg") if "drg" in weights.columns else weights
        rw = groups["drg"].map(table["rw"]).astype("float64").to_numpy()
    grouped = groups["drg"].notna() & (groups["drg"] != "0000")
    return {
        "mdc": _texts(groups["mdc"]),
        "adrg": _texts(groups["adrg"]),
        "drg": _texts(groups["drg"]),
        "grouped": grouped.astype("float64").to_numpy(),
        "rw": rw,
        "mcc_count": _number(groups["mcc_count"]),
        "cc_count": _number(groups["cc_count"]),
    }


VIEWS.register(
    FeatureView(
        name="casemix",
        entity="case",
        stage="discharge",
        description="the CHS-DRG group of the coded case and its relative weight",
        features=(
            Feature(
                "mdc", "主要诊断大类(MDC)", "major diagnostic category (MDC)", _GROUPER_SOURCES, "categorical"
            ),
            Feature("adrg", "核心疾病诊断相关组(ADRG)", "core DRG (ADRG)", _GROUPER_SOURCES, "categorical"),
            Feature("drg", "疾病诊断相关分组(DRG)", "DRG", _GROUPER_SOURCES, "categorical"),
            Feature("grouped", "入组", "grouped into a DRG", _GROUPER_SOURCES),
            Feature("rw", "DRG权重(RW)", "DRG relative weight (RW)", _GROUPER_SOURCES),
            Feature("mcc_count", "严重并发症/合并症(MCC)个数", "number of MCCs", _GROUPER_SOURCES),
            Feature("cc_count", "一般并发症/合并症(CC)个数", "number of CCs", _GROUPER_SOURCES),
        ),
        compute=_casemix,
    )
)


def _costs(cases: Columns, context: FeatureContext) -> Columns:
    total = _number(cases["total_cost"])
    out = {"total_cost": total}
    safe_total = np.where(total > 0, total, np.nan)
    for name in COST_CATEGORIES:
        out[name] = _number(cases[name])
        out[f"{name}_share"] = out[name] / safe_total
    return out


def _cost_features() -> tuple[Feature, ...]:
    total = FIELD_BY_NAME["total_cost"]
    out = [Feature("total_cost", total.zh, "total charges (yuan)", ("total_cost",))]
    for name in COST_CATEGORIES:
        field = FIELD_BY_NAME[name]
        out.append(Feature(name, f"{field.zh}费用", f"{field.en} charges (yuan)", (name,)))
        out.append(
            Feature(
                f"{name}_share", f"{field.zh}费用占比", f"{field.en} share of charges", (name, "total_cost")
            )
        )
    return tuple(out)


VIEWS.register(
    FeatureView(
        name="costs",
        entity="case",
        stage="discharge",
        description="charges of the stay in the abstract's ten groups and their shares",
        features=_cost_features(),
        compute=_costs,
    )
)


def _comorbidity(cases: Columns, context: FeatureContext) -> Columns:
    current = comorbidity.condition_masks(cases["principal_diagnosis"], cases["other_diagnoses"])
    prior = np.asarray(context.prior["prior_condition_mask"])
    return {
        "charlson_conditions": comorbidity.condition_count(current),
        "charlson_index": comorbidity.charlson_index(current | prior),
    }


VIEWS.register(
    FeatureView(
        name="comorbidity",
        entity="case",
        stage="discharge",
        description="Charlson comorbidity (Quan 2005 ICD-10 coding) of the stay, earlier stays included",
        features=(
            Feature(
                "charlson_conditions",
                "本次住院Charlson合并症种数",
                "Charlson conditions coded in this stay",
                ("principal_diagnosis", "other_diagnoses"),
            ),
            Feature(
                "charlson_index",
                "Charlson合并症指数(含既往)",
                "Charlson index, this and earlier stays",
                ("principal_diagnosis", "other_diagnoses", "patient_id", "admission_date"),
                prior_sources=("discharge_date", "principal_diagnosis", "other_diagnoses"),
            ),
        ),
        compute=_comorbidity,
    )
)
