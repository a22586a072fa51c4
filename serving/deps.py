"""FastAPI dependencies: the app's state, the caller (key → role), the language and the audit hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from pipelines.settings import Settings
from serving.audit import AuditLog
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.explain import Language
from serving.middleware import Metrics
from serving.queue import ReviewQueue
from serving.registry import ModelRegistry
from serving.security import COOKIE_NAME, KeyStore, Principal


@dataclass
class ServiceState:
    """Everything a request may need, built once by ``create_app`` and shared by all requests."""

    settings: Settings
    serving: ServingSettings
    registry: ModelRegistry
    keys: KeyStore
    audit: AuditLog
    metrics: Metrics
    cases: CaseIndex
    queue: ReviewQueue
    grouper: Callable[[], Any]
    batchers: dict[str, Any] = field(default_factory=dict)  # task → serving.batching.MicroBatcher
    reloads: Any = None  # serving.reload.WorkerReloads: this worker's reloads and the others' it follows
    history_budget: Any = None  # serving.budget.HistoryBudget: stored-history look-ups per key a minute


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


def presented_key(request: Request) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-API-Key`` or the login cookie, in that order."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE_NAME) or None


class NotAuthenticated(HTTPException):
    """401; pages turn it into a redirect to the login form."""


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting keys whose role is one of ``roles`` (401 without a valid key, 403 otherwise)."""

    async def check(request: Request, state: State) -> Principal:
        key = presented_key(request)
        principal = state.keys.authenticate(key) if key else None
        endpoint = getattr(request.scope.get("route"), "path", request.url.path)
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

    return check


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
