"""Liveness, readiness (which models are loaded) and Prometheus metrics: open, they hold no case data."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.deps import State
from serving.schemas import Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Which models are loaded",
    responses={503: {"model": Readiness, "description": "no model is loaded yet"}},
)
def readyz(state: State, response: Response) -> Readiness:
    models = state.registry.status()
    ready = any(m.state == "loaded" for m in models)
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, models=models, pid=os.getpid())


@router.get("/metrics", summary="Prometheus metrics: request counts and latency by endpoint, all workers")
def metrics(state: State) -> Response:
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
