"""``GET /v1/casemix/drivers``, its charts and the /drivers page: finance only, bad parameters 422,
no run yet 503, and the page in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from contract.settings import Settings
from pipelines.drivers import run_drivers
from pipelines.forecast import price_history
from serving.app import create_app
from serving.config import ServingSettings
from serving.security import add_key

ROLES = ("finance", "admin", "clinician", "coder")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], Path]]:
    """One app for the module (starting one is slow), over its own data folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(data_dir=tmp_path_factory.mktemp("drivers-api") / "caselens-data")
        keys_path = settings.data_dir / "api-keys.json"
        keys = {role: add_key(keys_path, f"t-{role}", role) for role in ROLES}
        app = create_app(settings, ServingSettings(api_keys=str(keys_path)))
        headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
        with TestClient(app) as client:
            yield client, headers, settings.data_dir / "drivers"


@pytest.fixture(scope="module")
def priced(demo_hospital):
    return price_history(demo_hospital.cases).cases


def test_no_run_yet_is_503_and_roles_are_enforced(served) -> None:
    client, headers, _ = served
    assert client.get("/v1/casemix/drivers").status_code == 401
    assert client.get("/v1/casemix/drivers", headers={"Authorization": "Bearer nope"}).status_code == 401
    for role in ("clinician", "coder"):
        assert client.get("/v1/casemix/drivers", headers=headers[role]).status_code == 403
        assert client.get("/v1/casemix/drivers/chart/1", headers=headers[role]).status_code == 403
    answer = client.get("/v1/casemix/drivers", headers=headers["finance"])
    assert answer.status_code == 503 and "caselens casemix drivers" in answer.text


def test_the_latest_run_is_served_ranked_with_charts_and_filters(served, priced) -> None:
    client, headers, folder = served
    run = run_drivers(priced, folder, period="year", top=4, min_cases=2, names=lambda _: "某组")
    answer = client.get("/v1/casemix/drivers", params={"lang": "en"}, headers=headers["finance"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["level"] == "department" and body["period"] == "year"
    cells = body["cells"]
    assert [c["rank"] for c in cells] == list(run.cells["rank"])
    assert [c["gap_total"] for c in cells] == sorted((c["gap_total"] for c in cells), reverse=True)
    first = cells[0]
    assert first["sentence"].startswith(f"DRG {first['drg']} 某组 in {first['department']}")
    assert first["charge_groups"] and first["charge_groups"][0]["share"] > 0
    assert first["gap_total"] == pytest.approx(first["cases"] * first["gap_per_case"])
    chinese = client.get("/v1/casemix/drivers", headers={**headers["admin"], "Accept-Language": "zh-CN"})
    assert "超出基准" in chinese.json()["cells"][0]["sentence"]
    assert chinese.json()["cells"][0]["charge_groups"][0]["label"].endswith("类")
    one = client.get(
        "/v1/casemix/drivers",
        params={"drg": first["drg"].lower(), "department": first["department"]},
        headers=headers["finance"],
    ).json()["cells"]
    assert one and {(c["drg"], c["department"]) for c in one} == {(first["drg"], first["department"])}
    assert (
        len(client.get("/v1/casemix/drivers", params={"top": 1}, headers=headers["finance"]).json()["cells"])
        == 1
    )
    chart = client.get(first["chart"], headers=headers["finance"])
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert client.get("/v1/casemix/drivers/chart/99", headers=headers["finance"]).status_code == 404

    page = client.get("/drivers", params={"lang": "zh"}, headers=headers["finance"])
    assert page.status_code == 200 and "DRG成本驱动因素" in page.text and "超出基准" in page.text
    assert page.text.count('class="chart" src="/drivers/chart/') == len(cells)
    assert client.get("/drivers/chart/1", headers=headers["finance"]).headers["content-type"] == "image/png"
    assert client.get("/drivers/chart/1", headers=headers["coder"]).status_code == 403
    english = client.get(
        "/drivers", params={"lang": "en", "drg": "", "department": ""}, headers=headers["finance"]
    )
    assert english.status_code == 200 and "where the money goes" in english.text
    assert client.get("/drivers", headers=headers["coder"]).status_code == 403


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/casemix/drivers", {"top": 0}),
        ("/v1/casemix/drivers", {"top": 101}),
        ("/v1/casemix/drivers", {"top": "many"}),
        ("/v1/casemix/drivers", {"drg": "../../etc"}),
        ("/v1/casemix/drivers", {"drg": "A" * 9}),
        ("/v1/casemix/drivers", {"department": "x" * 65}),
        ("/v1/casemix/drivers/chart/0", {}),
        ("/v1/casemix/drivers/chart/abc", {}),
        ("/v1/casemix/drivers/chart/101", {}),
        ("/drivers/chart/-1", {}),
        ("/drivers", {"drg": "<script>"}),
    ],
)
def test_bad_parameters_are_422(served, path: str, params: dict) -> None:
    client, headers, _ = served
    assert client.get(path, params=params, headers=headers["finance"]).status_code == 422
