"""Keys: hashes only on disk, configuration errors name the entry, the CLI makes keys and the demo key."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from serving.deps import preferred_language
from serving.security import KeyConfigError, KeyStore, add_key, hash_key


def test_added_key_is_stored_as_its_hash_only(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "alice", "coder")
    stored = json.loads(path.read_text())
    assert stored == {"alice": {"sha256": hash_key(key), "role": "coder"}}
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
