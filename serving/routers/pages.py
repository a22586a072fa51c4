"""Server-rendered pages (Jinja2, no build step): login, the case page and the coding-review queue.

Pages use the same keys and roles as the API: the login form checks a key and opens a server-side
session (``serving.sessions``) whose random id the browser keeps in an HttpOnly, SameSite=Strict
cookie; a page asked for without one redirects to the login form.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from contract.fields import ADMISSION_SOURCES, ADMISSION_TYPES, SEXES, fields_known_at
from serving.deps import Lang, State, check_csrf, require, same_origin
from serving.predictions import ScoringError, predict_explained, withheld_features
from serving.queue import SORTABLE
from serving.roles import CASE_PAGE_ROLES, QUEUE_ROLES
from serving.security import Principal
from serving.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from serving.tasks import SERVED_TASKS
from serving.waterfall import waterfall_svg

log = logging.getLogger(__name__)
TEMPLATES = Jinja2Templates(directory=FilePath(__file__).resolve().parent.parent / "templates")
router = APIRouter(include_in_schema=False)


def page_language(lang: Lang, request: Request) -> str:
    """``?lang=`` wins over Accept-Language, so a person can switch on the page."""
    chosen = request.query_params.get("lang")
    return chosen if chosen in ("zh", "en") else lang


PageLang = Annotated[str, Depends(page_language)]


def safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect would send a logged-in person to another site."""
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, state: State, lang: PageLang, next: Annotated[str | None, Query(max_length=500)] = None
):
    return _login_page(request, state, lang, next, error=None)


def _login_page(
    request: Request, state: State, lang: str, next: str | None, error: str | None, status_code: int = 200
) -> Response:
    """The login form with a fresh login CSRF token, also set as a cookie (double submit)."""
    token = secrets.token_urlsafe(32)
    context = {"lang": lang, "next": safe_next(next), "error": error, "login_csrf": token}
    response = TEMPLATES.TemplateResponse(request, "login.html", context, status_code=status_code)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=state.serving.cookie_secure
    )
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    state: State,
    lang: PageLang,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
):
    """Check the key and open a server-side session; the browser gets only the session's random id.

    Refused (403) when the form was not posted by our own login page (Origin and the login form's
    token), and (429) when the client address tried too often or failed too often; logged without
    the key.
    """
    client = request.client.host if request.client else "unknown"
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not same_origin(request) or not expected or not secrets.compare_digest(csrf_token, expected):
        state.audit.record(key_id=None, role=None, endpoint="/login", outcome="cross_site")
        log.warning("login from %s refused: not posted by this site's login page", client)
        raise HTTPException(403, "cross-site login refused: open the login page and try again")
    refusal = state.logins.refusal(client)
    if refusal is not None:
        reason, wait = refusal
        state.audit.record(key_id=None, role=None, endpoint="/login", outcome=reason)
        log.warning("login from %s refused (%s) for %d s", client, reason.replace("_", " "), wait)
        error = f"尝试过多，请 {wait} 秒后再试" if lang == "zh" else f"too many tries: wait {wait} s"
        response = _login_page(request, state, lang, next, error, status_code=429)
        response.headers["Retry-After"] = str(wait)
        return response
    principal = state.keys.authenticate(key)
    state.logins.record(client, ok=principal is not None)
    if principal is None:
        state.audit.record(key_id=None, role=None, endpoint="/login", outcome="unauthenticated")
        log.info("failed login from %s", client)
        error = "密钥无效" if lang == "zh" else "invalid key"
        return _login_page(request, state, lang, next, error, status_code=401)
    session_id, _ = state.sessions.create(principal)
    state.audit.record(key_id=principal.key_id, role=principal.role, endpoint="/login")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=state.serving.cookie_secure
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(
    request: Request, state: State, csrf_token: Annotated[str | None, Form(max_length=100)] = None
) -> RedirectResponse:
    """End the session on the server (not only the browser's copy of its id)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    session = state.sessions.get(session_id) if session_id else None
    if session is not None:
        check_csrf(request, session, csrf_token)
        state.sessions.delete(session_id)  # type: ignore[arg-type]
        state.audit.record(key_id=session.key_id, role=session.role, endpoint="/logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="strict", secure=state.serving.cookie_secure
    )
    return response


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    state: State,
    lang: PageLang,
    principal: Annotated[Principal, Depends(require(*CASE_PAGE_ROLES))],
):
    context = {"lang": lang, "principal": principal, "models": state.registry.status()}
    return TEMPLATES.TemplateResponse(request, "index.html", context)


@router.get("/cases")
def case_lookup(
    case_id: Annotated[str, Query(max_length=64)],
    lang: PageLang,
    principal: Annotated[Principal, Depends(require(*CASE_PAGE_ROLES))],
) -> RedirectResponse:
    """The home page's case-id form lands here (a plain form: the CSP allows no inline script)."""
    return RedirectResponse(f"/cases/{quote(case_id, safe='')}?lang={lang}", status_code=303)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(
    case_id: Annotated[str, Path(max_length=64)],
    request: Request,
    state: State,
    lang: PageLang,
    principal: Annotated[Principal, Depends(require(*CASE_PAGE_ROLES))],
):
    """A case's predictions, each with a SHAP waterfall and the reasons in words."""
    found = state.cases(case_id)
    state.audit.record(
        key_id=principal.key_id,
        role=principal.role,
        endpoint="/cases/{case_id}",
        case_ids=[case_id],
        patient_ids=None if found is None else found[0]["patient_id"].tolist(),  # their stays are read
    )
    if found is None:
        context = {"lang": lang, "principal": principal, "case_id": case_id}
        return TEMPLATES.TemplateResponse(request, "not_found.html", context, status_code=404)
    case, history = found
    cards = [
        card
        for task in SERVED_TASKS.values()
        if task.case_requests
        and task.name in state.registry.models
        and principal.role in task.roles
        and (card := _card(state, task.name, case, history, lang, principal.role)) is not None
    ]
    context = {
        "lang": lang,
        "principal": principal,
        "case": _summary(case.iloc[0], lang),
        "case_id": case_id,
        "cards": cards,
        "missing": [
            t for t in SERVED_TASKS.values() if t.case_requests and t.name not in state.registry.models
        ],
    }
    return TEMPLATES.TemplateResponse(request, "case.html", context)


def _card(
    state: State, task_name: str, case: Any, history: Any, lang: str, role: str
) -> dict[str, Any] | None:
    """One prediction card, or None when the case is not yet at the model's stage (no discharge yet)."""
    model = state.registry.models[task_name]
    task = model.task
    if task.stage == "discharge" and case["discharge_date"].isna().any():
        return None
    derived = ("los_days",) if task.stage == "discharge" else ()
    columns = [c for c in (*fields_known_at(task.stage), *derived) if c in case.columns]
    try:
        withheld = withheld_features(model, role, stored_history=True)
        prediction = predict_explained(
            model, case[columns], history=history, language=lang, withheld=withheld
        )[0]  # type: ignore[arg-type]
    except ScoringError as error:
        return {"task": task, "model": model, "error": str(error)}
    svg = waterfall_svg(prediction["explanation"], prediction["unit"], lang)
    return {"task": task, "model": model, "prediction": prediction, "svg": svg, "error": None}


def _summary(row: Any, lang: str) -> list[tuple[str, str]]:
    zh = lang == "zh"

    def label(codes: dict[int, tuple[str, str]], value: Any) -> str:
        return codes.get(int(value), (str(value), str(value)))[0 if zh else 1] if value == value else "—"

    def date(value: Any) -> str:
        return value.date().isoformat() if value == value and value is not None else "—"

    items = [
        ("科室" if zh else "department", str(row.get("department", "—"))),
        ("入院日期" if zh else "admitted", date(row.get("admission_date"))),
        ("出院日期" if zh else "discharged", date(row.get("discharge_date"))),
        ("年龄" if zh else "age", str(row.get("age_years", "—"))),
        ("性别" if zh else "sex", label(SEXES, row.get("sex"))),
        ("入院途径" if zh else "admission route", label(ADMISSION_SOURCES, row.get("admission_source"))),
        ("入院类型" if zh else "admission type", label(ADMISSION_TYPES, row.get("admission_type"))),
        ("入院诊断" if zh else "admission diagnosis", str(row.get("admission_diagnosis") or "—")),
        ("主要诊断" if zh else "principal diagnosis", str(row.get("principal_diagnosis") or "—")),
    ]
    return items


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    state: State,
    lang: PageLang,
    principal: Annotated[Principal, Depends(require(*QUEUE_ROLES))],
    department: Annotated[str | None, Query(max_length=64)] = None,
    error_type: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[str, Query(max_length=32)] = "rank",
    descending: bool = False,
):
    """The coding-review queue, sortable by any column header and filterable by department and error type."""
    sort = sort if sort in SORTABLE else "rank"
    view = state.queue.view(
        department=department or None,
        error_type=error_type or None,
        sort=sort,
        descending=descending,
        limit=500,
    )
    choices = state.queue.choices()
    source = state.queue.weights_source()
    state.audit.record(
        key_id=principal.key_id, role=principal.role, endpoint="/queue", case_ids=view["case_id"].tolist()
    )

    sort_link = sort_links(
        "/queue", sort, descending, lang=lang, department=department, error_type=error_type
    )

    context = {
        "lang": lang,
        "principal": principal,
        "rows": view.to_dict("records"),
        "choices": choices,
        "department": department or "",
        "error_type": error_type or "",
        "sort": sort,
        "descending": descending,
        "sort_link": sort_link,
        "sortable": SORTABLE,
        "weights_source": source,
    }
    return TEMPLATES.TemplateResponse(request, "queue.html", context)


def sort_links(path: str, sort: str, descending: bool, **kept: str | None) -> Callable[[str], str]:
    """A table page's header link for a column: sorted by it (the other way when it is the current
    sort), the page's language and filters ``kept``."""

    def link(column: str) -> str:
        flip = column == sort and not descending
        query = {"sort": column, "descending": str(flip).lower(), **{k: v or "" for k, v in kept.items()}}
        return f"{path}?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())

    return link
