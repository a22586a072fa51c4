"""Liveness, readiness and Prometheus metrics.

``/healthz`` and the verdict of ``/readyz`` (ready or not, and why) are open: load balancers and
orchestrators probe them without keys, and they hold no case data. The details (model versions, load
errors, the worker's pid) and ``/metrics`` need an admin key unless ``open_operations`` is set: they
tell an attacker what runs and how it is used.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from serving.deps import NotAuthenticated, State, authorize, header_key
from serving.roles import OPERATIONS_ROLES
from serving.schemas import Problem, Readiness
from serving.security import Principal

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    response_model_exclude_none=True,
    summary="Whether every served task has a champion loaded and the audit log can be written",
    responses={503: {"model": Readiness, "description": "not ready: `problems` says why"}},
)
def readyz(state: State, request: Request, response: Response) -> Readiness:
    models = state.registry.status()
    problems = [
        f"task {m.task} has no champion loaded ({m.name}: {m.state})" for m in models if m.state != "loaded"
    ]
    if not state.audit.writable():
        problems.append("the audit log cannot be written")
    ready = not problems
    if not ready:
        response.status_code = 503
    if not _operator(state, request):
        return Readiness(ready=ready, problems=problems)
    return Readiness(ready=ready, problems=problems, models=models, pid=os.getpid())


def _operator(state: State, request: Request) -> bool:
    """Whether the caller may see operational details (an admin key, or they are open by setting)."""
    if state.serving.open_operations:
        return True
    key = header_key(request)
    principal = state.keys.authenticate(key) if key else None
    return principal is not None and principal.role in OPERATIONS_ROLES


async def _metrics_reader(request: Request, state: State) -> Principal | None:
    """No key needed when operations are open; else an admin key (401/403 as every data endpoint).

    A missing key is a plain 401, not the pages' redirect to the login form: a scraper reads this.
    """
    if state.serving.open_operations:
        return None
    try:
        return await authorize(request, state, header_key(request), OPERATIONS_ROLES)
    except NotAuthenticated as error:
        raise HTTPException(401, error.detail, headers=error.headers) from None


@router.get(
    "/metrics",
    summary="Prometheus metrics: request counts, latency and faults by endpoint, all workers",
    response_class=PlainTextResponse,
    responses={401: {"model": Problem}, 403: {"model": Problem}},
)
def metrics(state: State, _: Annotated[Principal | None, Depends(_metrics_reader)]) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
