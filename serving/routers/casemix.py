"""Group a case with the CHS-DRG engine, with the trace a coder reads, or a batch without traces; and
say which relative weights the service's money figures stand on (the insurer's table or an estimate)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from casemix.grouper import GroupResult
from casemix.rw_table import ESTIMATED, WeightsSource, weights_source
from contract.fields import join_codes
from serving.deps import State, require
from serving.roles import GROUP_ROLES
from serving.schemas import Code
from serving.security import Principal

router = APIRouter(prefix="/v1/group", tags=["casemix"])
Caller = Annotated[Principal, Depends(require(*GROUP_ROLES))]
Translate = Annotated[
    bool, Query(description="map hospital code versions through diagnosis_map/procedure_map")
]


class GroupCase(BaseModel):
    """What the grouper reads: demographics and the coded diagnoses and procedures, principal first."""

    model_config = ConfigDict(extra="forbid")

    case_id: str | None = Field(default=None, max_length=64)
    sex: Literal[1, 2] | None = Field(description="1 male, 2 female; missing makes the case invalid")
    age_years: int | None = Field(ge=0, le=130)
    age_days: int | None = Field(default=None, ge=0, le=365)
    birth_weight_g: float | None = Field(default=None, ge=0, le=8000, allow_inf_nan=False)
    diagnoses: list[Code] = Field(max_length=100, description="ICD-10 医保版, principal first")
    procedures: list[Code] = Field(
        default_factory=list, max_length=100, description="ICD-9-CM-3 医保版, principal first"
    )


class GroupBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[GroupCase] = Field(min_length=1)


class Grouped(GroupResult):
    """The grouper's answer for one requested case; batches carry no trace."""

    case_id: str | None
    trace: list[str] | None = None


class DrgWeight(BaseModel):
    drg: str
    name: str | None
    rw: float
    mean_cost: float | None = Field(description="regional mean cost per case inside the DRG (yuan)")
    mean_los: float | None = Field(description="regional mean length of stay (days)")
    stable: bool | None = Field(description="false for a 非稳定组")


class Weights(BaseModel):
    """What payments, margins, the queue's money at stake and the forecast are priced with."""

    weights_source: WeightsSource = Field(
        description="'insurer table' or 'estimated from own history' (then figures are estimates)"
    )
    rules: str = Field(description="name of the payment rules in force")
    rw_table: str | None = Field(description="file name of the insurer's RW table, if any")
    drgs: int | None = Field(description="DRGs with a weight in the table")
    weight: DrgWeight | None = Field(description="the requested DRG's row, when asked and found")


def casemix(state: State) -> Any:
    """The service's casemix engine: the grouper of its payment rules, and the weights it prices with."""
    try:
        return state.casemix()
    except ImportError as error:
        raise HTTPException(503, "the casemix grouper is not installed") from error
    except (ValidationError, ValueError, OSError) as error:
        raise HTTPException(503, f"the payment rules or grouping tables cannot be read: {error}") from error


@router.post("", response_model=Grouped, summary="Group one case, with the rule trace")
def group_one(
    case: GroupCase, state: State, principal: Caller, translate_codes: Translate = False
) -> Grouped:
    grouper = casemix(state).grouper
    state.audit.record(
        key_id=principal.key_id, role=principal.role, endpoint="/v1/group", case_ids=[case.case_id]
    )
    result = grouper.group_case(
        sex=case.sex,
        age_years=case.age_years,
        age_days=case.age_days,
        birth_weight_g=case.birth_weight_g,
        diagnoses=case.diagnoses,
        procedures=case.procedures,
        translate_codes=translate_codes,
    )
    return Grouped(case_id=case.case_id, **result.model_dump())


@router.post("/batch", response_model=list[Grouped], summary="Group a batch of cases (no traces)")
def group_batch(
    batch: GroupBatch, state: State, principal: Caller, translate_codes: Translate = False
) -> list[Grouped]:
    if len(batch.cases) > state.serving.max_batch:
        raise HTTPException(413, f"at most {state.serving.max_batch} cases per request")
    engine = casemix(state)
    case_ids = [c.case_id for c in batch.cases]
    state.audit.record(
        key_id=principal.key_id, role=principal.role, endpoint="/v1/group/batch", case_ids=case_ids
    )
    result = engine.group(_frame(batch.cases), translate_codes=translate_codes)
    names = engine.tables.drg_name
    return [
        Grouped(case_id=case_id, drg_name=names(row["drg"]), **row)
        for case_id, row in zip(case_ids, result.to_dict("records"), strict=True)
    ]


@router.get("/weights", response_model=Weights, summary="Which relative weights the service prices with")
def weights(
    state: State,
    principal: Caller,
    drg: Annotated[str | None, Query(max_length=8, pattern="^[A-Za-z0-9]+$")] = None,
) -> Weights:
    engine = casemix(state)
    path = engine.rw_table
    try:
        table = engine.weights() if path is not None else None
    except (ValidationError, ValueError, OSError) as error:
        raise HTTPException(503, f"the RW table cannot be read: {error}") from error
    if table is None:
        return Weights(
            weights_source=ESTIMATED, rules=engine.rules.name, rw_table=None, drgs=None, weight=None
        )
    row = None
    if drg is not None and drg.upper() in table.index:
        found = table.loc[drg.upper()]
        row = DrgWeight(
            drg=drg.upper(),
            name=found["name"],
            rw=found["rw"],
            mean_cost=None if pd.isna(found["mean_cost"]) else found["mean_cost"],
            mean_los=None if pd.isna(found["mean_los"]) else found["mean_los"],
            stable=None if pd.isna(found["stable"]) else bool(found["stable"]),
        )
    return Weights(
        weights_source=weights_source(table),
        rules=engine.rules.name,
        rw_table=path.name,
        drgs=len(table),
        weight=row,
    )


def _frame(cases: list[GroupCase]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sex": [c.sex for c in cases],
            "age_years": [c.age_years for c in cases],
            "age_days": [c.age_days for c in cases],
            "birth_weight_g": [c.birth_weight_g for c in cases],
            "diagnoses": [join_codes(c.diagnoses) for c in cases],
            "procedures": [join_codes(c.procedures) for c in cases],
        },
        dtype=object,
    )
