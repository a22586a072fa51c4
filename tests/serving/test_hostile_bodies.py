"""Poisoned and malformed bodies: implausible values, NaN, Infinity and lone surrogates.

Each is a 422 that names the field, on a connection that stays open, and no case contents reach any
log: the NaN test runs a real uvicorn server and reads everything it logged.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.serving.servers import serve_logged

pytestmark = pytest.mark.slow

SECRETS = {"case_id": "C-SECRET-456", "patient_id": "P-SECRET-123", "admission_diagnosis": "Z99.777"}


@pytest.mark.parametrize(
    "task, changes, field",
    [
        ("cost", {"admission_date": "1900-01-01"}, "admission_date"),
        ("cost", {"admission_date": "2200-12-31"}, "admission_date"),
        ("readmission", {"admission_date": "2020-01-01", "discharge_date": "2200-12-31"}, "discharge_date"),
        ("readmission", {"admission_date": "1991-01-01", "discharge_date": "2024-01-01"}, "discharge_date"),
        ("cost", {"age_years": 131}, "age_years"),
        ("cost", {"age_days": -1}, "age_days"),
        ("cost", {"birth_weight_g": 50}, "birth_weight_g"),
        ("readmission", {"total_cost": -1.0}, "total_cost"),
        ("readmission", {"cost_treatment": 1e13}, "cost_treatment"),
        ("cost", {"department": "ward\n7"}, "department"),
        ("cost", {"department": "ward\u20287"}, "department"),
    ],
)
def test_implausible_values_answer_422_naming_the_field(
    client, auth, admission_body, discharge_body, task, changes, field
):
    body = (admission_body if task == "cost" else discharge_body)(0, **changes)
    answer = client.post(f"/v1/predict/{task}", json=body, headers=auth("admin"))
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["detail"]] == [["body", "case", field]]


def test_a_case_without_ids_is_scored_as_documented(client, auth, admission_body):
    """The spec says case_id and patient_id are optional (a pre-admission enquiry): so they are."""
    body = admission_body(0)
    del body["case"]["case_id"], body["case"]["patient_id"]
    answer = client.post("/v1/predict/cost", json=body, headers=auth("clinician"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"]["case_id"] is None
    batch = client.post("/v1/predict/cost/batch", json={"cases": [body["case"]] * 2}, headers=auth("finance"))
    assert batch.status_code == 200, batch.text
    assert [p["case_id"] for p in batch.json()["predictions"]] == [None, None]


@pytest.fixture
def server(make_app) -> Iterator[tuple[str, io.StringIO]]:
    """A real uvicorn server in a thread, and everything any logger wrote while it ran."""
    yield from serve_logged(make_app())


def poisoned_bodies(admission_body, discharge_body) -> list[tuple[str, str]]:
    """(path, raw JSON) pairs: NaN, ±Infinity and lone surrogates in numbers, texts, codes and keys."""
    admission = json.dumps(admission_body(0, **SECRETS))
    discharge = json.dumps(discharge_body(0, **SECRETS))
    age = f'"age_years": {admission_body(0)["case"]["age_years"]}'
    cost = f'"total_cost": {json.dumps(discharge_body(0)["case"]["total_cost"])}'
    department = f'"department": {json.dumps(admission_body(0)["case"]["department"])}'
    return [
        ("/v1/predict/cost", admission.replace(age, '"age_years": NaN')),
        ("/v1/predict/cost", admission.replace(age, '"age_years": 3, "birth_weight_g": Infinity')),
        ("/v1/predict/readmission", discharge.replace(cost, '"total_cost": -Infinity')),
        ("/v1/predict/readmission", discharge.replace(cost, '"total_cost": NaN')),
        ("/v1/predict/cost", admission.replace(department, '"department": NaN')),
        ("/v1/predict/cost", admission.replace('"C-SECRET-456"', '"C-SECRET-456\\ud800"')),
        ("/v1/predict/cost", admission.replace(department, '"department": "\\udfff"')),
        ("/v1/predict/cost", admission.replace(department, '"\\ud800": 1')),
        ("/v1/predict/cost/batch", '{"cases": [' + admission.replace(age, '"age_years": NaN')[9:-1] + "]}"),
        ("/v1/group", '{"case_id": "C-SECRET-456", "sex": 1, "age_years": NaN, "diagnoses": ["Z99.777"]}'),
    ]


def test_nan_infinity_and_surrogates_answer_422_on_an_open_connection_and_no_log_holds_the_case(
    server, world, admission_body, discharge_body
):
    url, log = server
    headers = {"Authorization": f"Bearer {world.keys['admin']}", "Content-Type": "application/json"}
    connections = set()
    with httpx.Client(base_url=url, timeout=30) as http:
        for path, raw in poisoned_bodies(admission_body, discharge_body):
            answer = http.post(path, content=raw.encode("utf-8", "surrogatepass"), headers=headers)
            assert answer.status_code == 422, (path, raw[:80], answer.text)
            assert isinstance(answer.json()["detail"], list)
            assert "close" not in answer.headers.get("connection", "")
            connections.add(answer.extensions["network_stream"].get_extra_info("client_addr"))
        assert http.get("/healthz").status_code == 200
    assert len(connections) == 1  # one keep-alive connection answered every request
    written = log.getvalue()
    assert "POST /v1/predict/cost" in written  # the log was captured...
    for secret in (*SECRETS.values(), "SECRET"):
        assert secret not in written  # ...and holds none of the cases' contents


def test_the_spec_documents_every_answer_a_prediction_can_give(client, auth, admission_body):
    """400 (a body that is not UTF-8) and the rest are in the spec; a 422 is always a list of fields."""
    answer = client.post(
        "/v1/predict/cost",
        content=b'{"case": {"department": "\xff\xfe"}}',
        headers={**auth("admin"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    spec = client.get("/openapi.json").json()
    for path in ("/v1/predict/cost", "/v1/predict/coding/batch"):
        documented = set(spec["paths"][path]["post"]["responses"])
        assert {"200", "400", "401", "403", "413", "422", "429", "500", "503"} <= documented
    case = spec["components"]["schemas"]["AdmissionCase"]
    assert "case_id" not in case.get("required", []) and "patient_id" not in case.get("required", [])
    bad = client.post("/v1/predict/cost", json=admission_body(0, sex=7), headers=auth("admin"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "case", "sex"]
