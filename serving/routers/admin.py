"""Admin endpoints: reload the champion models without downtime, in every worker process."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving.deps import State, require
from serving.reload import WorkerReloads
from serving.schemas import ReloadResult
from serving.security import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, Depends(require("admin"))]


@router.post("/reload", response_model=ReloadResult, summary="Reload every model's champion version")
async def reload(state: State, principal: Admin) -> ReloadResult:
    """Load the versions the ``champion`` aliases point to now and swap them in together.

    Requests keep being answered by the old versions while the new ones load; a version that fails
    to load leaves the old one serving, and its error is in the answer. The answer is this worker's;
    the service's other worker processes follow within about ``others_follow_within_seconds``.
    """
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/v1/admin/reload")
    reloads: WorkerReloads = state.reloads
    changed, generation = await reloads.reload()
    return ReloadResult(
        models=state.registry.status(),
        changed=changed,
        generation=generation,
        others_follow_within_seconds=reloads.every or None,
    )
