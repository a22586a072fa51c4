"""The API: predictions with explanations, auth and roles, limits, grouping, queue, metrics, audit."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.fields import canonical_records, fields_known_at

pytestmark = pytest.mark.slow


def test_health_and_the_readiness_verdict_need_no_key_but_details_do(client, auth):
    assert client.get("/healthz").json() == {"status": "ok"}
    verdict = client.get("/readyz")
    assert verdict.status_code == 200 and verdict.json() == {"ready": True, "problems": []}
    assert client.get("/readyz", headers=auth("finance")).json() == {"ready": True, "problems": []}
    ready = client.get("/readyz", headers=auth("admin"))
    assert ready.status_code == 200 and ready.json()["pid"]
    states = {m["task"]: (m["state"], m["version"]) for m in ready.json()["models"]}
    assert states["cost"] == ("loaded", "1")
    assert states["readmission"] == ("loaded", "1")
    assert states["margin"] == states["coding"] == ("loaded", "1")


def test_data_endpoints_need_a_valid_key(client, admission_body):
    assert client.post("/v1/predict/cost", json=admission_body()).status_code == 401
    bad = client.post("/v1/predict/cost", json=admission_body(), headers={"X-API-Key": "not-a-key"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/review/queue").status_code == 401
    assert client.post("/v1/admin/reload").status_code == 401


def test_wrong_role_is_forbidden(client, auth, admission_body, discharge_body):
    assert client.post("/v1/predict/cost", json=admission_body(), headers=auth("coder")).status_code == 403
    assert (
        client.post("/v1/predict/readmission", json=discharge_body(), headers=auth("finance")).status_code
        == 403
    )
    assert client.get("/v1/review/queue", headers=auth("clinician")).status_code == 403
    answer = client.post("/v1/admin/reload", headers=auth("finance"))
    assert answer.status_code == 403
    assert "admin" in answer.json()["detail"]


def test_key_header_forms(client, world, admission_body):
    key = world.keys["clinician"]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert client.post("/v1/predict/cost", json=admission_body(), headers=headers).status_code == 200


def test_cost_prediction_matches_the_registered_model(client, world, auth, admission_body):
    answer = client.post("/v1/predict/cost", json=admission_body(3), headers=auth("clinician"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == {"name": "caselens-cost", "version": "1"}
    prediction = body["prediction"]
    assert prediction["case_id"] == world.cases["case_id"].iloc[3]
    assert prediction["unit"] == "yuan"
    interval = prediction["interval"]
    assert interval["level"] == 0.8 and interval["lower"] <= prediction["value"] <= interval["upper"]

    # The same case through the registered pyfunc, as `mlflow.pyfunc.load_model` serves it.
    mlflow.set_tracking_uri(world.mlflow_uri)
    mlflow.set_registry_uri(world.mlflow_uri)
    pyfunc = mlflow.pyfunc.load_model("models:/caselens-cost@champion")
    frame = world.cases[list(fields_known_at("admission"))].iloc[[3]].reset_index(drop=True)
    history = world.cases[world.cases["patient_id"] == frame["patient_id"].iloc[0]]  # what the store holds
    expected = pyfunc.unwrap_python_model().predict_frame(frame, history)
    assert prediction["value"] == pytest.approx(expected["cost"].iloc[0], rel=1e-9)


@pytest.mark.parametrize(
    "task, body_fixture, role",
    [("cost", "admission_body", "finance"), ("readmission", "discharge_body", "clinician")],
)
def test_explanation_adds_up_to_the_raw_output(client, world, auth, request, task, body_fixture, role):
    body = request.getfixturevalue(body_fixture)(5)
    answer = client.post(f"/v1/predict/{task}?top=50", json=body, headers=auth(role))
    assert answer.status_code == 200, answer.text
    explanation = answer.json()["prediction"]["explanation"]
    contributions = [c["contribution"] for c in explanation["contributions"]]
    assert explanation["base_value"] + sum(contributions) + explanation["rest"] == pytest.approx(
        explanation["raw_output"], abs=1e-6
    )

    # ...and the raw output is the tree model's own raw score for the case.
    served = client.app.state.service.registry.models[task]
    stage = served.task.stage
    columns = [*fields_known_at(stage), *(("los_days",) if stage == "discharge" else ())]
    case = world.cases[columns].iloc[[5]].reset_index(drop=True)
    model = served.model
    X = model.features_of(case, world.cases[world.cases["patient_id"] == case["patient_id"].iloc[0]])
    if model.output.link == "logit":  # the served (calibrated) probability, on the log-odds scale
        probability = model.estimator.predict(X)["readmission_probability"].iloc[0]
        raw = np.log(probability / (1 - probability))
    else:
        raw = model.estimator.explained.predict(X, raw_score=True)[0]
    assert explanation["raw_output"] == pytest.approx(raw, abs=1e-6)
    sizes = [abs(c) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    # On the prediction's scale the effects add up to the model's own output too.
    effects = sum(c["effect"] for c in explanation["contributions"]) + explanation["rest_effect"]
    prediction = answer.json()["prediction"]["value"]
    output = prediction if model.output.link != "logit" else 1 / (1 + np.exp(-raw))
    assert explanation["base_prediction"] + effects == pytest.approx(output, rel=1e-9)


def test_readmission_answers_a_probability(client, auth, discharge_body):
    answer = client.post("/v1/predict/readmission", json=discharge_body(2), headers=auth("clinician"))
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["prediction"]
    assert prediction["unit"] == "probability" and 0.0 <= prediction["value"] <= 1.0
    assert prediction["interval"] is None
    assert prediction["explanation"]["raw_scale"] == "log-odds"
    assert all("percentage points" in r or "百分点" in r for r in prediction["explanation"]["reasons"])


def test_labels_follow_accept_language(client, auth, admission_body):
    served = client.app.state.service.registry.models["cost"]
    by_language = {}
    for header in ("zh-CN,zh;q=0.9", "en-US,en;q=0.9,zh;q=0.5"):
        answer = client.post(
            "/v1/predict/cost",
            json=admission_body(1),
            headers={**auth("clinician"), "Accept-Language": header},
        )
        by_language[header[:2]] = answer.json()["prediction"]["explanation"]
    for language, explanation in by_language.items():
        for part in explanation["contributions"]:
            assert part["name"] == served.model.names[part["feature"]][language]
    zh, en = by_language["zh"], by_language["en"]
    assert zh["contributions"][0]["feature"] == en["contributions"][0]["feature"]
    assert zh["contributions"][0]["name"] != en["contributions"][0]["name"]
    assert "使预计住院费用" in zh["reasons"][0] and "¥" in zh["reasons"][0]
    assert "the expected cost by ¥" in en["reasons"][0]


def test_batch_keeps_order_and_ids(client, world, auth, admission_body):
    cases = [admission_body(i)["case"] for i in (4, 0, 7)]
    answer = client.post("/v1/predict/cost/batch", json={"cases": cases}, headers=auth("finance"))
    assert answer.status_code == 200, answer.text
    ids = [p["case_id"] for p in answer.json()["predictions"]]
    assert ids == world.cases["case_id"].iloc[[4, 0, 7]].tolist()
    single = client.post("/v1/predict/cost", json=admission_body(0), headers=auth("finance")).json()
    assert answer.json()["predictions"][1]["value"] == pytest.approx(single["prediction"]["value"])


def test_history_comes_from_the_store_or_the_request(client, world, auth, admission_body, discharge_body):
    """Omitted history is the patient's stays in the store; sent history (any patient id) is used as sent."""
    patient = world.cases["patient_id"].value_counts().index[0]
    rows = np.flatnonzero(world.cases["patient_id"] == patient)
    last = int(rows[np.argmax(world.cases["admission_date"].to_numpy()[rows])])
    stored = client.post(
        "/v1/predict/cost?top=50", json=admission_body(last), headers=auth("clinician")
    ).json()
    renamed = admission_body(last, patient_id="P-NEW")
    renamed["history"] = [discharge_body(int(i), patient_id="P-NEW")["case"] for i in rows if i != last]
    sent = client.post("/v1/predict/cost?top=50", json=renamed, headers=auth("finance"))
    assert sent.status_code == 200, sent.text
    explained = {e["feature"]: e["value"] for e in stored["prediction"]["explanation"]["contributions"]}
    assert float(explained["prior_admissions"]) == len(rows) - 1
    assert sent.json()["prediction"]["value"] == pytest.approx(stored["prediction"]["value"])


def test_bad_input_answers_422_with_the_field_path(client, auth, admission_body):
    answer = client.post("/v1/predict/cost", json=admission_body(age_years=-1), headers=auth("clinician"))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "case", "age_years"]
    leak = client.post(
        "/v1/predict/cost", json=admission_body(principal_diagnosis="I21.000"), headers=auth("clinician")
    )
    assert leak.status_code == 422
    assert leak.json()["detail"][0]["loc"] == ["body", "case", "principal_diagnosis"]
    old = client.post(
        "/v1/predict/cost", json=admission_body(admission_date="0001-01-01"), headers=auth("clinician")
    )
    assert old.status_code == 422
    assert client.post("/v1/predict/cost", content=b"{not json", headers=auth("clinician")).status_code == 422


def test_oversized_batches_and_bodies_answer_413(client, auth, admission_body):
    cases = [admission_body(0)["case"]] * 51  # the test app allows 50
    assert (
        client.post("/v1/predict/cost/batch", json={"cases": cases}, headers=auth("finance")).status_code
        == 413
    )
    huge = json.dumps({"cases": [admission_body(0)["case"]] * 5000}).encode()  # over 1 MB
    answer = client.post(
        "/v1/predict/cost/batch",
        content=huge,
        headers={**auth("finance"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413

    def chunks():
        yield from (huge[i : i + 65536] for i in range(0, len(huge), 65536))

    streamed = client.post(
        "/v1/predict/cost/batch",
        content=chunks(),
        headers={**auth("finance"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_missing_model_answers_503(make_app, auth, admission_body):
    with TestClient(make_app(tasks=("cost",))) as only_cost:
        answer = only_cost.post("/v1/predict/margin", json=admission_body(), headers=auth("finance"))
        assert answer.status_code == 503
        assert "caselens-margin" in answer.json()["detail"]
        models = {
            m["task"]: m["state"] for m in only_cost.get("/readyz", headers=auth("admin")).json()["models"]
        }
        assert models == {"cost": "loaded"}


def test_margin_and_coding_answer_with_their_own_units(client, auth, admission_body, discharge_body):
    margin = client.post("/v1/predict/margin", json=admission_body(1), headers=auth("finance")).json()
    assert (
        margin["prediction"]["unit"] == "yuan" and margin["prediction"]["explanation"]["raw_scale"] == "yuan"
    )
    explanation = margin["prediction"]["explanation"]
    for part in explanation["contributions"]:
        assert part["effect"] == pytest.approx(
            part["contribution"]
        )  # identity link: effect is the SHAP value
    coding = client.post("/v1/predict/coding", json=discharge_body(1), headers=auth("coder")).json()
    assert coding["model"]["name"] == "caselens-coding" and 0 <= coding["prediction"]["value"] <= 1


def test_group_a_case_with_its_trace(client, auth):
    reference = pd.read_csv("tests/data/chs_drg_11_test_cases.tsv", sep="\t", dtype=str, nrows=1).iloc[0]
    case = {
        "case_id": "G1",
        "sex": int(reference["sex"]),
        "age_years": int(reference["age_years"]),
        "diagnoses": reference["diagnoses"].split("|"),
        "procedures": reference["procedures"].split("|"),
    }
    answer = client.post("/v1/group", json=case, headers=auth("coder"))
    assert answer.status_code == 200, answer.text
    grouped = answer.json()
    # The service groups as its payment rules pay: the default rules' 歧义组 takes this reference case
    # (a medical ADRG, DR19, with an OR procedure none of the MDC's procedure ADRGs takes) to DQY.
    assert reference["expected_drg"] == "DR19" and grouped["status"] == "grouped"
    assert grouped["drg"] == "DQY" and grouped["mdc"] == reference["expected_mdc"]
    assert grouped["trace"] and grouped["drg_name"]
    batch = client.post(
        "/v1/group/batch", json={"cases": [case, {**case, "sex": None}]}, headers=auth("finance")
    )
    assert [g["status"] for g in batch.json()] == ["grouped", "invalid"]


def test_weights_say_whether_money_figures_stand_on_the_insurer_table(client, auth):
    from casemix.payment import PaymentRules
    from casemix.rw_table import read_weights

    table = read_weights(PaymentRules.load().calibration.rw_table)
    drg = table.index[0]
    answer = client.get("/v1/group/weights", params={"drg": drg.lower()}, headers=auth("finance"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["weights_source"] == "insurer table" and body["rw_table"] == "rw_table.demo-region.csv"
    assert body["drgs"] == len(table)
    assert body["weight"]["drg"] == drg and body["weight"]["rw"] == table.loc[drg, "rw"]
    unknown = client.get("/v1/group/weights", params={"drg": "ZZ99"}, headers=auth("coder"))
    assert unknown.json()["weight"] is None
    assert client.get("/v1/group/weights", params={"drg": "../x"}, headers=auth("coder")).status_code == 422
    assert client.get("/v1/group/weights").status_code == 401


def test_review_queue_sorts_and_filters(client, world, auth):
    answer = client.get("/v1/review/queue", headers=auth("coder")).json()
    assert answer["total"] == len(world.queue)
    assert answer["weights_source"] == "insurer table"  # the model's weights: the city's RW table
    values = [i["expected_value"] for i in answer["items"]]
    assert values == sorted(values, reverse=True)
    department = world.queue["department"].iloc[0]
    by_money = client.get(
        "/v1/review/queue",
        params={"department": department, "sort": "money_at_stake", "descending": "true"},
        headers=auth("coder"),
    ).json()
    assert {i["department"] for i in by_money["items"]} == {department}
    money = [i["money_at_stake"] for i in by_money["items"]]
    assert money == sorted(money, reverse=True)


def test_review_queue_says_when_its_money_stands_on_estimated_weights(world):
    """The ranking's weights_source travels with the trimmed queue frame; a reload forgets it."""
    from serving.queue import ReviewQueue

    ranked = world.queue.assign(weights_source="estimated from own history")
    queue = ReviewQueue(lambda: ranked)
    assert queue.weights_source() == "estimated from own history"
    assert "weights_source" not in queue.frame().columns
    unlabelled = ReviewQueue(lambda: world.queue.drop(columns="weights_source", errors="ignore"))
    assert unlabelled.weights_source() is None


def test_metrics_count_by_route_template_without_ids(client, world, auth, admission_body):
    client.post("/v1/predict/cost", json=admission_body(0), headers=auth("clinician"))
    client.get(f"/cases/{world.cases['case_id'].iloc[0]}", headers=auth("clinician"))
    text = client.get("/metrics", headers=auth("admin")).text
    assert 'endpoint="/v1/predict/cost"' in text
    assert 'endpoint="/cases/{case_id}"' in text
    assert "caselens_request_seconds_bucket" in text
    assert world.cases["case_id"].iloc[0] not in text


def test_audit_log_records_who_asked_for_which_case(client, world, auth, admission_body):
    client.post("/v1/predict/cost", json=admission_body(6), headers=auth("finance"))
    path = world.settings.data_dir / "audit.jsonl"
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    mine = [e for e in entries if world.cases["case_id"].iloc[6] in e["case_ids"]]
    assert mine and mine[-1]["key_id"] == "test-finance" and mine[-1]["role"] == "finance"
    assert mine[-1]["endpoint"] == "/v1/predict/cost" and mine[-1]["time"]
    text = path.read_text(encoding="utf-8")
    assert not any(key in text for key in world.keys.values())


def test_request_cases_get_canonical_dtypes(admission_body):
    from serving.schemas import AdmissionCase

    frame = canonical_records([AdmissionCase(**admission_body(0)["case"]).model_dump()])
    assert str(frame["admission_date"].dtype) == "datetime64[ns]"
    assert str(frame["age_years"].dtype) == "int64"
    assert str(frame["age_days"].dtype) == "Int64"
    assert frame["planned_procedure"].dtype == object


@pytest.mark.parametrize("task", ["cost", "margin", "readmission", "coding"])
def test_answers_follow_the_documented_response_schemas(client, auth, admission_body, discharge_body, task):
    from serving.schemas import BatchResponse, PredictResponse

    stage_body = admission_body if task in ("cost", "margin") else discharge_body
    one = client.post(f"/v1/predict/{task}", json=stage_body(3), headers=auth("admin"))
    assert one.status_code == 200, one.text
    assert PredictResponse.model_validate(one.json()).model_dump(mode="json") == one.json()
    cases = [stage_body(r)["case"] for r in (3, 4)]
    many = client.post(f"/v1/predict/{task}/batch", json={"cases": cases}, headers=auth("admin"))
    assert many.status_code == 200, many.text
    assert BatchResponse.model_validate(many.json()).model_dump(mode="json") == many.json()


def test_a_code_missing_from_the_dictionaries_is_scored_and_named_in_warnings(client, auth, admission_body):
    known = client.post("/v1/predict/cost", json=admission_body(5), headers=auth("clinician"))
    assert known.status_code == 200 and known.json()["prediction"]["warnings"] == []
    body = admission_body(5, admission_diagnosis="ZZZ.999")
    answer = client.post("/v1/predict/cost", json=body, headers=auth("clinician"))
    assert answer.status_code == 200
    (warning,) = answer.json()["prediction"]["warnings"]
    assert warning == "门(急)诊诊断编码 ZZZ.999 不在编码字典中，按训练中未见的编码处理"
    english = {**auth("clinician"), "Accept-Language": "en"}
    batch = client.post("/v1/predict/cost/batch", json={"cases": [body["case"]]}, headers=english)
    (english_warning,) = batch.json()["predictions"][0]["warnings"]
    assert "ZZZ.999 is not in the code dictionaries" in english_warning
