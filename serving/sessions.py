"""Login sessions of the pages and the login throttle, in one small SQLite file every worker shares.

A person logs in with a key once; the browser then holds only a random opaque session id (HttpOnly,
SameSite=Strict, Secure under TLS). The file keeps the id's SHA-256 (a copy of the file opens no
session), the key id and role, a CSRF token for the session's forms, and when the session ends:
``lifetime`` after login or ``idle`` after the last request, whichever comes first. Logging out
deletes the session on the server, so a shared ward PC keeps nothing usable. A session is only as
good as its key: the caller checks the key is still active on every request (``KeyStore.active``).

The throttle counts login attempts per client address: more than ``per_minute`` in a minute, or
``failures`` failed attempts within ``lockout`` seconds, and the address is refused (429) until the
window passes. SQLite (stdlib) rather than a server: the service is a few processes on one host,
and the file lives in the private data folder like the rest of its state.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from serving.security import Principal

SESSION_COOKIE = "caselens_session"
LOGIN_CSRF_COOKIE = "caselens_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_sha256 TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    last_seen REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_key ON sessions (key_id);
CREATE TABLE IF NOT EXISTS login_attempts (client TEXT NOT NULL, time REAL NOT NULL, ok INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS login_attempts_client ON login_attempts (client, time);
"""


@dataclass(frozen=True)
class Session:
    key_id: str
    role: str
    csrf: str
    expires: float

    @property
    def principal(self) -> Principal:
        return Principal(self.key_id, self.role)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionDatabase:
    """The shared SQLite file: created 0600, a new connection per operation (workers and threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite's journals take this mode
        with self.connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:  # `with db`: one transaction
            yield db

    def end_sessions(self, key_id: str) -> int:
        """End every session of ``key_id`` (its key was revoked); returns how many there were."""
        with self.connect() as db:
            return db.execute("DELETE FROM sessions WHERE key_id = ?", (key_id,)).rowcount


class SessionStore:
    def __init__(
        self,
        database: SessionDatabase,
        lifetime: float,
        idle: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database, self.lifetime, self.idle, self._clock = database, lifetime, idle, clock
        # last_seen is written at most this often: a page view is not a database write each time.
        self._touch_every = min(60.0, idle / 10)

    def create(self, principal: Principal) -> tuple[str, Session]:
        """A new session for ``principal``: the id (for the cookie, never stored) and the session."""
        session_id, now = secrets.token_urlsafe(32), self._clock()
        key_id, role = principal.key_id, principal.role
        session = Session(key_id, role, secrets.token_urlsafe(32), now + self.lifetime)
        with self.database.connect() as db:
            db.execute("DELETE FROM sessions WHERE expires < ? OR last_seen < ?", (now, now - self.idle))
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_digest(session_id), key_id, role, session.csrf, now, now, session.expires),
            )
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        """The live session of ``session_id``; an expired or idle one is deleted and gives None."""
        now, digest = self._clock(), _digest(session_id)
        with self.database.connect() as db:
            row = db.execute(
                "SELECT key_id, role, csrf, expires, last_seen FROM sessions WHERE id_sha256 = ?", (digest,)
            ).fetchone()
            if row is None:
                return None
            key_id, role, csrf, expires, last_seen = row
            if now >= expires or now - last_seen >= self.idle:
                db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (digest,))
                return None
            if now - last_seen >= self._touch_every:
                db.execute("UPDATE sessions SET last_seen = ? WHERE id_sha256 = ?", (now, digest))
        return Session(key_id, role, csrf, expires)

    def delete(self, session_id: str) -> None:
        with self.database.connect() as db:
            db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_digest(session_id),))


class LoginThrottle:
    """Rate limit and lockout of ``POST /login`` per client address, shared by every worker."""

    def __init__(
        self,
        database: SessionDatabase,
        per_minute: int,
        failures: int,
        lockout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database, self.per_minute, self.failures, self.lockout = database, per_minute, failures, lockout
        self._clock = clock

    def refusal(self, client: str) -> tuple[str, int] | None:
        """Why ``client`` may not try now ("rate_limited" or "locked_out") and the seconds to wait."""
        now = self._clock()
        with self.database.connect() as db:
            db.execute("DELETE FROM login_attempts WHERE time < ?", (now - max(self.lockout, 60.0),))
            recent = [
                t
                for (t,) in db.execute(
                    "SELECT time FROM login_attempts WHERE client = ? AND time >= ? ORDER BY time DESC",
                    (client, now - 60.0),
                )
            ]
            failed = [
                t
                for (t,) in db.execute(
                    "SELECT time FROM login_attempts WHERE client = ? AND ok = 0 AND time >= ? "
                    "ORDER BY time DESC LIMIT ?",
                    (client, now - self.lockout, self.failures),
                )
            ]
        if len(failed) >= self.failures:
            return "locked_out", max(1, int(failed[-1] + self.lockout - now + 0.999))
        if len(recent) >= self.per_minute:
            return "rate_limited", max(1, int(recent[self.per_minute - 1] + 60.0 - now + 0.999))
        return None

    def record(self, client: str, ok: bool) -> None:
        """Count an attempt; a successful login forgives the address's earlier failures."""
        with self.database.connect() as db:
            if ok:
                db.execute("DELETE FROM login_attempts WHERE client = ? AND ok = 0", (client,))
            db.execute("INSERT INTO login_attempts VALUES (?, ?, ?)", (client, self._clock(), int(ok)))
