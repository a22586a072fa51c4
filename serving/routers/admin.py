"""Admin endpoints: reload the champion models without downtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from serving.deps import State, require
from serving.schemas import ReloadResult
from serving.security import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require("admin"))]


@router.post("/reload", response_model=ReloadResult, summary="Reload every model's champion version")
async def reload(state: State, principal: Admin) -> ReloadResult:
    """Load the versions the ``champion`` aliases point to now and swap them in together.

    Requests keep being answered by the old versions while the new ones load; a version that fails
    to load leaves the old one serving, and its error is in the answer.
    """
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/admin/reload")
    changed = await run_in_threadpool(state.registry.load)
    state.cases.reset()
    state.queue.reset()
    return ReloadResult(models=state.registry.status(), changed=changed)
