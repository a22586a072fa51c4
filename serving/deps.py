"""FastAPI dependencies: the app's state, the caller (key → role), the language and the audit hook."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Header, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from contract.settings import Settings
from serving.audit import AuditLog
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.explain import Language
from serving.middleware import Metrics
from serving.queue import ReviewQueue
from serving.registry import ModelRegistry
from serving.security import KeyStore, Principal
from serving.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, LoginThrottle, Session, SessionStore


@dataclass
class ServiceState:
    """Everything a request may need, built once by ``create_app`` and shared by all requests."""

    settings: Settings
    serving: ServingSettings
    registry: ModelRegistry
    keys: KeyStore
    sessions: SessionStore
    logins: LoginThrottle
    audit: AuditLog
    metrics: Metrics
    cases: CaseIndex
    queue: ReviewQueue
    casemix: Callable[[], Any]  # casemix.engine.CasemixEngine, built on first use
    batchers: dict[str, Any] = field(default_factory=dict)  # task → serving.batching.MicroBatcher
    reloads: Any = None  # serving.reload.WorkerReloads: this worker's reloads and the others' it follows
    history_budget: Any = None  # serving.budget.HistoryBudget: stored-history look-ups per key a minute


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


# Declared as security schemes, so the OpenAPI spec says how to authenticate; checked in ``require``.
bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key itself")


class NotAuthenticated(HTTPException):
    """401; pages turn it into a redirect to the login form."""


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def same_origin(request: Request) -> bool:
    """Whether a browser request comes from this site's own pages (Origin, else Referer, names this host).

    Browsers send Origin with every POST; a request naming no origin at all is refused as well, so an
    old browser or a stripped header cannot carry a cross-site form through.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed or claimed == "null":
        return False
    return urlsplit(claimed).netloc.lower() == request.headers.get("host", "").lower()


def check_csrf(request: Request, session: Session, form_token: str | None) -> None:
    """403 unless a cookie-authenticated change comes from our own page carrying the session's token."""
    token = request.headers.get(CSRF_HEADER) or form_token
    if not same_origin(request) or token is None or not secrets.compare_digest(token, session.csrf):
        raise HTTPException(403, "cross-site request refused: reload the page and try again")


async def session_principal(request: Request, state: ServiceState) -> tuple[Principal, Session] | None:
    """The principal of the request's login session, while both the session and its key are valid."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    session = await run_in_threadpool(state.sessions.get, session_id)
    if session is None:
        return None
    if state.keys.active(session.key_id) != session.principal:  # revoked, or its role changed
        await run_in_threadpool(state.sessions.delete, session_id)
        return None
    return session.principal, session


def require(*roles: str) -> Callable[..., Any]:
    """A dependency admitting keys whose role is one of ``roles`` (401 without a valid key, 403 otherwise).

    ``/v1`` routes take a key in a header only. Pages also take the login session's cookie; a page
    request that changes something (not GET/HEAD) must then pass the Origin and CSRF-token check.
    """

    async def check(
        request: Request,
        state: State,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        api_key: Annotated[str | None, Depends(api_key_scheme)],
    ) -> Principal:
        key = (bearer.credentials.strip() if bearer else None) or api_key
        return await authorize(request, state, key, roles)

    return check


async def authorize(
    request: Request, state: ServiceState, key: str | None, roles: tuple[str, ...]
) -> Principal:
    """The caller whose role is one of ``roles``, by ``key`` or, off ``/v1``, the login session (audited)."""
    endpoint = getattr(request.scope.get("route"), "path", request.url.path)
    principal = state.keys.authenticate(key) if key else None
    if key is None and not endpoint.startswith("/v1/"):
        found = await session_principal(request, state)
        if found is not None:
            principal, session = found
            if request.method not in SAFE_METHODS:
                form = await request.form()
                check_csrf(request, session, str(form.get(CSRF_FIELD) or "") or None)
            request.state.csrf_token = session.csrf  # the pages' forms carry it
    if principal is None:
        state.audit.record(key_id=None, role=None, endpoint=endpoint, outcome="unauthenticated")
        raise NotAuthenticated(401, "a valid API key is required", headers={"WWW-Authenticate": "Bearer"})
    if principal.role not in roles:
        state.audit.record(
            key_id=principal.key_id, role=principal.role, endpoint=endpoint, outcome="forbidden"
        )
        raise HTTPException(
            403, f"role {principal.role!r} may not use this endpoint; allowed: {', '.join(roles)}"
        )
    return principal


def header_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-API-Key``, the only places ``/v1`` takes one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


async def language(accept_language: Annotated[str | None, Header()] = None) -> Language:
    """The request's language (async: a dependency that needs no thread of its own)."""
    return preferred_language(accept_language)


def preferred_language(accept_language: str | None) -> Language:
    """Chinese unless the caller prefers English (``Accept-Language: en``) over Chinese."""
    best: tuple[float, Language] = (-1.0, "zh")
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in ("zh", "en"):
            continue
        try:
            q = float(params.strip()[2:]) if params.strip().startswith("q=") else 1.0
        except ValueError:
            q = 0.0  # a malformed weight counts as "not acceptable"
        if q > max(best[0], 0.0):
            best = (q, lang)  # type: ignore[assignment]
    return best[1]


Lang = Annotated[Language, Depends(language)]
