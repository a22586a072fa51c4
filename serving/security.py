"""API keys with roles: only SHA-256 hashes are stored, a key is shown once when it is made.

A key is presented as ``Authorization: Bearer <key>``, ``X-API-Key: <key>`` or, for the pages, the
``caselens_key`` cookie set by the login form. The key file maps a key id (what the audit log records)
to the hash of the key and its role.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from serving.tasks import ROLES

COOKIE_NAME = "caselens_key"


class KeyConfigError(ValueError):
    """The key configuration cannot be read; the message names the file and entry."""


@dataclass(frozen=True)
class Principal:
    """Who is asking: the key id (never the key) and its role."""

    key_id: str
    role: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """Key hash → principal; lookups hash the presented key, so keys never sit in memory or on disk."""

    def __init__(self, entries: dict[str, dict[str, str]], source: str = "keys") -> None:
        self._by_hash: dict[str, Principal] = {}
        for key_id, entry in entries.items():
            if not isinstance(entry, dict) or not {"sha256", "role"} <= entry.keys():
                raise KeyConfigError(f"{source}: key {key_id!r} needs 'sha256' and 'role'")
            digest, role = str(entry["sha256"]).lower(), entry["role"]
            if role not in ROLES:
                raise KeyConfigError(
                    f"{source}: key {key_id!r} has role {role!r}; roles are {', '.join(ROLES)}"
                )
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise KeyConfigError(f"{source}: key {key_id!r}: 'sha256' must be 64 hex digits")
            self._by_hash[digest] = Principal(key_id, role)

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, key: str) -> Principal | None:
        return self._by_hash.get(hash_key(key))

    @classmethod
    def from_config(cls, value: str | None, path: Path | None) -> KeyStore:
        """Keys from inline JSON (``value``) or the key file ``path``; a missing default file is no keys."""
        if path is None:
            return cls(_parse_json(value or "{}", "CASELENS_SERVE_API_KEYS"), "CASELENS_SERVE_API_KEYS")
        if not path.exists():
            if value:
                raise KeyConfigError(f"API key file {path} does not exist")
            return cls({})
        return cls(read_key_file(path), str(path))


def read_key_file(path: Path) -> dict[str, dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise KeyConfigError(f"{path}: {exc}") from exc
    return _parse_json(text, str(path))


def _parse_json(text: str, source: str) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeyConfigError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise KeyConfigError(f"{source}: expected an object of key id → {{sha256, role}}")
    return data


def add_key(path: Path, key_id: str, role: str) -> str:
    """Make a new key for ``role``, store its hash under ``key_id`` in the JSON key file, return the key."""
    if role not in ROLES:
        raise KeyConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if path.suffix != ".json":
        raise KeyConfigError(f"{path}: new keys are written to JSON key files; add TOML entries by hand")
    entries = read_key_file(path) if path.exists() else {}
    if key_id in entries:
        raise KeyConfigError(f"{path}: key id {key_id!r} exists already")
    key = "cl_" + secrets.token_urlsafe(32)
    entries[key_id] = {"sha256": hash_key(key), "role": role}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key
