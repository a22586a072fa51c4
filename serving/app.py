"""The FastAPI application: ``create_app()`` wires settings, keys, models, audit log, metrics and routers.

Run it with ``caselens serve``. Everything a request needs is built here once and reached through
dependencies (``serving.deps``), so tests build an app over a temporary data_dir and their own cases.
``create_app()`` with no arguments reads its settings from the environment: it is the factory every
worker process of ``caselens serve --workers N`` calls.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.resources
import importlib.util
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache, partial
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from contract.errors import CaselensError
from contract.settings import Settings, get_settings, private_data_dir
from serving.audit import AuditLog, RequestContext
from serving.budget import HistoryBudget
from serving.cases import CaseIndex, store_cases
from serving.config import ServingSettings
from serving.deps import NotAuthenticated, ServiceState
from serving.errors import caselens_error, writable
from serving.faults import FaultBarrier
from serving.middleware import (
    CONTENT_SECURITY_POLICY,
    STATIC_PREFIX,
    BodySizeLimit,
    Metrics,
    MetricsMiddleware,
    SecurityHeaders,
)
from serving.queue import ReviewQueue, store_queue
from serving.registry import ModelRegistry
from serving.reload import ReloadGeneration, WorkerReloads, reload_models, settle
from serving.routers import admin, casemix, health, pages, predict, review
from serving.security import KeyStore
from serving.sessions import LoginThrottle, SessionDatabase, SessionStore
from serving.tasks import SERVED_TASKS

# Routers other engineers own, included once their module exists.
OPTIONAL_ROUTERS = (
    "serving.routers.forecast",
    "serving.routers.drivers",
    "serving.routers.watch",
    "serving.routers.instay",
)


def create_app(
    settings: Settings | None = None,
    serving: ServingSettings | None = None,
    *,
    registry: ModelRegistry | None = None,
    cases: CaseIndex | None = None,
    queue: ReviewQueue | None = None,
) -> FastAPI:
    """The service; models load from the registry at start-up (the lifespan), not at construction."""
    settings = settings or get_settings()
    serving = serving or ServingSettings()
    registry = registry or ModelRegistry(settings.mlflow_uri, serving.served_tasks())
    cases = cases or store_cases(settings)
    private_data_dir(settings.data_dir)
    sessions = SessionDatabase(serving.sessions_path(settings))
    state = ServiceState(
        settings=settings,
        serving=serving,
        registry=registry,
        keys=KeyStore.from_config(
            serving.api_keys, serving.keys_path(settings), check_every=serving.keys_check_seconds
        ),
        sessions=SessionStore(sessions, serving.session_hours * 3600, serving.session_idle_minutes * 60),
        logins=LoginThrottle(
            sessions, serving.login_per_minute, serving.login_failures, serving.login_lockout_minutes * 60
        ),
        audit=AuditLog(serving.audit_path(settings)),
        metrics=Metrics(),
        cases=cases,
        queue=queue or ReviewQueue(store_queue(registry, cases, serving.queue_period)),
        casemix=_casemix_factory(settings),
    )

    # Every served task has its routes (answering 503 until its model loads); a registry given here
    # may serve tasks of its own.
    tasks = {**SERVED_TASKS, **registry.tasks}
    state.batchers = predict.batchers(state, tasks)
    state.history_budget = HistoryBudget(serving.history_lookups_per_minute)
    state.reloads = reloads = WorkerReloads(
        ReloadGeneration(serving.reload_path(settings)),
        partial(reload_models, state),
        every=serving.reload_poll_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not registry.models:
            await run_in_threadpool(registry.load)
        await run_in_threadpool(settle, state)  # the store read before the first request; GC settled
        async with reloads.following():
            yield

    app = FastAPI(
        title="caselens",
        version="1",
        summary="DRG cost, margin, readmission and coding-error predictions with SHAP explanations.",
        description="Every data endpoint needs an API key (`Authorization: Bearer <key>` or `X-API-Key`) "
        "whose role may use it; `/v1` takes keys in these headers only, never the pages' session cookie. "
        "Explanations come in Chinese or English by `Accept-Language`.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's assets: hospital intranets are often offline
        redoc_url=None,
        openapi_url="/openapi.json" if serving.docs else None,
    )
    app.state.service = state
    if serving.docs:
        _serve_docs(app)
    app.include_router(health.router)
    app.include_router(predict.routes(tasks))
    for module in (casemix, review, admin, pages):
        app.include_router(module.router)
    for name in OPTIONAL_ROUTERS:
        if importlib.util.find_spec(name) is not None:
            app.include_router(importlib.import_module(name).router)
    app.add_exception_handler(NotAuthenticated, _not_authenticated)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(CaselensError, caselens_error)  # serving.errors.STATUS_CODES
    app.add_middleware(FaultBarrier, metrics=state.metrics)  # innermost: the metrics count its 500s
    app.add_middleware(BodySizeLimit, max_bytes=int(serving.max_body_mb * 1024 * 1024))
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_middleware(SecurityHeaders, tls=serving.cookie_secure)
    app.add_middleware(RequestContext)  # outermost: every answer carries the request id
    return app


DOCS_ASSETS = STATIC_PREFIX + "docs"


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from the assets the ``fastapi-offline`` package ships: no CDN, no web fonts."""
    folder = importlib.resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(folder)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
        return _allow_inline_scripts(page)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _allow_inline_scripts(page: HTMLResponse) -> HTMLResponse:
    """The policy, plus the hash of each inline script of this exact page (Swagger UI's start-up code)."""
    scripts = re.findall(rb"<script>(.*?)</script>", page.body, flags=re.DOTALL)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)
    page.headers["content-security-policy"] = CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", f"script-src 'self' {hashes}"
    )
    return page


async def _invalid_request(request: Request, exc: Any) -> Response:
    """422 naming each failing field, without echoing the values sent.

    FastAPI's own answer quotes each bad ``input``: a NaN cannot be written as JSON (a 500 that logged
    the body), and case contents have no business in an error. Text is made writable as UTF-8 (a
    lone surrogate in a field name is replaced).
    """
    detail = [
        {
            "loc": [writable(part) if isinstance(part, str) else part for part in error["loc"]],
            "msg": writable(error["msg"]),
            "type": error["type"],
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _not_authenticated(request: Request, exc: Any) -> Response:
    """API callers get 401; a person on a page is sent to the login form and back."""
    if request.url.path.startswith("/v1/") or request.method != "GET":
        return JSONResponse({"detail": exc.detail}, status_code=401, headers=exc.headers)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _casemix_factory(settings: Settings) -> Callable[[], Any]:
    """The service's casemix engine, built on first use (its tables take a moment to load)."""

    @cache
    def casemix() -> Any:
        from casemix.engine import CasemixEngine

        return CasemixEngine.from_settings(settings)

    return casemix
