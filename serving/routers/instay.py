"""``POST /v1/predict/in-stay``: a stay still in hospital, scored now (在院预警, one stay or a batch).

The body is the in-stay record (``contract.instay.INSTAY_FIELDS``) and its daily charges to date
(``contract.charges``); the service cuts it at ``as_of_date`` (``features.instay.cut_stays``),
pre-groups it and scores it with the ``caselens-instay`` champion (served, reloaded and reported
on /readyz by the service's model registry like every task's) exactly as ``caselens watch`` does
(``models.watch_list.stay_rows``, the watch list's rows before ranking), so a stay's answer is its
watch-list row, with the overrun probability explained in the format of the other tasks
(``serving.schemas.Explanation``).
Roles clinician and admin (both may see features of the patient's stored stays); a request reading
stored stays is audited with its patients and counted against the key's look-up budget, as every
prediction request is (``serving.routers.predict``).
"""

# No `from __future__ import annotations`: FastAPI reads the body models from real annotations.
import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, create_model

from contract.charges import CHARGE_FIELDS
from contract.errors import StateError
from contract.fields import COST_CATEGORIES, canonical_column
from contract.fields import Field as ContractField
from contract.instay import INSTAY_DERIVED, INSTAY_FIELDS
from features.history import StayIndex
from features.view import Table, table_column
from models.explain import Explained
from models.tracking import CHAMPION
from models.watch_list import WarningPolicy, stay_rows
from serving.batching import MicroBatcher
from serving.deps import Lang, ServiceState, State, require
from serving.explain import explanations
from serving.registry import ServedModel
from serving.roles import TASK_ROLES
from serving.routers.predict import _read_history  # the audit and budget of stored-history reads
from serving.schemas import (
    ERROR_RESPONSES,
    AdmissionCase,
    CaseDate,
    CodeList,
    Explanation,
    Interval,
    ModelRef,
    Text,
    input_error,
)
from serving.security import Principal

TASK = "instay"  # its champion is loaded, reloaded and reported (/readyz) by the service's registry
INSTAY_ROLES = TASK_ROLES[TASK]
MAX_TOP = 50
MAX_CHARGE_DAYS = 3650
router = APIRouter(prefix="/v1/predict", tags=["predictions"], responses=ERROR_RESPONSES)
Clinician = Annotated[Principal, Depends(require(*INSTAY_ROLES))]
Top = Annotated[int | None, Query(ge=1, le=MAX_TOP, description="contributions listed (default 8)")]
_NAMES = {f.name: f for f in INSTAY_FIELDS}
Yuan = Annotated[float, Field(ge=0, le=1e9)]

InstayRecord = create_model(
    "InstayRecord",
    __base__=AdmissionCase,
    case_id=(Text, Field(..., description=f"{_NAMES['case_id'].zh} / {_NAMES['case_id'].en}")),
    # a stay in hospital has its patient, and the features need one: refused here, naming the field
    patient_id=(Text, Field(..., description=f"{_NAMES['patient_id'].zh} / {_NAMES['patient_id'].en}")),
    **{
        name: (kind, Field(default, description=f"{_NAMES[name].zh} / {_NAMES[name].en}"))
        for name, kind, default in (
            ("recorded_date", CaseDate, ...),
            ("working_diagnoses", CodeList | None, None),
            ("procedures_so_far", CodeList | None, None),
        )
    },
)
ChargeDay = create_model(
    "ChargeDay",
    __config__=ConfigDict(extra="forbid"),
    charge_date=(CaseDate, Field(..., description="费用日期 / day the charges were incurred")),
    **{
        f.name: (Yuan, Field(0.0, description=f"{f.zh} / {f.en}"))
        for f in CHARGE_FIELDS
        if f.name in COST_CATEGORIES
    },
)


class InstayStay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record: InstayRecord  # type: ignore[valid-type]
    charges: list[ChargeDay] = Field(  # type: ignore[valid-type]
        default_factory=list, max_length=MAX_CHARGE_DAYS, description="its daily charges to date"
    )
    as_of_date: CaseDate | None = Field(
        None, description="the day whose end to score at (default: the record's or last charge's day)"
    )


class InstayBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stays: list[InstayStay] = Field(min_length=1, description="the stays, one answer each")


class InstayPrediction(BaseModel):
    case_id: str
    as_of_date: dt.date
    day_of_stay: int
    cost_to_date: float
    pregrouped_drg: str | None
    payment_standard: float | None
    ratio_to_date: float | None
    predicted_final_cost: float
    interval: Interval
    overrun_probability: float
    expected_overrun: float
    warning_level: str = Field(description="none, watch or overrun (the payment rules' thresholds)")
    explanation: Explanation = Field(description="of the overrun probability (log-odds, calibrated none)")


class InstayResponse(BaseModel):
    model: ModelRef
    prediction: InstayPrediction


class InstayBatchResponse(BaseModel):
    model: ModelRef
    predictions: list[InstayPrediction]


def instay_model(state: State) -> ServedModel:
    """The in-stay champion the registry serves, or 503 saying what to run."""
    model = state.registry.models.get(TASK)
    if model is None:
        raise HTTPException(
            503,
            f"model caselens-{TASK} is not loaded (no {CHAMPION!r} version registered yet): run "
            f"`caselens train {TASK}` (it needs the daily charges: caselens ingest --kind charges)",
        )
    return model


# The columns of the three tables, each with its contract field: cast once per column from the
# request's values (``canonical_column``), the dtypes the store gives the same rows.
_RECORD_FIELDS = INSTAY_FIELDS
_CHARGE_FIELDS = tuple(f for f in CHARGE_FIELDS if f.name in ("case_id", "charge_date", *COST_CATEGORIES))
_CUT_FIELDS = tuple(f for f in (*CHARGE_FIELDS, *INSTAY_DERIVED) if f.name in ("case_id", "as_of_date"))


Columns = dict[str, Any]


def _table(rows: list[dict[str, Any]], fields: tuple[ContractField, ...]) -> Columns:
    """``rows`` as the store would hold them, by column (``features.instay.Table``): each in its
    field's dtype, and no frame (a one-stay request paid more for three frames than for the cut)."""
    return {f.name: canonical_column([row.get(f.name) for row in rows], f) for f in fields}


def stay_tables(stays: list[InstayStay]) -> tuple[Columns, Columns, Columns]:
    """The records, charges and cuts tables of the request, as the store would hold them; a cut
    before its record or its admission, or a charge outside its stay, is a 422 naming the field."""
    records, charges, cuts = [], [], []
    for i, stay in enumerate(stays):
        record = stay.record.model_dump()
        days = [c.charge_date for c in stay.charges]
        as_of = stay.as_of_date or max([record["recorded_date"], *days])
        seen: set[dt.date] = set()
        for j, day in enumerate(days):
            if day < record["admission_date"]:
                raise input_error(
                    ["body", "stays", i, "charges", j, "charge_date"], ValueError("before admission")
                )
            if day in seen:  # the store keeps one row a day: a day sent twice must not count twice
                raise input_error(
                    ["body", "stays", i, "charges", j, "charge_date"], ValueError("a day appears twice")
                )
            seen.add(day)
        if as_of < record["recorded_date"]:
            raise input_error(
                ["body", "stays", i, "as_of_date"], ValueError("before the record's recorded_date")
            )
        if (as_of - record["admission_date"]).days >= MAX_CHARGE_DAYS:  # the edge's longest stay
            raise input_error(
                ["body", "stays", i, "as_of_date"], ValueError(f"a stay of more than {MAX_CHARGE_DAYS} days")
            )
        records.append(record)
        charges += [{"case_id": record["case_id"], **c.model_dump()} for c in stay.charges]
        cuts.append({"case_id": record["case_id"], "as_of_date": as_of})
    ids = [r["case_id"] for r in records]
    if len(set(ids)) < len(ids):
        raise input_error(["body", "stays"], ValueError("a case_id appears twice"))
    return _table(records, _RECORD_FIELDS), _table(charges, _CHARGE_FIELDS), _table(cuts, _CUT_FIELDS)


@dataclass(frozen=True)
class StayRequest:
    """One stay to answer and how its explanation is worded (a one-stay request, in a micro-batch)."""

    stay: InstayStay
    language: str
    top: int


def score_stays(
    model: Any, frame: Table, history: pd.DataFrame | StayIndex | None, policy: WarningPolicy
) -> tuple[list[dict[str, Any]], Explained]:
    """The watch-list rows of the cut stays (in request order) and the model's answer to explain,
    from one pass of the registered model (``CaseModel.explain_frame``); ``frame``: the cut stays as
    a frame or as their columns (a request's: no frame built around them)."""
    cut = model.features.pregroup(frame)
    answer = model.explain_frame(cut, history)
    columns = stay_rows(cut, answer.outputs, policy)
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return rows, answer


def _worded(answer: Explained, names: dict[str, dict[str, str]], wording: list[tuple[str, int]]) -> list[Any]:
    """Each stay's explanation in its own language and length (one pass per distinct wording)."""
    found: list[Any] = [None] * len(wording)
    groups: dict[tuple[str, int], list[int]] = {}
    for position, asked in enumerate(wording):
        groups.setdefault(asked, []).append(position)
    for (language, top), positions in groups.items():
        part = answer if len(groups) == 1 else answer.rows(positions)
        worded = explanations(part, names=names, language=language, top=top)
        for position, one in zip(positions, worded, strict=True):
            found[position] = one
    return found


def _history(state: State, patient_ids: list[Any]) -> pd.DataFrame | StayIndex | None:
    """The patients' stored stays, what the features read of the whole store: the store's prepared
    ``StayIndex`` when each patient has one stay in the request (binary searches, as the other
    single-case endpoints), else their stays; None without a case store (a first stay)."""
    patients = list(dict.fromkeys(p for p in patient_ids if p is not None))
    try:
        if len(patients) == sum(p is not None for p in patient_ids):
            return state.cases.stay_index()
        return state.cases.stays_of(patients)
    except StateError:
        return None


def _predictions(
    state: ServiceState, stays: list[InstayStay], wording: list[tuple[str, int]]
) -> tuple[ModelRef, list[InstayPrediction]]:
    """The answers of ``stays`` from one pass: a batch request's, or the one-stay requests queued
    together (``_batcher``); ``wording`` is each stay's (language, contributions listed)."""
    from features.instay import cut_columns

    served = instay_model(state)
    model = served.model
    records, charges, cuts = stay_tables(stays)
    # the cut and its pre-grouping's columns, and no frame of them (a frame cost a stay more)
    cut = model.features.pregroup(cut_columns(records, charges, cuts))
    history = _history(state, list(records["patient_id"]))
    policy = WarningPolicy.from_rules(state.casemix().rules)  # the service's rules, loaded once
    rows, answer = score_stays(model, cut, history, policy)
    found = _worded(answer, model.names, wording)
    level = float(model.estimator.level)

    def number(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)

    predictions = [
        InstayPrediction(
            case_id=row["case_id"],
            as_of_date=pd.Timestamp(day).date(),
            day_of_stay=int(row["day_of_stay"]),
            cost_to_date=float(row["cost_to_date"]),
            pregrouped_drg=None if pd.isna(row["pregrouped_drg"]) else str(row["pregrouped_drg"]),
            payment_standard=number(row["payment_standard"]),
            ratio_to_date=number(row["ratio_to_date"]),
            predicted_final_cost=float(row["predicted_final_cost"]),
            interval=Interval(
                lower=float(row["final_cost_lower"]), upper=float(row["final_cost_upper"]), level=level
            ),
            overrun_probability=float(row["overrun_probability"]),
            expected_overrun=float(row["expected_overrun"]),
            warning_level=str(row["warning_level"]),
            explanation=Explanation(**explanation),
        )
        for row, day, explanation in zip(rows, table_column(cut, "as_of_date"), found, strict=True)
    ]
    return ModelRef(name=served.name, version=served.version), predictions


def _batcher(state: ServiceState) -> MicroBatcher[StayRequest]:
    """The micro-batcher of one-stay requests (as the other tasks' one-case requests,
    ``serving.singles``): under load the stays queued while a pass ran are answered in the next one,
    whose cost hardly grows with its size; an idle service answers a lone stay at once."""
    found = state.batchers.get(TASK)
    if found is None:  # made in the event loop, never concurrently

        def score(jobs: list[StayRequest]) -> list[tuple[ModelRef, InstayPrediction]]:
            ref, predictions = _predictions(
                state, [j.stay for j in jobs], [(j.language, j.top) for j in jobs]
            )
            return [(ref, prediction) for prediction in predictions]

        observe = state.metrics.batch_size.labels(TASK).observe
        found = state.batchers[TASK] = MicroBatcher(score, state.serving.micro_batch, observe)
    return found


@router.post(
    "/in-stay", response_model=InstayResponse, summary="In-stay early warning (在院预警) for one stay"
)
async def predict_in_stay(
    body: InstayStay, request: Request, state: State, lang: Lang, principal: Clinician, top: Top = None
) -> InstayResponse:
    """Predicted final cost with its interval, overrun probability, warning level and the reasons, for
    a stay in hospital cut at ``as_of_date``. Roles: clinician, admin."""
    instay_model(state)  # 503 before queueing when there is no model
    record = body.record
    _read_history(state, principal, request.url.path, [record.case_id], [record.patient_id])
    # Stays of one patient never share a pass (their history is looked up per patient).
    key = record.patient_id if record.patient_id is not None else object()
    model, prediction = await _batcher(state).submit(StayRequest(body, lang, top or 8), key)
    return InstayResponse(model=model, prediction=prediction)


@router.post(
    "/in-stay/batch", response_model=InstayBatchResponse, summary="In-stay early warning for a batch of stays"
)
def predict_in_stay_batch(
    body: InstayBatch, request: Request, state: State, lang: Lang, principal: Clinician, top: Top = None
) -> InstayBatchResponse:
    """The same for many stays, one answer each in order. Roles: clinician, admin."""
    if len(body.stays) > state.serving.max_batch:
        raise HTTPException(413, f"at most {state.serving.max_batch} stays in one request")
    records = [stay.record for stay in body.stays]
    case_ids, patient_ids = [r.case_id for r in records], [r.patient_id for r in records]
    _read_history(state, principal, request.url.path, case_ids, patient_ids)
    model, predictions = _predictions(state, body.stays, [(lang, top or 8)] * len(body.stays))
    return InstayBatchResponse(model=model, predictions=predictions)
