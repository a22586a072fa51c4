"""The HTTP status of each error of the hierarchy (``contract.errors``), answered in one place.

Routers raise and do not translate: an ``InputError`` is the caller's (422, in the shape every
validation error has), a ``NotFound`` 404, a ``StateError`` 503 (try again later); their messages are
written for users and answered. A ``ConfigError`` here is the service's own settings (rules, tables,
keys): 503, logged as a fault and answered without its text, which names the server's files. Anything
outside the hierarchy stays a fault (``serving.faults``: 500, no internal text).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from contract.errors import CaselensError, ConfigError, InputError, NotFound, StateError
from serving.faults import fault_detail, report

STATUS_CODES: dict[type[CaselensError], int] = {
    InputError: 422,
    NotFound: 404,
    StateError: 503,
    ConfigError: 503,
    CaselensError: 400,
}
"""HTTP status per error class, first match wins (a subclass before its base)."""


def status_code(error: CaselensError) -> int:
    return next(code for kind, code in STATUS_CODES.items() if isinstance(error, kind))


def writable(text: str) -> str:
    """Text made writable as UTF-8 JSON (a lone surrogate from the caller's body is replaced)."""
    return text.encode("utf-8", "replace").decode("utf-8")


async def caselens_error(request: Request, error: CaselensError) -> Response:
    """The exception handler of ``CaselensError``: its status and, unless it is the service's, message."""
    status, message = status_code(error), writable(str(error))
    if isinstance(error, ConfigError):
        report(f"{request.method} request met a configuration error", error)
        message = fault_detail()
    elif status == 422:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": message, "type": "value_error"}]}, 422)
    return JSONResponse({"detail": message}, status)
