"""Login sessions: an opaque id instead of the key, server-side expiry and logout, CSRF/Origin checks,
header keys only on /v1, revocation ending sessions, and the login rate limit and lockout."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3

import pytest
from fastapi.testclient import TestClient

from serving.security import Principal, add_key, revoke_key
from serving.sessions import SESSION_COOKIE, LoginThrottle, SessionDatabase, SessionStore
from tests.serving.logins import ORIGIN, log_in, login_token, page_token

pytestmark = pytest.mark.slow


@pytest.fixture
def person(make_app):
    """A browser-like client (cookies kept, redirects not followed); the app checks keys on every request."""
    with TestClient(make_app(keys_check_seconds=0), follow_redirects=False) as client:
        yield client


def sessions_file(world):
    return world.settings.data_dir / "serve" / "sessions.sqlite"


def test_login_gives_an_opaque_session_id_and_the_server_keeps_only_its_hash(person, world):
    key = world.keys["clinician"]
    answer = log_in(person, key)
    assert answer.status_code == 303
    session_id = person.cookies[SESSION_COOKIE]
    assert key not in answer.headers["set-cookie"] and session_id != key and len(session_id) >= 40
    assert "secure" not in answer.headers["set-cookie"].lower()  # plain HTTP here: see the TLS test
    with sqlite3.connect(sessions_file(world)) as db:
        rows = db.execute("SELECT id_sha256, key_id, role FROM sessions").fetchall()
    assert (hashlib.sha256(session_id.encode()).hexdigest(), "test-clinician", "clinician") in rows
    assert not any(session_id in str(row) for row in rows)
    assert person.get("/?lang=en").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {"Origin": "", "Referer": "https://evil.example/form"},
    ],
    ids=["other-origin", "null-origin", "cross-site-fetch", "other-referer"],
)
def test_a_cross_site_login_is_refused(person, world, headers):
    answer = log_in(person, world.keys["admin"], **headers)
    assert answer.status_code == 403 and SESSION_COOKIE not in person.cookies
    audit = [
        json.loads(line) for line in world.settings.data_dir.joinpath("audit.jsonl").read_text().splitlines()
    ]
    assert audit[-1]["endpoint"] == "/login" and audit[-1]["outcome"] == "cross_site"


def test_a_login_without_the_login_forms_token_is_refused(person, world):
    """A cross-site form cannot read the token: posting without it (or with another) is refused."""
    login_token(person)  # the cookie half is there; the form half is missing or wrong
    for token in ("", "forged"):
        data = {"key": world.keys["admin"], "next": "/", "csrf_token": token}
        assert person.post("/login", data=data, headers={"Origin": ORIGIN}).status_code == 403
    person.cookies.clear()
    data = {"key": world.keys["admin"], "next": "/", "csrf_token": "anything"}
    assert person.post("/login", data=data, headers={"Origin": ORIGIN}).status_code == 403


def test_v1_routes_take_header_keys_only_never_the_session_cookie(person, world, auth):
    assert log_in(person, world.keys["admin"]).status_code == 303
    assert person.get("/?lang=en").status_code == 200  # the session works for pages
    assert person.post("/v1/admin/reload", headers={"Origin": ORIGIN}).status_code == 401
    assert person.get("/v1/review/queue").status_code == 401
    # and the old cookie, holding the key itself, is no credential at all
    with TestClient(person.app, follow_redirects=False) as other:
        other.cookies.set("caselens_key", world.keys["admin"])
        assert other.get("/v1/review/queue").status_code == 401
        assert other.get("/?lang=en").status_code == 303
    assert person.get("/v1/review/queue", headers=auth("coder")).status_code != 401


def test_logout_ends_the_session_on_the_server_and_needs_the_csrf_token(person, world):
    assert log_in(person, world.keys["coder"]).status_code == 303
    session_id = person.cookies[SESSION_COOKIE]
    token = page_token(person)
    refused = person.post("/logout", data={"csrf_token": "forged"}, headers={"Origin": ORIGIN})
    assert refused.status_code == 403
    cross = person.post("/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert person.get("/queue").status_code == 200  # neither ended the session
    out = person.post("/logout", data={"csrf_token": token}, headers={"Origin": ORIGIN})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    with TestClient(person.app, follow_redirects=False) as stolen:  # the id copied before logout
        stolen.cookies.set(SESSION_COOKIE, session_id)
        assert stolen.get("/queue").status_code == 303
    with sqlite3.connect(sessions_file(world)) as db:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        assert db.execute("SELECT count(*) FROM sessions WHERE id_sha256 = ?", (digest,)).fetchone() == (0,)


def test_revoking_a_key_ends_its_sessions_at_the_next_request(person, world):
    key = add_key(world.keys_path, "session-revoked", "coder")
    assert log_in(person, key, "/queue").status_code == 303
    assert person.get("/queue").status_code == 200
    revoke_key(world.keys_path, "session-revoked")
    assert person.get("/queue").status_code == 303  # back to the login form
    assert log_in(person, key).status_code == 401


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_after_their_lifetime_or_when_idle(tmp_path):
    clock = Clock()
    store = SessionStore(SessionDatabase(tmp_path / "s.sqlite"), lifetime=3600, idle=600, clock=clock)
    alice = Principal("alice", "coder")
    session_id, session = store.create(alice)
    assert store.get(session_id) == session and session.principal == alice
    for _ in range(5):  # active every 9 minutes: idle never reached...
        clock.now += 540
        assert store.get(session_id) is not None
    clock.now += 3600 - 5 * 540  # ...but the lifetime is
    assert store.get(session_id) is None
    idle_id, _ = store.create(alice)
    clock.now += 601
    assert store.get(idle_id) is None
    assert store.get("never-issued") is None
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o777 == 0o600


def test_the_throttle_locks_out_after_failures_and_limits_the_rate(tmp_path):
    clock = Clock()
    throttle = LoginThrottle(SessionDatabase(tmp_path / "s.sqlite"), 4, 3, lockout=900, clock=clock)
    for _ in range(3):
        assert throttle.refusal("10.0.0.1") is None
        throttle.record("10.0.0.1", ok=False)
    assert throttle.refusal("10.0.0.1") == ("locked_out", 900)
    assert throttle.refusal("10.0.0.2") is None  # another address is not affected
    clock.now += 600
    assert throttle.refusal("10.0.0.1") == ("locked_out", 300)
    clock.now += 301
    assert throttle.refusal("10.0.0.1") is None  # the failures aged out
    for _ in range(4):
        throttle.record("10.0.0.3", ok=True)
        clock.now += 1
    assert throttle.refusal("10.0.0.3") == ("rate_limited", 56)


def test_login_lockout_and_rate_limit_over_http_are_logged_without_the_key(make_app, world, caplog):
    app = make_app(login_failures=3, login_per_minute=100)
    wrong = "cl_wrong-key-that-must-not-be-logged"
    with (
        TestClient(app, follow_redirects=False, client=("203.0.113.7", 4000)) as attacker,
        caplog.at_level(logging.INFO),
    ):
        assert [log_in(attacker, wrong).status_code for _ in range(3)] == [401] * 3
        locked = log_in(attacker, world.keys["admin"])  # even the right key, once locked out
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 800
    with TestClient(app, follow_redirects=False, client=("203.0.113.8", 4000)) as other:
        assert log_in(other, world.keys["admin"]).status_code == 303
    limited = make_app(login_per_minute=2)
    with TestClient(limited, follow_redirects=False, client=("203.0.113.9", 4000)) as hurried:
        codes = [log_in(hurried, world.keys["admin"]).status_code for _ in range(3)]
    assert codes == [303, 303, 429]
    logged = caplog.text
    assert "203.0.113.7" in logged and "locked out" in logged
    assert wrong not in logged and world.keys["admin"] not in logged
    audit = world.settings.data_dir.joinpath("audit.jsonl").read_text()
    assert '"outcome": "locked_out"' in audit and wrong not in audit
