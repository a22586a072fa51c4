"""Keys: hashes only on disk, configuration errors name the entry, the CLI makes, lists and revokes keys
and the demo key, and a running key store follows the file."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from cli.app import app
from serving.deps import preferred_language
from serving.security import (
    KeyConfigError,
    KeyStore,
    Principal,
    add_key,
    hash_key,
    read_key_file,
    revoke_key,
)


def test_added_key_is_stored_as_its_hash_only(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "alice", "coder")
    stored = json.loads(path.read_text())
    assert stored.keys() == {"alice"} and stored["alice"].keys() == {"sha256", "role", "created"}
    assert stored["alice"]["sha256"] == hash_key(key) and stored["alice"]["role"] == "coder"
    assert key not in path.read_text()
    principal = KeyStore.from_config(None, path).authenticate(key)
    assert (principal.key_id, principal.role) == ("alice", "coder")
    assert KeyStore.from_config(None, path).authenticate(key + "x") is None
    with pytest.raises(KeyConfigError, match="exists already"):
        add_key(path, "alice", "admin")


def test_key_configuration_errors_name_the_entry(tmp_path):
    with pytest.raises(KeyConfigError, match=r"'bob'.*role 'boss'"):
        KeyStore({"bob": {"sha256": "0" * 64, "role": "boss"}}, "keys.json")
    with pytest.raises(KeyConfigError, match=r"'bob'.*64 hex"):
        KeyStore({"bob": {"sha256": "xyz", "role": "coder"}}, "keys.json")
    with pytest.raises(KeyConfigError, match="does not exist"):
        KeyStore.from_config(str(tmp_path / "missing.json"), tmp_path / "missing.json")
    toml = tmp_path / "keys.toml"
    toml.write_text(f'[carol]\nsha256 = "{hash_key("k")}"\nrole = "finance"\n')
    assert KeyStore.from_config(str(toml), toml).authenticate("k").role == "finance"
    inline = json.dumps({"dan": {"sha256": hash_key("k2"), "role": "admin"}})
    assert KeyStore.from_config(inline, None).authenticate("k2").key_id == "dan"


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, "zh"),
        ("en", "en"),
        ("zh-CN", "zh"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN;q=0.4,en;q=0.8", "en"),
        ("fr", "zh"),
        ("en;q=abc", "zh"),
    ],
)
def test_language_from_accept_language(header, expected):
    assert preferred_language(header) == expected


def test_cli_makes_keys_and_serve_makes_a_demo_admin_key_once(settings, monkeypatch):
    runner = CliRunner()
    made = runner.invoke(app, ["api-key", "--role", "coder", "--id", "alice"])
    assert made.exit_code == 0, made.output
    keys = json.loads((settings.data_dir / "api-keys.json").read_text())
    assert keys["alice"]["role"] == "coder"
    assert runner.invoke(app, ["api-key", "--role", "boss", "--id", "bob"]).exit_code == 2

    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(options))
    (settings.data_dir / "api-keys.json").unlink()
    first = runner.invoke(app, ["serve", "--port", "8123"])
    assert first.exit_code == 0, first.output
    assert started[-1]["port"] == 8123 and started[-1]["host"] == "127.0.0.1"
    assert "demo admin key" in first.output
    keys = json.loads((settings.data_dir / "api-keys.json").read_text())
    assert keys["demo-admin"]["role"] == "admin"
    second = runner.invoke(app, ["serve"])
    assert "demo admin key" not in second.output


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_running_key_store_follows_revocations_and_new_keys_in_the_file(tmp_path):
    path = tmp_path / "keys.json"
    old = add_key(path, "old", "coder")
    clock = Clock()
    store = KeyStore(read_key_file(path), str(path), path=path, check_every=2.0, clock=clock)
    assert store.authenticate(old).key_id == "old"
    revoke_key(path, "old")
    new = add_key(path, "new", "finance")
    assert store.authenticate(old) is not None and store.authenticate(new) is None  # not checked yet
    clock.now += 2.0
    assert store.authenticate(old) is None and store.active("old") is None
    assert store.authenticate(new) == Principal("new", "finance") == store.active("new")
    path.write_text("{ half a file")  # a bad hand edit: every key refused until it is fixed
    clock.now += 2.0
    assert store.authenticate(new) is None
    path.unlink()
    clock.now += 2.0
    assert len(store) == 0


def test_key_file_writes_are_atomic_private_and_lose_no_concurrent_change(tmp_path):
    path = tmp_path / "keys" / "api-keys.json"
    with ThreadPoolExecutor(8) as pool:
        keys = dict(
            zip(range(24), pool.map(lambda i: add_key(path, f"user-{i}", "coder"), range(24)), strict=True)
        )
    store = KeyStore.from_config(None, path)
    assert all(store.authenticate(key).key_id == f"user-{i}" for i, key in keys.items())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.with_name("api-keys.json.lock").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["api-keys.json", "api-keys.json.lock"]
    with pytest.raises(KeyConfigError, match="no key id 'nobody'"):
        revoke_key(path, "nobody")
    revoke_key(path, "user-3")
    with pytest.raises(KeyConfigError, match="revoked already"):
        revoke_key(path, "user-3")
    with pytest.raises(KeyConfigError, match="exists already"):
        add_key(path, "user-3", "coder")  # a revoked id stays taken: the audit log names one holder
    with pytest.raises(KeyConfigError, match="key id"):
        add_key(path, "../evil\n", "coder")


def test_cli_lists_and_revokes_keys_without_printing_secrets(settings):
    runner = CliRunner()
    made = runner.invoke(app, ["api-key", "--role", "coder", "--id", "alice"])
    key = made.output.split("│")[1].strip()
    assert key.startswith("cl_")
    listed = runner.invoke(app, ["api-key", "--list"])
    assert listed.exit_code == 0 and "alice" in listed.output and "coder" in listed.output
    stored = json.loads((settings.data_dir / "api-keys.json").read_text())["alice"]
    assert key not in listed.output and stored["sha256"] not in listed.output
    revoked = runner.invoke(app, ["api-key", "--revoke", "alice"])
    assert revoked.exit_code == 0, revoked.output
    assert KeyStore.from_config(None, settings.data_dir / "api-keys.json").authenticate(key) is None
    assert "alice" in runner.invoke(app, ["api-key", "--list"]).output  # listed, with its revocation
    assert runner.invoke(app, ["api-key", "--revoke", "alice"]).exit_code == 2
    assert runner.invoke(app, ["api-key"]).exit_code == 2
