"""Stored patient history under a hostile key: every look-up audited, budgeted per key, and its
features named only to the roles that may see a patient's earlier stays."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.budget import HistoryBudget

pytestmark = pytest.mark.slow


def audit_entries(world) -> list[dict]:
    path = world.settings.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def patient_with_history(world) -> tuple[int, list[int]]:
    """The row of a patient's latest stay and the rows of their earlier ones."""
    patient = world.cases["patient_id"].value_counts().index[0]
    rows = np.flatnonzero(world.cases["patient_id"] == patient)
    last = int(rows[np.argmax(world.cases["admission_date"].to_numpy()[rows])])
    return last, [int(r) for r in rows if r != last]


def test_every_history_look_up_is_audited_with_patient_key_request_and_client(
    client, world, auth, admission_body
):
    rows = [10, 11, 12]
    single = client.post(
        "/v1/predict/cost", json=admission_body(rows[0]), headers={**auth("finance"), "X-Request-ID": "r-1"}
    )
    cases = [admission_body(r)["case"] for r in rows]
    batch = client.post("/v1/predict/cost/batch", json={"cases": cases}, headers=auth("finance"))
    assert single.status_code == batch.status_code == 200
    assert single.headers["x-request-id"] == "r-1"

    by_request = {e["request_id"]: e for e in audit_entries(world)}
    one, many = by_request["r-1"], by_request[batch.headers["x-request-id"]]
    assert one["history_patient_ids"] == [world.cases["patient_id"].iloc[rows[0]]]
    assert many["history_patient_ids"] == list(dict.fromkeys(world.cases["patient_id"].iloc[rows]))
    for entry in (one, many):
        assert entry["key_id"] == "test-finance" and entry["client"] == "testclient"
        assert entry["outcome"] == "allowed"


def test_a_request_with_its_own_history_reads_no_stored_history(
    client, world, auth, admission_body, discharge_body
):
    last, earlier = patient_with_history(world)
    own = admission_body(last, patient_id="P-OWN")
    own["history"] = [discharge_body(r, patient_id="P-OWN")["case"] for r in earlier]
    empty = {**admission_body(last), "history": []}  # an empty list is no history: the store is read
    entries = {}
    for name, body in (("own", own), ("empty", empty)):
        answer = client.post("/v1/predict/cost", json=body, headers=auth("finance"))
        assert answer.status_code == 200, answer.text
        entries[name] = next(
            e for e in audit_entries(world) if e["request_id"] == answer.headers["x-request-id"]
        )
    assert "history_patient_ids" not in entries["own"]
    assert entries["empty"]["history_patient_ids"] == [world.cases["patient_id"].iloc[last]]


@pytest.mark.parametrize("top", [51, 500])
def test_top_is_capped(client, auth, admission_body, top):
    answer = client.post(f"/v1/predict/cost?top={top}", json=admission_body(0), headers=auth("clinician"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "top"]


def test_history_features_are_named_only_to_roles_that_may_see_patient_history(
    client, world, auth, admission_body, discharge_body
):
    last, earlier = patient_with_history(world)
    served = client.app.state.service.registry.models
    assert "prior_admissions" in served["cost"].model.history_features
    assert "charlson_conditions" not in served["readmission"].model.history_features  # this stay's codes only

    def named(task: str, body: dict, role: str) -> tuple[float, set[str], dict]:
        answer = client.post(f"/v1/predict/{task}?top=50", json=body, headers=auth(role))
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["prediction"]
        return (
            prediction["value"],
            {c["feature"] for c in prediction["explanation"]["contributions"]},
            prediction,
        )

    value, clinician_sees, _ = named("cost", admission_body(last), "clinician")
    assert clinician_sees & served["cost"].model.history_features  # a clinician is told about earlier stays
    finance_value, finance_sees, finance = named("cost", admission_body(last), "finance")
    assert not finance_sees & served["cost"].model.history_features
    assert finance_value == pytest.approx(value)  # the same prediction: the history still counts...
    explanation = finance["explanation"]
    listed = sum(c["contribution"] for c in explanation["contributions"])
    assert explanation["base_value"] + listed + explanation["rest"] == pytest.approx(
        explanation["raw_output"], abs=1e-6
    )  # ...inside `rest`
    batch = client.post(
        "/v1/predict/margin/batch?top=50",
        json={"cases": [admission_body(last)["case"]]},
        headers=auth("finance"),
    )
    features = {c["feature"] for c in batch.json()["predictions"][0]["explanation"]["contributions"]}
    assert not features & served["margin"].model.history_features
    _, coder_sees, _ = named("coding", discharge_body(last), "coder")
    assert not coder_sees & served["coding"].model.history_features
    # History the caller sent is its own knowledge: named to any role.
    sent = admission_body(last, patient_id="P-SENT")
    sent["history"] = [discharge_body(r, patient_id="P-SENT")["case"] for r in earlier]
    _, sent_sees, _ = named("cost", sent, "finance")
    assert sent_sees & served["cost"].model.history_features


def test_history_look_ups_are_capped_per_key_and_minute(
    make_app, world, auth, admission_body, discharge_body, caplog
):
    patients = world.cases.drop_duplicates("patient_id").index[:8].tolist()
    with TestClient(make_app(history_lookups_per_minute=5)) as capped:

        def batch(rows: list[int], role: str = "finance", **extra):
            cases = [admission_body(r)["case"] for r in rows]
            return capped.post("/v1/predict/cost/batch", json={"cases": cases, **extra}, headers=auth(role))

        with caplog.at_level(logging.WARNING):
            too_many = batch(patients[:6])
        assert too_many.status_code == 429 and int(too_many.headers["retry-after"]) >= 1
        assert "at most 5 patients a minute" in too_many.json()["detail"]
        refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert refused and "test-finance" in refused[0]
        assert not any(world.cases["patient_id"].iloc[p] in caplog.text for p in patients)
        entry = next(e for e in audit_entries(world) if e["request_id"] == too_many.headers["x-request-id"])
        assert entry["outcome"].startswith("refused") and len(entry["history_patient_ids"]) == 6

        assert batch(patients[:3]).status_code == 200
        assert batch(patients[3:6]).status_code == 429  # 3 + 3 > 5 within the minute
        one = capped.post("/v1/predict/cost", json=admission_body(patients[3]), headers=auth("finance"))
        assert one.status_code == 200  # 4 of 5
        assert batch(patients[3:6], role="clinician").status_code == 200  # another key, its own budget
        assert batch(patients[:6], history=[]).status_code == 429  # no history: the store is read
        own = batch(patients[:6], history=[discharge_body(patients[0])["case"]])
        assert own.status_code == 200, own.text  # its own history: no stored stays are read


def test_the_budget_is_a_sliding_minute_per_key():
    now = [0.0]
    budget = HistoryBudget(10, clock=lambda: now[0])
    assert budget.take("a", 6) is None and budget.take("a", 4) is None
    assert budget.take("a", 1) == 60  # all ten were spent at t=0
    assert budget.take("b", 10) is None
    now[0] = 30.0
    assert budget.take("a", 1) == 30
    now[0] = 60.0
    assert budget.take("a", 10) is None  # the first minute's look-ups have expired
    assert budget.take("a", 11) == 60  # never fits in one minute


def test_the_case_page_withholds_history_features_from_finance_and_audits_the_read(client, world, auth):
    last, _ = patient_with_history(world)
    case_id = world.cases["case_id"].iloc[last]
    served = client.app.state.service.registry.models
    labels = {served["cost"].model.names[f]["zh"] for f in served["cost"].model.history_features}

    def page(role: str) -> str:
        answer = client.get(f"/cases/{case_id}", headers=auth(role))
        assert answer.status_code == 200
        return answer.text

    assert any(label in page("clinician") for label in labels)
    finance = page("finance")
    assert "预计住院费用" in finance and not any(label in finance for label in labels)
    entry = [e for e in audit_entries(world) if e["endpoint"] == "/cases/{case_id}"][-1]
    assert entry["history_patient_ids"] == [world.cases["patient_id"].iloc[last]]
