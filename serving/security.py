"""API keys with roles: only SHA-256 hashes are stored, a key is shown once when it is made.

A key is presented as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; the pages' login form
turns it into a server-side session (:mod:`serving.sessions`), so the key itself never sits in a
cookie. The key file maps a key id (what the audit log records) to the hash of the key, its role,
when it was made and, once revoked, when it was revoked.

Every worker re-reads the key file when it changes (checked at most every ``check_every`` seconds),
so ``caselens api-key --revoke ID`` and new keys take effect in a running service without restart.
The CLI writes the file under an exclusive lock, through a private temporary file and ``os.replace``:
a worker never reads half a file, and two writers never lose each other's change.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.errors import ConfigError
from serving.roles import ROLES

log = logging.getLogger(__name__)

KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class KeyConfigError(ConfigError):
    """The key configuration cannot be read; the message names the file and entry."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key id (never the key) and its role."""

    key_id: str
    role: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_entries(entries: dict[str, Any], source: str) -> dict[str, Principal]:
    """Key hash → principal of every key not revoked; errors name ``source`` and the entry."""
    by_hash: dict[str, Principal] = {}
    for key_id, entry in entries.items():
        if not isinstance(entry, dict) or not {"sha256", "role"} <= entry.keys():
            raise KeyConfigError(f"{source}: key {key_id!r} needs 'sha256' and 'role'")
        digest, role = str(entry["sha256"]).lower(), entry["role"]
        if role not in ROLES:
            raise KeyConfigError(f"{source}: key {key_id!r} has role {role!r}; roles are {', '.join(ROLES)}")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise KeyConfigError(f"{source}: key {key_id!r}: 'sha256' must be 64 hex digits")
        if not entry.get("revoked"):
            by_hash[digest] = Principal(key_id, role)
    return by_hash


class KeyStore:
    """Key hash → principal; lookups hash the presented key, so keys never sit in memory or on disk.

    With a ``path``, the store follows the file: a changed file (another inode after ``os.replace``,
    or another size or modification time) is read again. A file that becomes unreadable or invalid
    refuses every key until it is fixed (fail closed: a half-edited file must not resurrect a revoked
    key); a deleted file means no keys.
    """

    def __init__(
        self,
        entries: dict[str, Any],
        source: str = "keys",
        *,
        path: Path | None = None,
        check_every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.path, self.check_every, self._clock = source, path, check_every, clock
        self._by_hash = parse_entries(entries, source)
        self._by_id = {p.key_id: p for p in self._by_hash.values()}
        self._signature = _signature(path) if path is not None else None
        self._checked = clock()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        self.refresh()
        return len(self._by_hash)

    def authenticate(self, key: str) -> Principal | None:
        self.refresh()
        return self._by_hash.get(hash_key(key))

    def active(self, key_id: str) -> Principal | None:
        """The principal of ``key_id`` while its key is valid (sessions check this on every request)."""
        self.refresh()
        return self._by_id.get(key_id)

    def refresh(self) -> None:
        """Read the key file again if it changed; at most one stat per ``check_every`` seconds."""
        if self.path is None or self._clock() - self._checked < self.check_every:
            return
        with self._lock:
            self._checked = self._clock()
            signature = _signature(self.path)
            if signature == self._signature:
                return
            try:
                by_hash = parse_entries(read_key_file(self.path), str(self.path)) if signature else {}
            except (KeyConfigError, OSError) as error:
                log.error("key file unusable, every key refused until it is fixed: %s", error)
                by_hash = {}
            self._by_hash, self._by_id = by_hash, {p.key_id: p for p in by_hash.values()}
            self._signature = signature
            log.info("key file %s read again: %d active key(s)", self.path, len(by_hash))

    @classmethod
    def from_config(cls, value: str | None, path: Path | None, check_every: float = 1.0) -> KeyStore:
        """Keys from inline JSON (``value``) or the key file ``path``; a missing default file is no keys."""
        if path is None:
            return cls(_parse_json(value or "{}", "CASELENS_SERVE_API_KEYS"), "CASELENS_SERVE_API_KEYS")
        seen = _signature(path)  # before reading: a change made meanwhile is then read at the next check
        if seen is None:
            if value:
                raise KeyConfigError(f"API key file {path} does not exist")
            entries = {}
        else:
            entries = read_key_file(path)
        store = cls(entries, str(path), path=path, check_every=check_every)
        store._signature = seen
        return store


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def read_key_file(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise KeyConfigError(f"{path}: {exc}") from exc
    return _parse_json(text, str(path))


def _parse_json(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyConfigError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise KeyConfigError(f"{source}: expected an object of key id → {{sha256, role}}")
    return data


@contextmanager
def _key_file_for_update(path: Path) -> Iterator[dict[str, Any]]:
    """The key file's entries under an exclusive lock; the entries as changed are written back atomically."""
    if path.suffix != ".json":
        raise KeyConfigError(f"{path}: the CLI writes JSON key files only; edit TOML key files by hand")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_key_file(path) if path.exists() else {}
        yield entries
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(json.dumps(entries, indent=2) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    finally:
        os.close(lock)  # releases the lock


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def add_key(path: Path, key_id: str, role: str) -> str:
    """Make a new key for ``role``, store its hash under ``key_id`` in the JSON key file, return the key."""
    if role not in ROLES:
        raise KeyConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not KEY_ID.fullmatch(key_id):
        raise KeyConfigError(
            f"key id {key_id!r}: 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    key = "cl_" + secrets.token_urlsafe(32)
    with _key_file_for_update(path) as entries:
        if key_id in entries:  # revoked ids stay taken: the audit log must name one holder per id
            raise KeyConfigError(f"{path}: key id {key_id!r} exists already")
        entries[key_id] = {"sha256": hash_key(key), "role": role, "created": _now()}
    return key


def revoke_key(path: Path, key_id: str) -> None:
    """Mark ``key_id`` revoked: running workers refuse it (and end its sessions) at their next check."""
    with _key_file_for_update(path) as entries:
        entry = entries.get(key_id)
        if not isinstance(entry, dict):
            raise KeyConfigError(f"{path}: no key id {key_id!r}")
        if entry.get("revoked"):
            raise KeyConfigError(f"{path}: key {key_id!r} was revoked already, at {entry['revoked']}")
        entry["revoked"] = _now()


def list_keys(path: Path) -> list[dict[str, str]]:
    """Id, role, creation and revocation time of every key in the file: never a hash, never a key."""
    entries = read_key_file(path) if path.exists() else {}
    return [
        {
            "id": key_id,
            "role": str(entry.get("role", "")),
            "created": str(entry.get("created", "")),
            "revoked": str(entry.get("revoked") or ""),
        }
        for key_id, entry in sorted(entries.items())
        if isinstance(entry, dict)
    ]
