"""The audit log and the operations endpoints under a hostile or careless world.

The audit log: created 0600, reopened after rotation, one line per entry whatever the ids hold, the
request id and client address in every entry, and /readyz not ready when it cannot be written.
/readyz names the served task that lacks a champion; its details and /metrics need an admin key.
"""

from __future__ import annotations

import json
import shutil
import stat

import pytest
from fastapi.testclient import TestClient

from models.tasks.cost import CostTask
from serving.app import create_app
from serving.audit import AuditLog
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.registry import ModelRegistry
from serving.tasks import SERVED_TASKS, ServedTask


class GhostTask(CostTask):
    """A task with no model registered."""

    name = "ghost"


pytestmark = pytest.mark.slow


def test_entries_stay_on_one_line_and_read_back_exactly(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    odd = ["a\u2028b", "c\u2029d", "e\x85f", "g\nh\ri", "j\ud800k", "病案"]
    log.record(key_id="k", role="admin", endpoint="/x", case_ids=odd)
    log.record(key_id="k", role="admin", endpoint="/y", patient_ids=["p\u2028"])
    text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    lines = text.splitlines()  # splits at U+2028, U+2029 and U+0085 as well
    assert len(lines) == 2 and text.count("\n") == 2
    first, second = (json.loads(line) for line in lines)
    assert first["case_ids"] == odd  # a lone surrogate too: written as its JSON escape, not an error
    assert second["history_patient_ids"] == ["p\u2028"]
    assert "病案" in text  # readable, not \\u-escaped


def test_the_audit_log_is_private_and_follows_rotation(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record(key_id="k", role="admin", endpoint="/first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.rename(tmp_path / "audit.jsonl.1")  # what logrotate does
    log.record(key_id="k", role="admin", endpoint="/second")
    assert json.loads(path.read_text())["endpoint"] == "/second"
    assert json.loads((tmp_path / "audit.jsonl.1").read_text())["endpoint"] == "/first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    path.mkdir()  # a path that cannot be written
    assert not log.writable()
    with pytest.raises(OSError):
        log.record(key_id="k", role="admin", endpoint="/third")


def test_every_entry_names_the_request_and_the_client(client, world, auth, admission_body):
    asked = client.post(
        "/v1/predict/cost", json=admission_body(2), headers={**auth("clinician"), "X-Request-ID": "ward-7.42"}
    )
    refused = client.post("/v1/predict/cost", json=admission_body(2), headers={"X-Request-ID": "bad id\n"})
    assert asked.headers["x-request-id"] == "ward-7.42"
    assert refused.status_code == 401 and refused.headers["x-request-id"] != "bad id\n"  # not a caller's text
    entries = [
        json.loads(line) for line in (world.settings.data_dir / "audit.jsonl").read_text().splitlines()
    ]
    by_id = {e["request_id"]: e for e in entries}
    assert by_id["ward-7.42"]["client"] == "testclient" and by_id["ward-7.42"]["key_id"] == "test-clinician"
    assert by_id[refused.headers["x-request-id"]]["outcome"] == "unauthenticated"
    assert all(e["request_id"] and e["client"] for e in entries[-2:])


def test_readiness_fails_while_the_audit_log_cannot_be_written(make_app, world, auth, tmp_path):
    audit = tmp_path / "audit.jsonl"
    with TestClient(make_app(audit_log=str(audit))) as client:
        assert client.get("/readyz").status_code == 200
        audit.unlink(missing_ok=True)
        audit.mkdir()
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"ready": False, "problems": ["the audit log cannot be written"]}
        shutil.rmtree(audit)
        assert client.get("/readyz").status_code == 200


def test_readiness_names_the_task_without_a_champion(world, auth):
    ghost = ServedTask(GhostTask(), ("admin",))
    app = create_app(
        world.settings,
        ServingSettings(api_keys=str(world.keys_path), reload_poll_seconds=0),
        registry=ModelRegistry(world.mlflow_uri, {"cost": SERVED_TASKS["cost"], "ghost": ghost}),
        cases=CaseIndex(lambda: world.cases),
    )
    with TestClient(app) as client:
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["problems"] == ["task ghost has no champion loaded (caselens-ghost: missing)"]
        assert "models" not in answer.json()  # details need a key
        detailed = client.get("/readyz", headers=auth("admin")).json()
        assert {m["task"]: m["state"] for m in detailed["models"]} == {"cost": "loaded", "ghost": "missing"}


def test_metrics_need_an_admin_key_unless_opened(client, make_app, auth):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=auth("finance")).status_code == 403
    assert client.get("/metrics", headers=auth("admin")).status_code == 200
    with TestClient(make_app(("cost",), open_operations=True)) as open_client:
        assert "caselens_requests_total" in open_client.get("/metrics").text
        assert open_client.get("/readyz").json()["models"][0]["task"] == "cost"


def test_the_served_tasks_are_a_setting_and_readiness_waits_for_them_only(world, monkeypatch):
    only_cost = ServingSettings(api_keys=str(world.keys_path), reload_poll_seconds=0, tasks="cost")
    assert list(only_cost.served_tasks()) == ["cost"]
    assert list(ServingSettings().served_tasks()) == list(SERVED_TASKS)
    with pytest.raises(ValueError, match="unknown task"):
        ServingSettings(tasks="cost,ghost")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.mlflow_uri)  # the registry create_app makes reads it
    app = create_app(world.settings, only_cost, cases=CaseIndex(lambda: world.cases))
    with TestClient(app) as client:
        assert client.get("/readyz").json() == {"ready": True, "problems": []}
