"""Every explanation adds up to the number shown: through the API and on the case page.

The world here is built from the tasks' real estimators (not stand-ins): the cost model with its
smearing factor, the margin model (whose predictions are often losses), the readmission model with
Platt calibration served as LightGBM and as the logistic regression, and with isotonic calibration,
and the coding model. Each is registered as a pyfunc in a temporary MLflow store, under an alias per
variant, and loaded by the service the way real models are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.fields import fields_known_at
from contract.settings import Settings
from features.pipeline import CaseFeatures
from models.coding.model import CodingModel
from models.pyfunc import CaseModel
from models.readmission.labels import LABEL
from models.readmission.model import ReadmissionModel
from models.tasks import get_task
from models.tasks.cost import CostModel
from models.tasks.margin import MarginModel
from pipelines.demo.generate import generate_demo
from serving.app import create_app
from serving.cases import CaseIndex
from serving.config import ServingSettings
from serving.registry import ModelRegistry
from serving.security import add_key
from serving.tasks import SERVED_TASKS
from tests.serving.conftest import case_json

# The tasks asked one case at a time (the in-stay task is asked with a stay: test_instay_api.py).
CASE_TASKS = {name: task for name, task in SERVED_TASKS.items() if task.case_requests}

# One worker builds the world once (loadgroup keeps the module together under xdist).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("explanations")]

TINY = {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5, "verbose": -1, "n_jobs": 1}
READMISSION_VARIANTS = ("lightgbm", "logistic", "isotonic")
TOLERANCE = 1e-6


@dataclass
class Explained:
    """The served world: the data, the store, an admin key, and the fitted estimators by alias."""

    settings: Settings
    uri: str
    cases: pd.DataFrame
    keys_path: Path
    key: str
    estimators: dict[str, Any]


def _register(uri: str, name: str, model: CaseModel, aliases: tuple[str, ...]) -> None:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    experiment = mlflow.get_experiment_by_name("explanations") or mlflow.get_experiment(
        mlflow.create_experiment("explanations", artifact_location=artifacts.as_uri())
    )
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=model, registered_model_name=name, pip_requirements=[]
        )
    for alias in aliases:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, str(info.registered_model_version))


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Explained]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = tmp_path_factory.mktemp("explained")
        settings = Settings(data_dir=root / "data")
        uri = settings.mlflow_uri
        cases = generate_demo(1500, 2, seed=5).cases
        half = len(cases) // 2
        estimators: dict[str, Any] = {}

        admission = cases[list(fields_known_at("admission"))]
        features = CaseFeatures("admission").fit(admission, history=cases)
        X = features.transform(admission, history=cases)
        cost_labels = cases[["total_cost"]].rename(columns={"total_cost": "cost"})
        estimators["cost"] = CostModel(TINY, mondrian_min_group=50).fit(
            X[:half], cost_labels[:half], X[half:], cost_labels[half:]
        )
        margin_labels = get_task("margin").labels(cases, settings)
        estimators["margin"] = MarginModel(TINY, {"lightgbm": TINY}, drg_min_cases=5, drg_max_classes=10).fit(
            X[:half], margin_labels[:half], X[half:], margin_labels[half:]
        )

        discharge = cases[[*fields_known_at("discharge"), "los_days"]]
        risk_features = CaseFeatures("discharge").fit(discharge, history=cases)
        X_risk = risk_features.transform(discharge, history=cases)
        labels = get_task("readmission").labels(cases, settings)
        labelled = labels[LABEL].notna().to_numpy()
        X_l, y_l = X_risk[labelled], labels[labelled]
        cut = len(X_l) // 2
        platt = ReadmissionModel(TINY, "platt").fit(X_l[:cut], y_l[:cut], X_l[cut:], y_l[cut:])
        for served in ("lightgbm", "logistic"):  # serve each candidate, whichever won on validation
            estimators[served] = deepcopy(platt)
            estimators[served].served_ = served
        estimators["isotonic"] = ReadmissionModel(TINY, "isotonic").fit(
            X_l[:cut], y_l[:cut], X_l[cut:], y_l[cut:]
        )
        many_codes = (cases["other_diagnoses"].fillna("").str.count(r"\|") >= 2).astype(int)
        estimators["coding"] = CodingModel(TINY).fit(
            X_risk, many_codes.rename("coding_error").to_frame(), X_risk, None
        )

        champion = ("champion",)
        _register(
            uri, "caselens-cost", CaseModel(features, estimators["cost"], get_task("cost").output), champion
        )
        _register(
            uri,
            "caselens-margin",
            CaseModel(features, estimators["margin"], get_task("margin").output),
            champion,
        )
        _register(
            uri,
            "caselens-coding",
            CaseModel(risk_features, estimators["coding"], get_task("coding").output),
            champion,
        )
        for variant in READMISSION_VARIANTS:
            aliases = (variant, *champion) if variant == "lightgbm" else (variant,)
            _register(
                uri,
                "caselens-readmission",
                CaseModel(risk_features, estimators[variant], get_task("readmission").output),
                aliases,
            )

        keys_path = settings.data_dir / "api-keys.json"
        key = add_key(keys_path, "test-admin", "admin")
        yield Explained(settings, uri, cases, keys_path, key, estimators)


def _client(world: Explained, alias: str = "champion", tasks: tuple[str, ...] | None = None) -> TestClient:
    served = {name: SERVED_TASKS[name] for name in tasks or CASE_TASKS}
    app = create_app(
        world.settings,
        ServingSettings(api_keys=str(world.keys_path), reload_poll_seconds=0),
        registry=ModelRegistry(world.uri, served, alias=alias),
        cases=CaseIndex(lambda: world.cases),
    )
    return TestClient(app)


def _headers(world: Explained) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.key}"}


def _assert_adds_up(prediction: dict[str, Any], link: str) -> None:
    """base + contributions = raw output, and the steps on the prediction's scale end at the value."""
    explanation = prediction["explanation"]
    raw = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
    assert raw + explanation["rest"] == pytest.approx(explanation["raw_output"], abs=TOLERANCE)
    steps = sum(c["effect"] for c in explanation["contributions"]) + explanation["rest_effect"]
    end = explanation["base_prediction"] + steps
    if explanation["explains"] == "prediction":
        assert end == pytest.approx(prediction["value"], abs=TOLERANCE)
    if link == "logit":  # the raw output is the log-odds of what the steps end at
        assert 1 / (1 + np.exp(-explanation["raw_output"])) == pytest.approx(end, abs=TOLERANCE)
    if link == "identity":
        assert explanation["raw_output"] == pytest.approx(prediction["value"], abs=TOLERANCE)


@pytest.mark.parametrize("row", [0, 7, 31])
def test_every_task_explains_the_value_it_answers(explained: Explained, row: int) -> None:
    with _client(explained) as client:
        for name, task in CASE_TASKS.items():
            body = {"case": case_json(explained.cases.iloc[row], task.stage)}
            answer = client.post(f"/v1/predict/{name}", json=body, headers=_headers(explained))
            assert answer.status_code == 200, answer.text
            prediction = answer.json()["prediction"]
            assert prediction["explanation"]["explains"] == "prediction"
            _assert_adds_up(prediction, client.app.state.service.registry.models[name].model.output.link)
            if name == "cost":  # log yuan: the raw output is the point model's, before smearing
                smearing = explained.estimators["cost"].smearing_
                value = np.expm1(prediction["explanation"]["raw_output"]) * smearing
                assert value == pytest.approx(prediction["value"], rel=1e-9)


@pytest.mark.parametrize("variant", READMISSION_VARIANTS)
def test_readmission_explains_the_calibrated_risk_of_the_served_model(
    explained: Explained, variant: str
) -> None:
    with _client(explained, alias=variant, tasks=("readmission",)) as client:
        body = {"case": case_json(explained.cases.iloc[3], "discharge")}
        answer = client.post("/v1/predict/readmission", json=body, headers=_headers(explained))
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["prediction"]
        _assert_adds_up(prediction, "logit")
        estimator = explained.estimators[variant]
        explanation = prediction["explanation"]
        uncalibrated = 1 / (1 + np.exp(-explanation["raw_output"]))
        if variant == "isotonic":  # a step function: the answer says the chart explains the raw score
            assert explanation["explains"] == "uncalibrated score"
            assert uncalibrated == pytest.approx(
                prediction["outputs"]["readmission_probability_raw"], abs=1e-9
            )
        else:
            assert explanation["explains"] == "prediction"
            assert estimator.served_ == variant
            assert uncalibrated == pytest.approx(prediction["value"], abs=1e-9)
            assert prediction["value"] != pytest.approx(prediction["outputs"]["readmission_probability_raw"])


def _page_card(html: str, task: str) -> tuple[float, str, list[tuple[float, float, str]], bool]:
    """The card's value and its shown text, the waterfall's steps (start, end, amount) and its note."""
    card = re.search(rf'<section class="card" id="card-{task}">(.*?)</section>', html, re.S)
    assert card is not None, f"no {task} card"
    body = card.group(1)
    value = re.search(r'<p class="value" data-value="([^"]+)">\s*([^<]*?)\s*(?:<span|</p>)', body)
    assert value is not None
    steps = [
        (float(start), float(end), amount)
        for start, end, amount in re.findall(
            r'<g class="step" data-start="([^"]+)" data-end="([^"]+)">.*?<text[^>]*>[^<]*</text>'
            r"<rect[^>]*/><text[^>]*>([^<]*)</text></g>",
            body,
        )
    ]
    return float(value.group(1)), value.group(2).strip(), steps, 'class="muted explains"' in body


def _chain_end(steps: list[tuple[float, float, str]]) -> float:
    """Where the waterfall ends, checking that it is drawn as one chain from zero through the base."""
    (zero, base, _), *middle, (last_start, end, _) = steps
    assert zero == 0.0 and last_start == 0.0
    position = base
    for start, stop, _ in middle:
        assert start == pytest.approx(position, abs=TOLERANCE)
        position = stop
    assert end == pytest.approx(position, abs=TOLERANCE)
    return end


def _assert_page_adds_up(value: float, text: str, steps: list[tuple[float, float, str]]) -> None:
    assert _chain_end(steps) == pytest.approx(value, abs=TOLERANCE)
    assert steps[-1][2] == text  # the chart's last bar reads exactly as the value above it, sign included


def test_case_page_waterfalls_end_at_the_values_shown_with_their_sign(explained: Explained) -> None:
    cases = explained.cases
    admission = cases[list(fields_known_at("admission"))]
    margin = explained.estimators["margin"]
    X = CaseFeatures("admission").fit(admission, history=cases).transform(admission, history=cases)
    loss = int(np.argmin(margin.predict(X)["expected_margin"].to_numpy()))  # a clearly predicted loss
    with _client(explained) as client:
        case_id = cases["case_id"].iloc[loss]
        html = client.get(f"/cases/{case_id}?lang=en", headers=_headers(explained)).text
        for task in CASE_TASKS:
            value, text, steps, note = _page_card(html, task)
            _assert_page_adds_up(value, text, steps)
            assert not note
        value, text, steps, _ = _page_card(html, "margin")
        assert value < 0 and text.startswith("−¥") and steps[-1][2].startswith("−¥")


@pytest.mark.parametrize("variant", READMISSION_VARIANTS)
def test_case_page_readmission_chart_ends_at_the_risk_or_says_why_not(
    explained: Explained, variant: str
) -> None:
    with _client(explained, alias=variant, tasks=("readmission",)) as client:
        case_id = explained.cases["case_id"].iloc[3]
        html = client.get(f"/cases/{case_id}?lang=en", headers=_headers(explained)).text
        value, text, steps, note = _page_card(html, "readmission")
        if variant != "isotonic":  # Platt: the chart ends at the calibrated risk shown
            assert not note
            _assert_page_adds_up(value, text, steps)
            return
        assert note and "score before calibration" in html
        model = client.app.state.service.registry.models["readmission"]
        case = explained.cases[explained.cases["case_id"] == case_id]
        frame = case[[*fields_known_at("discharge"), "los_days"]]
        raw = model.model.predict_frame(frame, explained.cases)["readmission_probability_raw"].iloc[0]
        assert _chain_end(steps) == pytest.approx(raw, abs=TOLERANCE)


def test_waterfall_ends_keep_their_sign() -> None:
    from serving.waterfall import waterfall_svg

    explanation = {
        "base_prediction": -1200.0,
        "contributions": [{"name": "length of stay", "value": "12", "effect": -3168.0}],
        "rest_effect": 0.0,
    }
    svg = str(waterfall_svg(explanation, "yuan", "en"))
    amounts = re.findall(r"<text x=\"\d+\" y=\"\d+\">([^<]*)</text></g>", svg)
    assert amounts == ["−¥1,200", "−¥3,168", "−¥4,368"]  # base, step, prediction: a loss stays a loss
