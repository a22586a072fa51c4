"""Micro-batching: concurrent one-case requests are scored together and answer as if scored alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from serving.batching import MicroBatcher


def recording(outcome: Any = None) -> tuple[list[list[Any]], Any]:
    seen: list[list[Any]] = []

    def score(items: list[Any]) -> list[Any]:
        seen.append(list(items))
        return [outcome(i) if outcome else i * 10 for i in items]

    return seen, score


def test_concurrent_jobs_share_batches_of_at_most_max_size() -> None:
    seen, score = recording()
    sizes: list[int] = []
    batcher = MicroBatcher(score, max_size=4, observe=sizes.append)

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(i, key=i) for i in range(10)))

    assert asyncio.run(main()) == [i * 10 for i in range(10)]
    assert [len(b) for b in seen] == [4, 4, 2] and sizes == [4, 4, 2]
    assert [i for b in seen for i in b] == list(range(10))  # first come, first scored


def test_a_lone_job_is_scored_at_once() -> None:
    seen, score = recording()
    batcher = MicroBatcher(score)

    async def main() -> list[Any]:
        return [await batcher.submit(i, key=i) for i in range(3)]  # one after another

    assert asyncio.run(main()) == [0, 10, 20]
    assert seen == [[0], [1], [2]]


def test_one_patient_never_appears_twice_in_a_batch() -> None:
    seen, score = recording()
    batcher = MicroBatcher(score)
    keys = ["p1", "p1", "p2", "p1", "p3"]

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(i, key=k) for i, k in enumerate(keys)))

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert seen == [[0, 2, 4], [1], [3]]


def test_each_job_gets_its_own_outcome_and_a_failed_batch_fails_only_its_jobs() -> None:
    _, score = recording(lambda i: ValueError(f"bad {i}") if i == 1 else i)
    batcher = MicroBatcher(score)

    async def main() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(i, key=i) for i in range(3)), return_exceptions=True)

    first, second, third = asyncio.run(main())
    assert (first, third) == (0, 2) and isinstance(second, ValueError) and str(second) == "bad 1"

    def broken(items: list[Any]) -> list[Any]:
        raise RuntimeError("model crashed")

    failing = MicroBatcher(broken)

    async def both() -> list[Any]:
        return await asyncio.gather(failing.submit(1, 1), failing.submit(2, 2), return_exceptions=True)

    assert all(isinstance(e, RuntimeError) for e in asyncio.run(both()))
    with pytest.raises(ValueError, match="max_size"):
        MicroBatcher(broken, max_size=0)


def test_concurrent_requests_answer_exactly_as_sequential_ones(make_app, auth, admission_body, world) -> None:
    app = make_app(("cost",), micro_batch=64)
    app.state.service.registry.load()
    rows = list(range(0, 240, 12))  # 20 cases of (mostly) different patients
    bodies = [admission_body(r) for r in rows]
    # The same case id twice, for two patients: a batch holding both cannot be scored as one (the
    # features refuse a repeated case id), so the batch falls back to scoring case by case.
    twin = admission_body(rows[0], patient_id="another-patient")
    bodies.append(twin)

    async def send(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        return await client.post("/v1/predict/cost", json=body, headers=auth("clinician"))

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            alone = [await send(client, b) for b in bodies]
            together = await asyncio.gather(*(send(client, b) for b in bodies))
        return alone, together

    alone, together = asyncio.run(run())
    assert all(a.status_code == 200 for a in alone + together), [a.text for a in alone + together]
    for a, b in zip(alone, together, strict=True):
        pa, pb = a.json()["prediction"], b.json()["prediction"]
        assert pa["case_id"] == pb["case_id"]
        assert pb["value"] == pytest.approx(pa["value"], rel=1e-12)
        parts_a, parts_b = pa["explanation"]["contributions"], pb["explanation"]["contributions"]
        assert [(c["feature"], c["value"]) for c in parts_b] == [(c["feature"], c["value"]) for c in parts_a]
        assert [c["contribution"] for c in parts_b] == pytest.approx([c["contribution"] for c in parts_a])
    metrics = app.state.service.metrics
    sizes = metrics.registry.get_sample_value("caselens_micro_batch_cases_sum", {"task": "cost"})
    batches = metrics.registry.get_sample_value("caselens_micro_batch_cases_count", {"task": "cost"})
    assert sizes == 2 * len(bodies) and batches < 2 * len(bodies)  # some requests shared a batch


def test_a_batch_that_fails_as_a_whole_is_scored_job_by_job() -> None:
    """Whatever breaks a batch (here any batch holding the poison item), its mates still get answers."""
    seen: list[list[Any]] = []

    def fragile(items: list[Any]) -> list[Any]:
        seen.append(list(items))
        if "poison" in items:
            raise OverflowError("a value the arithmetic cannot hold")
        return [f"ok {i}" for i in items]

    batcher = MicroBatcher(fragile)

    async def main() -> list[Any]:
        items = [1, "poison", 2, 3]
        return await asyncio.gather(
            *(batcher.submit(i, key=n) for n, i in enumerate(items)), return_exceptions=True
        )

    one, poison, two, three = asyncio.run(main())
    assert (one, two, three) == ("ok 1", "ok 2", "ok 3")
    assert isinstance(poison, OverflowError)
    assert seen == [[1, "poison", 2, 3], [1], ["poison"], [2], [3]]
