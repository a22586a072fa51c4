"""The coding-review queue: cases to review before claim submission, by expected money at stake."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from serving.deps import State, require
from serving.queue import SORTABLE
from serving.roles import QUEUE_ROLES
from serving.security import Principal

router = APIRouter(prefix="/v1/review", tags=["coding review"])


class QueueItem(BaseModel):
    rank: int
    case_id: str
    department: str | None
    error_type: str | None = Field(description="most likely error type")
    error_probability: float
    money_at_stake: float = Field(
        description="payment as coded minus payment under the likely correction (yuan)"
    )
    expected_value: float = Field(description="Σ probability × money at stake (upcoding weighted), the order")
    compliance_risk: bool = Field(description="likely upcoding: the insurer would deduct and may fine")
    coded_drg: str | None
    whatif_drg: str | None = Field(description="DRG after the likely correction")
    whatif_payment_change: float | None
    reasons: list[str]


class QueueAnswer(BaseModel):
    total: int = Field(description="cases matching the filters")
    weights_source: str | None = Field(
        None,
        description="'insurer table' or 'estimated from own history' (money at stake then an estimate)",
    )
    items: list[QueueItem]


@router.get("/queue", response_model=QueueAnswer, summary="The coding-review queue")
def queue(
    state: State,
    principal: Annotated[Principal, Depends(require(*QUEUE_ROLES))],
    department: Annotated[str | None, Query(max_length=64)] = None,
    error_type: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[Literal[SORTABLE], Query()] = "rank",  # type: ignore[valid-type]
    descending: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> QueueAnswer:
    view = state.queue.view(
        department=department, error_type=error_type, sort=sort, descending=descending, limit=10**9
    )
    shown = view.head(limit)
    state.audit.record(
        key_id=principal.key_id,
        role=principal.role,
        endpoint="/v1/review/queue",
        case_ids=shown["case_id"].tolist(),
    )
    items = [QueueItem(**row) for row in shown.to_dict("records")]
    return QueueAnswer(total=len(view), weights_source=state.queue.weights_source(), items=items)
