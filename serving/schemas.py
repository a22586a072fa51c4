"""Request and response models; the case schemas are generated from the shared contract.

An admission-stage request (pre-admission cost and margin) carries only fields known at admission, so
a client cannot leak discharge information into a pre-admission prediction; unknown fields are refused
with 422 naming them. Every value is checked for plausibility at the edge, so no request reaches the
models with a value their arithmetic cannot hold: dates within ``MIN_DATE`` to a year from today, a
stay of at most ``MAX_STAY_DAYS``, ages and weights within the contract's ranges, money non-negative
and at most ``MAX_YUAN``, text without control characters or lone surrogates. A failure is a 422 whose
``loc`` names the field.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)

from contract.fields import FIELDS, STAGE_ORDER, Stage
from contract.fields import Field as ContractField

MIN_DATE = dt.date(1990, 1, 1)  # the oldest stay a request may name (abstracts before it are not kept)
FUTURE_DAYS = 366  # a planned admission may lie up to a year ahead
MAX_STAY_DAYS = 3650  # longest stay accepted: ten years
MAX_YUAN = 1e9  # largest amount of money in one abstract field
OPTIONAL_IDS = ("case_id", "patient_id")  # a pre-admission enquiry may not have them yet


def _date_in_range(value: dt.date) -> dt.date:
    latest = dt.date.today() + dt.timedelta(days=FUTURE_DAYS)
    if not MIN_DATE <= value <= latest:
        raise ValueError(f"date must be between {MIN_DATE} and {latest} (a year from today)")
    return value


def _plain_text(value: str) -> str:
    """Text a log line, a JSON answer and a page can all carry: no control characters, valid Unicode."""
    for character in value:
        category = unicodedata.category(character)
        if category == "Cs":
            raise ValueError("text must be valid Unicode (it holds a lone surrogate)")
        if category == "Cc" or character in "\u2028\u2029":
            raise ValueError("text must not hold control characters or line breaks")
    return value


CaseDate = Annotated[dt.date, AfterValidator(_date_in_range)]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.+\-x*]+$")]
CodeList = Annotated[str, Field(max_length=2000, pattern=r"^[A-Za-z0-9.+\-x*|]*$")]
Text = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_plain_text)]


def _annotation(f: ContractField) -> Any:
    if f.allowed is not None:
        return Literal[f.allowed]  # type: ignore[valid-type]
    if f.kind == "int":
        return Annotated[int, Field(ge=f.minimum, le=f.maximum)]
    if f.kind == "float":
        return Annotated[
            float,
            Field(ge=f.minimum, le=f.maximum if f.maximum is not None else MAX_YUAN, allow_inf_nan=False),
        ]
    if f.kind == "date":
        return CaseDate
    if f.kind == "bool":
        return bool
    if f.kind == "codes":
        return CodeList
    if f.name.endswith(("diagnosis", "procedure")):
        return Code
    return Text


class _CaseBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("discharge_date", check_fields=False)
    @classmethod
    def _stay_is_plausible(cls, discharged: dt.date | None, info: ValidationInfo) -> dt.date | None:
        """Discharge on or after admission and at most MAX_STAY_DAYS later (``loc`` names discharge_date)."""
        admitted = info.data.get("admission_date")
        if admitted is None or discharged is None:
            return discharged
        if discharged < admitted:
            raise ValueError("discharge_date is before admission_date")
        if (discharged - admitted).days > MAX_STAY_DAYS:
            raise ValueError(f"the stay is longer than {MAX_STAY_DAYS} days")
        return discharged


def case_model(stage: Stage) -> type[BaseModel]:
    """A pydantic model of the contract fields known at ``stage``."""
    fields: dict[str, Any] = {}
    for f in FIELDS:
        if STAGE_ORDER[f.stage] > STAGE_ORDER[stage]:
            continue
        required = f.required and f.name not in OPTIONAL_IDS
        annotation = _annotation(f) if required else _annotation(f) | None
        fields[f.name] = (annotation, Field(... if required else None, description=f"{f.zh} / {f.en}"))
    return create_model(f"{stage.capitalize()}Case", __base__=_CaseBase, **fields)


AdmissionCase = case_model("admission")
DischargeCase = case_model("discharge")
CASE_MODELS: dict[str, type[BaseModel]] = {"admission": AdmissionCase, "discharge": DischargeCase}


class Interval(BaseModel):
    lower: float
    upper: float
    level: float = Field(description="nominal coverage, e.g. 0.8")


class Contribution(BaseModel):
    feature: str = Field(description="feature column name")
    name: str = Field(description="readable feature name in the requested language")
    value: str = Field(description="the case's value of the feature, as shown to a person")
    contribution: float = Field(description="SHAP value on the model's raw output scale")
    effect: float = Field(
        description="change of the prediction caused by this feature, in yuan or probability"
    )


class Explanation(BaseModel):
    raw_scale: str = Field(description="what the raw output is: 'log yuan', 'log-odds' or 'yuan'")
    base_value: float = Field(description="expected raw output over the training data")
    raw_output: float = Field(description="the model's raw output for this case")
    contributions: list[Contribution] = Field(description="largest contributions first")
    rest: float = Field(description="sum of the contributions not listed: base + listed + rest = raw output")
    base_prediction: float = Field(
        description="the base value read on the prediction's scale (yuan or probability)"
    )
    rest_effect: float = Field(
        description="the step of the contributions not listed, on the prediction's scale"
    )
    reasons: list[str] = Field(description="the listed contributions in plain language")
    explains: Literal["prediction", "uncalibrated score"] = Field(
        "prediction",
        description="what base + contributions add up to: the prediction itself, or (isotonic calibration, "
        "not a linear map of the log-odds) the model's score before calibration",
    )


class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    case_id: str | None
    value: float = Field(description="the prediction: yuan, or a calibrated probability")
    unit: Literal["yuan", "probability"]
    interval: Interval | None = None
    outputs: dict[str, float] = Field(default_factory=dict, description="every output column of the model")
    explanation: Explanation
    warnings: list[str] = Field(
        default_factory=list,
        description="what the answer could not fully use, e.g. a code not in the code dictionaries",
    )


class PredictResponse(BaseModel):
    model: ModelRef
    prediction: Prediction


class BatchResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction]


def batch_model(stage: Stage) -> type[BaseModel]:
    """A batch request of cases known at ``stage``; the size limit is enforced as 413, not 422."""
    return create_model(
        f"{stage.capitalize()}Batch",
        __config__=ConfigDict(extra="forbid"),
        cases=(list[CASE_MODELS[stage]], Field(min_length=1, description="the cases, one prediction each")),
        history=(
            list[DischargeCase] | None,
            Field(
                default=None,
                description="earlier stays of the same patients, for history features; "
                "omitted: their stays in the case store",
            ),
        ),
    )


BATCH_MODELS: dict[str, type[BaseModel]] = {stage: batch_model(stage) for stage in CASE_MODELS}


def single_model(stage: Stage) -> type[BaseModel]:
    return create_model(
        f"{stage.capitalize()}Request",
        __config__=ConfigDict(extra="forbid"),
        case=(CASE_MODELS[stage], ...),
        history=(
            list[DischargeCase] | None,
            Field(
                default=None,
                description="earlier stays of the patient, for history features; "
                "omitted: the patient's stays in the case store",
            ),
        ),
    )


SINGLE_MODELS: dict[str, type[BaseModel]] = {stage: single_model(stage) for stage in CASE_MODELS}


class Problem(BaseModel):
    """Every error but 422: what went wrong, in words."""

    detail: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body could not be read (e.g. it is not UTF-8)"},
    401: {"model": Problem, "description": "no valid API key"},
    403: {"model": Problem, "description": "the key's role may not use this endpoint"},
    413: {"model": Problem, "description": "too many cases or too large a body"},
    429: {"model": Problem, "description": "the key's stored-history look-ups for this minute are spent"},
    500: {"model": Problem, "description": "a fault of the service, logged; the answer names the request"},
    503: {"model": Problem, "description": "the task's model is not loaded"},
}


def input_error(loc: list[str | int], error: Exception) -> HTTPException:
    """A 422 in the shape every validation error has (``detail`` a list of ``loc``/``msg``/``type``)."""
    return HTTPException(422, [{"loc": loc, "msg": str(error), "type": "value_error"}])


class ModelStatus(BaseModel):
    task: str
    name: str
    state: Literal["loaded", "missing", "failed"]
    version: str | None = None
    error: str | None = None


class Readiness(BaseModel):
    ready: bool = Field(description="every served task has a champion and the audit log can be written")
    problems: list[str] | None = Field(
        default=None, description="why the service is not ready, e.g. the tasks that lack a champion"
    )
    models: list[ModelStatus] | None = Field(
        default=None, description="details: only with an admin key (or CASELENS_SERVE_OPEN_OPERATIONS)"
    )
    pid: int | None = Field(
        default=None, description="process id of the worker that answered (`caselens serve --workers N`)"
    )


class ReloadResult(BaseModel):
    models: list[ModelStatus] = Field(description="the models of the worker that reloaded")
    changed: list[str] = Field(description="tasks now served by a different version")
    generation: int = Field(description="reload generation announced to the service's other workers")
    others_follow_within_seconds: float | None = Field(
        description="the other workers load the same champions within about this many seconds plus their "
        "loading time; None when workers do not follow reloads (CASELENS_SERVE_RELOAD_POLL_SECONDS=0)"
    )
