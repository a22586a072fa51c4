"""The canonical case-history contract: one row per inpatient episode.

Every other part of caselens reads the canonical store written by ingestion, so this module is the
single place that says which columns exist, their types, whether they are required, the moment each
becomes known (``stage``) and the Chinese discharge-abstract (病案首页) label they come from.
The ``stage`` drives leakage control: a feature built for the admission stage may only use fields
whose stage is ``admission``. The data's shape lives here too: each field's pandas and Arrow types,
``canonical_frame`` (the one cast to them), ``los_days`` and the code-list format, so no reader
restates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Stage = Literal["admission", "in_stay", "discharge", "settlement", "audit"]
Kind = Literal["str", "int", "float", "date", "bool", "codes"]

# ``in_stay`` is the end of a day of the stay (contract.instay): after admission, before discharge.
STAGE_ORDER: dict[str, int] = {"admission": 0, "in_stay": 1, "discharge": 2, "settlement": 3, "audit": 4}
CODE_SEPARATOR = "|"
# Text computed by the casemix engine (groups, statuses, reasons, payment labels) and read from files:
# Arrow-backed, so a batch's text columns reach Arrow and Parquet without a conversion string by string.
TEXT = pd.StringDtype("pyarrow")
REPEAT_BLOCK = 65_536  # rows of one shared block in a column of one repeated text (``repeated_text``)
_AS_CATEGORIES: ContextVar[bool] = ContextVar("labels_as_categories", default=False)


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    stage: Stage
    required: bool
    zh: str
    en: str
    allowed: tuple[int | str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def dtype(self) -> object:
        """The pandas dtype of a stored (validated) value: a required whole number has no missing slot."""
        return "int64" if self.kind == "int" and self.required else self.nullable_dtype

    @property
    def nullable_dtype(self) -> object:
        """The pandas dtype before validation, when even a required value may still be missing."""
        return _PANDAS_TYPES[self.kind]

    @property
    def arrow_type(self) -> pa.DataType:
        """The Parquet (Arrow) type; nullability comes from ``required``."""
        return _ARROW_TYPES[self.kind]

    @property
    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, self.arrow_type, nullable=not self.required)


_PANDAS_TYPES: dict[str, object] = {
    "str": object,
    "codes": object,
    "int": "Int64",
    "float": "float64",
    "bool": "boolean",
    "date": "datetime64[ns]",
}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "codes": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.timestamp("ns"),
}


ADMISSION_SOURCES = {
    1: ("急诊", "emergency"),
    2: ("门诊", "outpatient"),
    3: ("其他医疗机构转入", "transfer in"),
    9: ("其他", "other"),
}
ADMISSION_TYPES = {1: ("择期", "elective"), 2: ("急诊/急症", "emergency"), 3: ("日间", "day case")}
# The national 病案首页 has no 入院类型: a stay admitted through the emergency route (入院途径 急诊) is an
# emergency admission, any other route elective (a day case cannot be told from the route).
ADMISSION_TYPE_BY_SOURCE = {1: 2, 2: 1, 3: 1, 9: 1}
SEXES = {1: ("男", "male"), 2: ("女", "female")}
DISCHARGE_DISPOSITIONS = {
    1: ("医嘱离院", "discharged on medical advice"),
    2: ("医嘱转院", "transferred to another hospital"),
    3: ("医嘱转社区/乡镇卫生院", "transferred to a community or township facility"),
    4: ("非医嘱离院", "left against medical advice"),
    5: ("死亡", "died"),
    9: ("其他", "other"),
}
INSURANCE_TYPES = {
    1: ("城镇职工基本医疗保险", "urban employee basic insurance"),
    2: ("城乡居民基本医疗保险", "urban and rural resident basic insurance"),
    3: ("新型农村合作医疗", "new rural cooperative medical scheme"),
    4: ("贫困救助", "poverty relief"),
    5: ("商业医疗保险", "commercial insurance"),
    6: ("全公费", "fully publicly funded"),
    7: ("全自费", "self-pay"),
    8: ("其他社会保险", "other social insurance"),
    9: ("其他", "other"),
}
AUDIT_ERROR_TYPES = {
    "missed_cc_mcc": ("漏编并发症/合并症", "missed CC/MCC"),
    "unsupported_cc_mcc": ("高编并发症/合并症", "unsupported CC/MCC"),
    "wrong_principal": ("主要诊断选择错误", "wrong principal diagnosis"),
    "missing_procedure": ("漏编手术操作", "missing procedure"),
}

# What each coded field's codes mean (Chinese, English), for messages, docs and readable explanations.
CODE_MEANINGS: dict[str, dict[int | str, tuple[str, str]]] = {
    "admission_source": ADMISSION_SOURCES,
    "admission_type": ADMISSION_TYPES,
    "sex": SEXES,
    "insurance_type": INSURANCE_TYPES,
    "discharge_disposition": DISCHARGE_DISPOSITIONS,
    "audit_error_type": AUDIT_ERROR_TYPES,
}

# The abstract's ten charge groups, in the abstract's order; they add up to total_cost.
COST_CATEGORIES: tuple[str, ...] = (
    "cost_general_services",
    "cost_diagnostics",
    "cost_treatment",
    "cost_rehabilitation",
    "cost_tcm",
    "cost_western_drugs",
    "cost_chinese_drugs",
    "cost_blood",
    "cost_consumables",
    "cost_other",
)

_cost = [
    ("cost_general_services", "综合医疗服务类", "general medical services"),
    ("cost_diagnostics", "诊断类", "diagnostics"),
    ("cost_treatment", "治疗类（含手术）", "treatment, surgery included"),
    ("cost_rehabilitation", "康复类", "rehabilitation"),
    ("cost_tcm", "中医类", "traditional Chinese medicine"),
    ("cost_western_drugs", "西药类", "western drugs"),
    ("cost_chinese_drugs", "中药类", "Chinese patent and herbal drugs"),
    ("cost_blood", "血液和血液制品类", "blood and blood products"),
    ("cost_consumables", "耗材类", "consumables"),
    ("cost_other", "其他类", "other"),
]

FIELDS: tuple[Field, ...] = (
    Field("case_id", "str", "admission", True, "住院号/病案号", "case (episode) id, unique"),
    Field("patient_id", "str", "admission", True, "患者ID", "patient id, stable across admissions"),
    Field(
        "hospital_id",
        "str",
        "admission",
        False,
        "医疗机构代码",
        "hospital id (optional; a store without it is one hospital)",
    ),
    Field("department", "str", "admission", True, "入院科别", "admitting department"),
    Field("admission_date", "date", "admission", True, "入院日期", "admission date"),
    Field(
        "admission_source", "int", "admission", True, "入院途径", "admission route", tuple(ADMISSION_SOURCES)
    ),
    Field(
        "admission_type",
        "int",
        "admission",
        False,
        "入院类型",
        "elective, emergency or day case (not on the national form: derived from 入院途径 when absent)",
        tuple(ADMISSION_TYPES),
    ),
    Field("sex", "int", "admission", True, "性别", "sex (GB/T 2261.1: 1 male, 2 female)", tuple(SEXES)),
    Field("age_years", "int", "admission", True, "年龄(岁)", "age in completed years", None, 0, 130),
    Field(
        "age_days",
        "int",
        "admission",
        False,
        "年龄不足1周岁的天数",
        "age in days, needed when age_years is 0",
        None,
        0,
        365,
    ),
    Field(
        "birth_weight_g",
        "float",
        "admission",
        False,
        "新生儿出生体重(克)",
        "birth weight in grams, newborns",
        None,
        200,
        8000,
    ),
    Field(
        "insurance_type",
        "int",
        "admission",
        True,
        "医疗付费方式",
        "payer (abstract code)",
        tuple(INSURANCE_TYPES),
    ),
    Field(
        "admission_diagnosis",
        "str",
        "admission",
        True,
        "门(急)诊诊断编码",
        "diagnosis known at admission (ICD-10)",
    ),
    Field(
        "planned_procedure",
        "str",
        "admission",
        False,
        "拟行手术操作编码",
        "planned procedure known at admission (ICD-9-CM-3)",
    ),
    Field("discharge_date", "date", "discharge", True, "出院日期", "discharge date"),
    Field("discharge_department", "str", "discharge", False, "出院科别", "discharging department"),
    Field(
        "principal_diagnosis", "str", "discharge", True, "主要诊断编码", "principal diagnosis (ICD-10 医保版)"
    ),
    Field(
        "other_diagnoses",
        "codes",
        "discharge",
        False,
        "其他诊断编码1..n",
        "secondary diagnoses, '|'-separated",
    ),
    Field(
        "principal_procedure",
        "str",
        "discharge",
        False,
        "主要手术操作编码",
        "principal procedure (ICD-9-CM-3 医保版)",
    ),
    Field(
        "other_procedures",
        "codes",
        "discharge",
        False,
        "其他手术操作编码1..n",
        "other procedures, '|'-separated",
    ),
    Field(
        "discharge_disposition",
        "int",
        "discharge",
        True,
        "离院方式",
        "discharge disposition",
        tuple(DISCHARGE_DISPOSITIONS),
    ),
    Field(
        "readmission_plan_31d",
        "bool",
        "discharge",
        False,
        "出院31天内再住院计划",
        "readmission within 31 days planned",
    ),
    Field("coder_id", "str", "discharge", False, "编码员", "coder who coded the abstract"),
    Field("total_cost", "float", "discharge", True, "总费用", "total charges (yuan)", None, 0, None),
    *(Field(n, "float", "discharge", True, zh, en, None, 0, None) for n, zh, en in _cost),
    Field(
        "cost_negotiated_drugs",
        "float",
        "discharge",
        False,
        "国谈药品费",
        "nationally negotiated drugs, part of western drugs",
        None,
        0,
        None,
    ),
    Field(
        "cost_new_technology",
        "float",
        "discharge",
        False,
        "新技术项目费",
        "new-technology items the insurer pays outside the DRG (新技术除外)",
        None,
        0,
        None,
    ),
    Field(
        "cost_self_funded",
        "float",
        "discharge",
        False,
        "全自费费用",
        "items outside the insurance catalogue, paid by the patient",
        None,
        0,
        None,
    ),
    Field(
        "cost_first_self_paid",
        "float",
        "discharge",
        False,
        "先行自付费用",
        "share of class-B items the patient pays first (先自付)",
        None,
        0,
        None,
    ),
    Field("settlement_date", "date", "settlement", False, "结算日期", "insurer settlement date"),
    Field("settled_drg", "str", "settlement", False, "结算DRG", "DRG the insurer settled"),
    Field(
        "insurer_payment",
        "float",
        "settlement",
        False,
        "医保支付金额",
        "insurer payment (yuan)",
        None,
        0,
        None,
    ),
    Field("self_pay", "float", "settlement", False, "个人自付", "patient self-pay (yuan)", None, 0, None),
    Field(
        "special_review", "bool", "settlement", False, "特病单议", "approved for special review: paid by item"
    ),
    Field(
        "review_deduction",
        "float",
        "settlement",
        False,
        "审核扣款",
        "insurer's review deduction on the case (yuan)",
        None,
        0,
        None,
    ),
    Field("audited", "bool", "audit", False, "是否审核", "abstract audited by coding QC"),
    Field("audit_date", "date", "audit", False, "审核日期", "audit date"),
    Field("audit_error", "bool", "audit", False, "审核发现错误", "audit found a coding error"),
    Field(
        "audit_error_type", "str", "audit", False, "错误类型", "coding error type", tuple(AUDIT_ERROR_TYPES)
    ),
    Field(
        "corrected_diagnoses",
        "codes",
        "audit",
        False,
        "更正诊断编码",
        "corrected diagnoses, principal first, '|'-separated",
    ),
    Field(
        "corrected_procedures",
        "codes",
        "audit",
        False,
        "更正手术操作编码",
        "corrected procedures, principal first, '|'-separated",
    ),
)

FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)
DIAGNOSIS_FIELDS = ("admission_diagnosis", "principal_diagnosis", "other_diagnoses", "corrected_diagnoses")
PROCEDURE_FIELDS = ("planned_procedure", "principal_procedure", "other_procedures", "corrected_procedures")

# Derived at ingestion, so every reader agrees on them.
DERIVED_FIELDS: tuple[Field, ...] = (
    Field(
        "los_days",
        "int",
        "discharge",
        True,
        "实际住院天数",
        "discharge_date - admission_date in days, a same-day stay counts 1",
        None,
        1,
        None,
    ),
)
DERIVED: dict[str, str] = {f.name: f"{f.zh}: {f.en}" for f in DERIVED_FIELDS}
DERIVED_STAGE: dict[str, Stage] = {f.name: f.stage for f in DERIVED_FIELDS}
STORE_FIELDS: tuple[Field, ...] = (*FIELDS, *DERIVED_FIELDS)
STORE_COLUMNS: tuple[str, ...] = tuple(f.name for f in STORE_FIELDS)
_STORE_FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in STORE_FIELDS}


def fields_known_at(stage: Stage) -> tuple[str, ...]:
    """Field names whose values are recorded no later than ``stage``."""
    limit = STAGE_ORDER[stage]
    return tuple(f.name for f in FIELDS if STAGE_ORDER[f.stage] <= limit)


def split_codes(value: str | None) -> list[str]:
    """Codes from a '|'-separated cell; empty or missing gives []."""
    if value is None or value != value or value == "":
        return []
    return [c for c in str(value).split(CODE_SEPARATOR) if c]


def code_lists(column: pd.Series | np.ndarray | pd.api.extensions.ExtensionArray | pa.Array) -> pa.ListArray:
    """Each cell's codes as an Arrow list, entries as written (a missing cell gives a null list).

    Split in Arrow: pandas' Python-level ``str.split`` is ten times slower on a million rows.
    """
    if not isinstance(column, pa.Array):
        column = pa.array(np.asarray(column, dtype=object), type=pa.string(), from_pandas=True)
    return pc.split_pattern(column, CODE_SEPARATOR)


def exploded_code_lists(column: pd.Series | pa.Array) -> pd.Series:
    """One entry per code, indexed by the row's position (0..n-1), blank entries dropped, as written."""
    lists = code_lists(column)
    flat, rows = pc.list_flatten(lists), pc.list_parent_indices(lists)
    keep = pc.not_equal(flat, "")
    return pd.Series(
        pd.arrays.ArrowStringArray(flat.filter(keep)), index=rows.filter(keep).to_numpy().astype(np.int64)
    )


def join_codes(codes: Iterable[str]) -> str | None:
    """A code list as a cell holds it: '|'-joined, blank entries dropped; no codes is missing (None)."""
    return CODE_SEPARATOR.join(c for c in codes if c) or None


def principal_and_others(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A principal-first code list split into the principal code and the others as a cell holds them
    ('|'-joined; missing where there are none), as the contract stores diagnoses and procedures."""
    lists = [split_codes(v) for v in column.to_numpy(dtype=object)]
    principal = pd.Series([c[0] if c else None for c in lists], index=column.index, dtype=object)
    others = pd.Series([join_codes(c[1:]) for c in lists], index=column.index, dtype=object)
    return principal, others


def coded_text(
    labels: Sequence[str | None] | pa.Array, codes: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a ``TEXT`` array (None is missing; a negative code counts from the end, as
    NumPy's indexing does), taken in Arrow from the few labels (fixed ones made once by
    :func:`text_labels`).

    A NumPy object column of a million labels cost ~40 ms more to write to Parquet than to build, per
    column: Arrow converts it string by string.
    """
    codes = np.where(codes < 0, codes + len(labels), codes)
    labels = labels if isinstance(labels, pa.Array) else text_labels(labels)
    if _AS_CATEGORIES.get():
        return _categories(labels, codes)
    return pd.arrays.ArrowStringArray(labels.take(pa.array(codes)))


@contextmanager
def labels_as_categories() -> Iterator[None]:
    """Within the block :func:`coded_text` and :func:`repeated_text` give the same labels as pandas
    categories, not ``TEXT``: for a batch written straight to Parquet as dictionaries of text
    (``pipelines.casefile``), whose steps take either. The labels keep their codes: on a million
    priced cases, 0.1 s less than taking ten columns of strings that the writer hashes again."""
    token = _AS_CATEGORIES.set(True)
    try:
        yield
    finally:
        _AS_CATEGORIES.reset(token)


def is_text_categories(column: pd.Series) -> bool:
    """Whether a column holds text as pandas categories (as :func:`labels_as_categories` makes it and
    a Parquet case file's small dictionaries are read)."""
    kind = column.dtype
    return isinstance(kind, pd.CategoricalDtype) and pd.api.types.is_string_dtype(kind.categories)


def _categories(labels: pa.Array, codes: np.ndarray) -> pd.Categorical:
    """``labels[codes]`` as categories: the distinct labels, in the order text sorts; None missing."""
    distinct = labels.dictionary_encode()
    order = pc.array_sort_indices(distinct.dictionary).to_numpy()
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1  # (a missing label)
    position = rank[pc.fill_null(distinct.indices, -1).to_numpy()]
    categories = pd.Index(distinct.dictionary.take(order).to_pylist(), dtype=object)
    return pd.Categorical.from_codes(np.take(position, codes), categories=categories)


def repeated_text(label: str | None, n: int) -> pd.api.extensions.ExtensionArray:
    """``label`` on ``n`` rows as a ``TEXT`` array (what ``coded_text([label], zeros)`` gives), its
    rows blocks of one shared Arrow array: a column with one value on a million priced cases cost
    24 MB and 6,000 first touches of memory as one array, for text written once per block."""
    if _AS_CATEGORIES.get():
        return _categories(text_labels([label]), np.zeros(n, dtype=np.int8))
    block = text_labels([label]).take(pa.array(np.zeros(min(n, REPEAT_BLOCK), dtype=np.int64)))
    chunks = [block] * (n // REPEAT_BLOCK) + ([block.slice(0, n % REPEAT_BLOCK)] if n % REPEAT_BLOCK else [])
    return pd.arrays.ArrowStringArray(pa.chunked_array(chunks, block.type))


def text_labels(labels: Sequence[str | None]) -> pa.Array:
    """Labels as :func:`coded_text` takes them, for labels fixed at start (a grouper's 629 DRG codes
    cost a one-stay grouping more to convert than to take its label)."""
    return pa.array(labels, pa.large_string())


def store_dtypes() -> dict[str, object]:
    """Every store column's pandas dtype, for readers that build empty columns or document them."""
    return {f.name: f.dtype for f in STORE_FIELDS}


def arrow_schema() -> pa.Schema:
    """The store's Parquet schema, fixed so a year with an all-empty column still has its column's type."""
    return pa.schema([f.arrow_field for f in STORE_FIELDS])


def canonical_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every contract column in its field's dtype; other columns pass through.

    The one place a frame takes the contract's shape (store reads, ingestion, the simulator, serving),
    so a model sees the same dtypes whichever path built its input. Returns ``frame`` itself when
    nothing needs a cast.
    """
    fields = {name: _STORE_FIELD_BY_NAME.get(name) for name in frame.columns}
    if all(f is None or frame[n].dtype == f.dtype for n, f in fields.items()):
        return frame
    columns = {
        name: column.array if fields[name] is None else canonical_column(column, fields[name])
        for name, column in frame.items()
    }
    return pd.DataFrame(columns, index=frame.index)


def canonical_records(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Records (a request's validated cases) as the frame the store gives for the same cases.

    Each column is cast by :func:`canonical_column` straight from the records' values (no object frame
    first: a one-case request is the service's main load) and ``los_days`` is derived as ingestion
    derives it. Columns in the order the records name them; every key must be a contract field.
    """
    names = list(dict.fromkeys(name for record in records for name in record))
    frame = pd.DataFrame(
        {name: canonical_column([r.get(name) for r in records], FIELD_BY_NAME[name]) for name in names},
        index=pd.RangeIndex(len(records)),
    )
    if {"admission_date", "discharge_date"} <= set(frame.columns):
        frame["los_days"] = los_days(frame["admission_date"], frame["discharge_date"])
    return frame


def canonical_column(
    values: pd.Series | np.ndarray | list, field: Field
) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``values`` in ``field``'s dtype, missing as None (text), NaN, NaT or NA.

    A required whole number keeps the nullable Int64 while a value is still missing, for validation to
    report. Takes lists too, so a one-case request is cast without building a Series first.
    """
    if field.kind == "date":
        if isinstance(values, list) and all(type(v) is date or v is None for v in values):
            return np.array(values, dtype="datetime64[ns]")  # a request's parsed dates: no parser needed
        return pd.to_datetime(values).to_numpy(dtype="datetime64[ns]")
    if field.dtype is object:
        text = np.empty(len(values), dtype=object)
        text[:] = values
        text[pd.isna(text)] = None
        return text
    if isinstance(values, list) and field.dtype == "float64":
        return np.array(values, dtype=np.float64)  # None becomes NaN
    if isinstance(values, list) and field.dtype == "int64":
        whole = np.array(values)  # a request's plain ints: numpy without pandas' cost per call
        if whole.dtype.kind == "i":
            return whole.astype(np.int64, copy=False)
    column = pd.array(values, dtype=field.nullable_dtype)
    if field.dtype != field.nullable_dtype and not column.isna().any():
        return column.to_numpy(dtype=field.dtype)
    return np.asarray(column) if field.kind == "float" else column


def los_days(admitted: pd.Series | np.ndarray, discharged: pd.Series | np.ndarray) -> pd.Series:
    """实际住院天数: days from admission to discharge, a same-day stay counting as one.

    int64, or Int64 where a date is missing; the index is ``admitted``'s when it is a Series.
    """
    start = np.asarray(admitted, dtype="datetime64[ns]")
    end = np.asarray(discharged, dtype="datetime64[ns]")
    missing = np.isnat(start) | np.isnat(end)
    # whole days in nanoseconds, in place (pricing a million stays computes it); a missing date's
    # difference (NaT, the smallest integer) floors to a negative count, so 1, as a same-day stay
    days = (end - start).view(np.int64) // 86_400_000_000_000
    np.maximum(days, 1, out=days)
    values = pd.arrays.IntegerArray(days, missing) if missing.any() else days
    index = admitted.index if isinstance(admitted, pd.Series) else None
    return pd.Series(values, index=index, name="los_days")
