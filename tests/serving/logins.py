"""Log in through the login form as a browser does: the form's CSRF token and our own Origin."""

from __future__ import annotations

import re
from typing import Any

ORIGIN = "http://testserver"  # TestClient's base URL: a same-origin form post names it


def login_token(client: Any) -> str:
    """Open the login form; its hidden CSRF token (the client keeps the matching cookie)."""
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def log_in(client: Any, key: str, next: str = "/", **headers: str) -> Any:
    """POST the login form with a fresh token; ``headers`` add to (or replace) the same-origin Origin."""
    data = {"key": key, "next": next, "csrf_token": login_token(client)}
    return client.post("/login", data=data, headers={"Origin": ORIGIN, **headers})


def page_token(client: Any, path: str = "/") -> str:
    """The session's CSRF token, from the logout form of a page."""
    page = client.get(path)
    return re.search(
        r'action="/logout"><input type="hidden" name="csrf_token" value="([^"]+)"', page.text
    ).group(1)
