"""`POST /v1/predict/in-stay`: a stay in hospital scored from its record and charges to date, equal to
its row of the watch list `caselens watch` computes from the store; roles, and bodies it refuses."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.settings import Settings, get_settings
from experiments.benchmarks.instay_serving import stay_body
from serving.app import create_app
from serving.config import ServingSettings
from serving.registry import mlflow_uris
from tests.serving.runs import store_and_watch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def instay_world(demo_hospital, world, tmp_path_factory):
    """A store holding the demo hospital's abstracts, charges and in-stay records, the in-stay champion
    trained on them, the watch list of the last day and a service over it all."""
    hospital = demo_hospital
    with pytest.MonkeyPatch.context() as patch:
        data_dir = tmp_path_factory.mktemp("instay") / "data"
        patch.setenv("CASELENS_DATA_DIR", str(data_dir))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()  # the store and the registry follow the patched data folder
        settings = Settings(data_dir=data_dir)
        day, watched = store_and_watch(hospital, settings)
        app = create_app(settings, ServingSettings(api_keys=str(world.keys_path), max_batch=50))
        with TestClient(app) as client:
            yield client, hospital, day, watched
    get_settings.cache_clear()


def head(world: Any, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.keys[role]}"}


def test_a_stay_is_answered_as_its_watch_list_row(instay_world, world) -> None:
    client, hospital, day, watched = instay_world
    picked = watched.head(3)
    bodies = [stay_body(hospital, c, day) for c in picked["case_id"]]
    answer = client.post("/v1/predict/in-stay?lang=en", json=bodies[0], headers=head(world, "clinician"))
    assert answer.status_code == 200, answer.text
    batch = client.post("/v1/predict/in-stay/batch", json={"stays": bodies}, headers=head(world, "admin"))
    assert batch.status_code == 200, batch.text
    found = [answer.json()["prediction"], *batch.json()["predictions"]]
    for got, (_, row) in zip(found, pd.concat([picked.head(1), picked]).iterrows(), strict=True):
        assert got["case_id"] == row["case_id"] and got["day_of_stay"] == row["day_of_stay"]
        assert got["pregrouped_drg"] == row["pregrouped_drg"] and got["warning_level"] == row["warning_level"]
        for key, column in (
            ("cost_to_date", "cost_to_date"),
            ("predicted_final_cost", "predicted_final_cost"),
            ("overrun_probability", "overrun_probability"),
            ("expected_overrun", "expected_overrun"),
            ("payment_standard", "payment_standard"),
        ):
            assert got[key] == pytest.approx(row[column], abs=0.01), key
        assert got["interval"]["lower"] == pytest.approx(row["final_cost_lower"], abs=0.01)
        assert got["interval"]["upper"] == pytest.approx(row["final_cost_upper"], abs=0.01)
        explanation = got["explanation"]
        listed = sum(c["contribution"] for c in explanation["contributions"])
        raw = explanation["base_value"] + listed + explanation["rest"]
        assert raw == pytest.approx(explanation["raw_output"], abs=1e-6)
        assert 1 / (1 + np.exp(-raw)) == pytest.approx(got["overrun_probability"], abs=1e-4)
        assert explanation["reasons"] and answer.json()["model"]["name"] == "caselens-instay"


def test_every_stay_in_hospital_alone_is_its_watch_list_row_every_field(instay_world, world) -> None:
    """The one-stay path (the request's tables as columns, cut and pre-grouped with no frame per table)
    against the batch path from the store (``caselens watch``: frames read from the store): every stay
    in hospital on the day, every field of the watch list, and the same answer as in a batch."""
    client, hospital, day, watched = instay_world
    assert len(watched) >= 20  # enough stays to cover DRGs, departments, days and levels
    bodies = [stay_body(hospital, c, day) for c in watched["case_id"]]
    together = []
    for start in range(0, len(bodies), 50):  # the service's max_batch
        batch = client.post(
            "/v1/predict/in-stay/batch",
            json={"stays": bodies[start : start + 50]},
            headers=head(world, "admin"),
        )
        assert batch.status_code == 200, batch.text
        together += batch.json()["predictions"]
    for body, (_, row), in_batch in zip(bodies, watched.iterrows(), together, strict=True):
        answer = client.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
        assert answer.status_code == 200, answer.text
        got = answer.json()["prediction"]
        assert got == in_batch
        assert (got["case_id"], got["day_of_stay"], got["warning_level"]) == (
            row["case_id"],
            row["day_of_stay"],
            row["warning_level"],
        )
        assert got["pregrouped_drg"] == (None if pd.isna(row["pregrouped_drg"]) else row["pregrouped_drg"])
        for key in (
            "cost_to_date",
            "payment_standard",
            "ratio_to_date",
            "predicted_final_cost",
            "overrun_probability",
            "expected_overrun",
        ):
            expected = None if pd.isna(row[key]) else pytest.approx(float(row[key]), rel=1e-9, abs=1e-6)
            assert got[key] == expected, (row["case_id"], key)
        for end in ("lower", "upper"):
            assert got["interval"][end] == pytest.approx(row[f"final_cost_{end}"], rel=1e-9, abs=1e-6)


def test_keys_and_roles(instay_world, world) -> None:
    client, hospital, day, watched = instay_world
    body = stay_body(hospital, watched["case_id"].iloc[0], day)
    assert client.post("/v1/predict/in-stay", json=body).status_code == 401
    for role in ("coder", "finance"):
        assert client.post("/v1/predict/in-stay", json=body, headers=head(world, role)).status_code == 403


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b["record"].pop("admission_date"), ["body", "record", "admission_date"]),
        (lambda b: b["record"].update(recorded_date="yesterday"), ["body", "record", "recorded_date"]),
        (lambda b: b["charges"][0].update(cost_drugs=-5), ["body", "charges", 0, "cost_drugs"]),
        (lambda b: b["charges"][0].update(tip=1), ["body", "charges", 0, "tip"]),
        (
            lambda b: b["charges"][0].update(charge_date="1999-01-01"),
            ["body", "stays", 0, "charges", 0, "charge_date"],
        ),
        (lambda b: b.update(as_of_date="2000-01-01"), ["body", "stays", 0, "as_of_date"]),
    ],
)
def test_bad_bodies_are_422_naming_the_field(instay_world, world, change, loc) -> None:
    client, hospital, day, watched = instay_world
    body = stay_body(hospital, watched["case_id"].iloc[0], day)
    change(body)
    answer = client.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code == 422, answer.text
    assert loc in [problem["loc"] for problem in answer.json()["detail"]]


def test_no_champion_is_a_503_saying_what_to_run(instay_world, world, tmp_path, monkeypatch) -> None:
    _, hospital, day, watched = instay_world
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow exported the trained store's
    body = stay_body(hospital, watched["case_id"].iloc[0], day)
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings, ServingSettings(api_keys=str(world.keys_path)))) as empty:
        answer = empty.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code == 503
    assert "caselens train instay" in answer.json()["detail"]


def test_a_batch_above_the_limit_is_413(instay_world, world) -> None:
    client, hospital, day, watched = instay_world
    body = stay_body(hospital, watched["case_id"].iloc[0], day)
    stays = [{**body, "record": {**body["record"], "case_id": f"C{i}"}} for i in range(51)]  # max_batch 50
    answer = client.post("/v1/predict/in-stay/batch", json={"stays": stays}, headers=head(world, "clinician"))
    assert answer.status_code == 413 and "at most 50" in answer.text
    twice = client.post(
        "/v1/predict/in-stay/batch", json={"stays": [body, body]}, headers=head(world, "clinician")
    )
    assert twice.status_code == 422 and ["body", "stays"] in [p["loc"] for p in twice.json()["detail"]]


def test_a_stay_with_no_charges_and_odd_text_is_answered_not_a_500(instay_world, world) -> None:
    """A record with no charges (the body's default), free text where codes and ids go and the oldest
    age the contract allows: an answer or a 422, never a fault (the spec fuzzer's body)."""
    client, *_ = instay_world
    body = {
        "record": {
            "admission_date": "2000-01-01",
            "admission_diagnosis": "***",
            "admission_source": 1,
            "age_years": 128,
            "case_id": "(?<!^)(?=[A-Z])",
            "department": "(?<!^)(?=[A-Z])",
            "insurance_type": 1,
            "recorded_date": "2000-01-01",
            "sex": 1,
        }
    }
    answer = client.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician"))
    assert answer.status_code in (200, 422), answer.text


def test_the_champion_is_the_registrys_reported_and_hot_reloaded(instay_world, world) -> None:
    """The in-stay champion is served like every task's: /readyz reports its version, and a new
    champion is answered with after `POST /v1/admin/reload` (the endpoint once kept its first load)."""
    client, hospital, day, watched = instay_world
    body = stay_body(hospital, watched["case_id"].iloc[0], day)
    ready = client.get("/readyz", headers=head(world, "admin")).json()
    served = next(m for m in ready["models"] if m["task"] == "instay")
    assert served["state"] == "loaded" and served["name"] == "caselens-instay"
    first = client.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician")).json()
    assert first["model"] == {"name": "caselens-instay", "version": served["version"]}

    uri = client.app.state.service.settings.mlflow_uri
    registry = mlflow.MlflowClient(uri, uri)
    current = registry.get_model_version_by_alias("caselens-instay", "champion")
    with mlflow_uris(uri):  # the version's source is a logged model of this store
        again = registry.create_model_version("caselens-instay", current.source, current.run_id)
    registry.set_registered_model_alias("caselens-instay", "champion", again.version)
    try:
        reloaded = client.post("/v1/admin/reload", headers=head(world, "admin"))
        assert reloaded.status_code == 200 and "instay" in reloaded.json()["changed"]
        answer = client.post("/v1/predict/in-stay", json=body, headers=head(world, "clinician")).json()
        assert answer["model"]["version"] == str(again.version) != str(current.version)
        assert answer["prediction"] == first["prediction"]  # the same model, registered again
    finally:
        registry.set_registered_model_alias("caselens-instay", "champion", current.version)
        client.post("/v1/admin/reload", headers=head(world, "admin"))


def test_casemix_engines_are_built_when_the_models_load_not_in_the_first_request(instay_world) -> None:
    """The pre-grouper (its engine and grouper) and the service's casemix engine are built at start-up
    and reload: the first in-stay request of a worker once took 0.4-0.9 s building them."""
    client, *_ = instay_world
    state = client.app.state.service
    with TestClient(create_app(state.settings, state.serving)) as fresh:
        service = fresh.app.state.service
        features = service.registry.models["instay"].model.features
        assert getattr(features, "_pregrouper_cache", None) is not None
        assert service.casemix.cache_info().currsize == 1


def test_concurrent_one_stay_requests_share_passes_and_answer_as_alone(instay_world, world) -> None:
    """One-stay requests queued together are answered in one pass (micro-batching), each exactly as
    when it came alone, in its own language; a bad stay among them fails its own request only."""
    client, hospital, day, watched = instay_world
    app = client.app
    bodies = [stay_body(hospital, c, day) for c in watched["case_id"].head(12)]
    bad = copy.deepcopy(bodies[0])
    bad["record"]["case_id"] = "BAD-1"
    bad["record"]["patient_id"] = "P-BAD-1"
    bad["charges"][0]["charge_date"] = "1999-01-01"
    sent = [*bodies, bad]
    languages = ["en" if i % 2 else "zh" for i in range(len(sent))]

    async def post(http: httpx.AsyncClient, body: dict[str, Any], lang: str) -> httpx.Response:
        headers = {**head(world, "clinician"), "Accept-Language": lang}
        return await http.post("/v1/predict/in-stay", json=body, headers=headers)

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            asked = list(zip(sent, languages, strict=True))
            alone = [await post(http, b, lang) for b, lang in asked]
            together = await asyncio.gather(*(post(http, b, lang) for b, lang in asked))
        return alone, list(together)

    metrics = app.state.service.metrics.registry
    before = metrics.get_sample_value("caselens_micro_batch_cases_count", {"task": "instay"}) or 0.0
    alone, together = asyncio.run(run())
    for a, b in zip(alone[:-1], together[:-1], strict=True):
        assert a.status_code == b.status_code == 200, (a.text, b.text)
        assert b.json()["prediction"] == a.json()["prediction"]
    assert together[-1].status_code == alone[-1].status_code == 422
    loc = ["body", "stays", 0, "charges", 0, "charge_date"]
    assert loc in [problem["loc"] for problem in together[-1].json()["detail"]]
    zh, en = together[0].json()["prediction"], together[1].json()["prediction"]
    assert "超支风险" in zh["explanation"]["reasons"][0] and "overrun risk" in en["explanation"]["reasons"][0]
    passes = metrics.get_sample_value("caselens_micro_batch_cases_count", {"task": "instay"}) - before
    assert passes < 2 * len(sent)  # some of the concurrent requests shared a pass


def test_stored_history_reads_are_audited_with_the_patient_and_budgeted(instay_world, world) -> None:
    """As every prediction request: the audit entry names the patient whose stored stays were read,
    and a key past its per-minute look-up budget is refused (429) before anything is read."""
    client, hospital, day, watched = instay_world
    first, second = (stay_body(hospital, c, day) for c in watched["case_id"].head(2))
    assert client.post("/v1/predict/in-stay", json=first, headers=head(world, "clinician")).status_code == 200
    state = client.app.state.service
    entry = json.loads(state.serving.audit_path(state.settings).read_text(encoding="utf-8").splitlines()[-1])
    assert entry["endpoint"] == "/v1/predict/in-stay" and entry["case_ids"] == [first["record"]["case_id"]]
    assert entry["history_patient_ids"] == [first["record"]["patient_id"]]

    serving = ServingSettings(api_keys=str(world.keys_path), history_lookups_per_minute=1)
    with TestClient(create_app(state.settings, serving)) as capped:
        clinician = head(world, "clinician")
        assert capped.post("/v1/predict/in-stay", json=first, headers=clinician).status_code == 200
        refused = capped.post("/v1/predict/in-stay", json=second, headers=clinician)
        assert refused.status_code == 429 and "Retry-After" in refused.headers
