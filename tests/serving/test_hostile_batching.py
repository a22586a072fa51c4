"""Poisoned requests in a micro-batch: whatever fails one case answers that case alone."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from types import MappingProxyType
from typing import Any

import httpx
import pandas as pd
import pytest

from features.pipeline import FeatureInputError

pytestmark = pytest.mark.slow


class Poisoned:
    """A served model's features that fail on any case whose id starts with "POISON", as a value the
    arithmetic cannot hold would: ``error`` is what they raise."""

    def __init__(self, features: Any, error: Exception) -> None:
        self.features = features
        self.error = error

    @classmethod
    def served(cls, served: Any, error: Exception) -> Any:
        """``served`` (a ServedModel) with its model's features poisoned."""
        model = copy.copy(served.model)
        model.features = cls(model.features, error)
        return dataclasses.replace(served, model=model)

    def transform(self, cases: pd.DataFrame, history: Any = None) -> pd.DataFrame:
        if cases["case_id"].astype(str).str.startswith("POISON").any():
            raise self.error
        return self.features.transform(cases, history=history)


@pytest.mark.parametrize(
    "error, poisoned_status",
    [
        (OverflowError("Python int too large: 1900-01-01 .. 2200-12-31"), 500),
        (FeatureInputError("cases: admission_date is missing in row 0 (index 0)"), 422),
    ],
)
def test_poisoned_and_honest_requests_share_micro_batches_and_every_honest_one_gets_200(
    make_app, auth, admission_body, world, error, poisoned_status
):
    app = make_app(("cost",), micro_batch=64)
    service = app.state.service
    service.registry.load()
    model = service.registry.models["cost"]
    service.registry._models = MappingProxyType({"cost": Poisoned.served(model, error)})
    batcher = service.batchers["cost"]
    batches: list[list[str]] = []
    score = batcher.score

    def recording(requests: list[Any]) -> Any:
        batches.append([r.case.case_id for r in requests])
        return score(requests)

    batcher.score = recording
    honest = [admission_body(r) for r in range(0, 300, 10)]  # 30 cases of (mostly) different patients
    poison = [admission_body(r, case_id=f"POISON-{r}", patient_id=f"PP-{r}") for r in range(10)]
    implausible = [admission_body(r, admission_date="1900-01-01") for r in range(5)]  # refused at the edge

    async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        return await client.post("/v1/predict/cost", json=body, headers=auth("clinician"))

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alone = [await send(client, b) for b in honest]
            mixed = [b for trio in zip(honest, poison * 3, implausible * 6, strict=False) for b in trio]
            together = await asyncio.gather(*(send(client, b) for b in mixed))
        return alone, together

    alone, together = asyncio.run(run())
    assert all(a.status_code == 200 for a in alone)
    answers = {r.request.content: r for r in together}
    for body, expected in zip(honest, alone, strict=True):
        answer = answers[httpx.Request("POST", "/", json=body).content]
        assert answer.status_code == 200, answer.text
        assert answer.json()["prediction"]["value"] == pytest.approx(expected.json()["prediction"]["value"])
    poisoned = [r for r in together if b"POISON" in r.request.content]
    assert poisoned and all(r.status_code == poisoned_status for r in poisoned)
    if poisoned_status == 500:
        assert all("too large" not in r.text and "request" in r.json()["detail"] for r in poisoned)
    else:  # the documented shape of a 422: a list naming where
        assert all(r.json()["detail"][0]["loc"] == ["body", "case"] for r in poisoned)
    refused = [r for r in together if b"1900-01-01" in r.request.content]
    assert refused and all(r.status_code == 422 for r in refused)
    shared = [b for b in batches if len(b) > 1 and any(str(c).startswith("POISON") for c in b)]
    assert shared and any(not str(c).startswith("POISON") for b in shared for c in b)  # they did share
