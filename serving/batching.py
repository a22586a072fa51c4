"""Micro-batching: concurrent one-case requests to the same model are scored together.

A feature pass, three tree predictions and a SHAP pass cost about as much for thirty cases as for
one (pandas and LightGBM have a fixed cost per call), so under load the service scores whatever has
queued while the previous batch ran — no waiting window: an idle service scores a lone request at
once. Two cases of the same patient never share a batch: a case in a batch is history context for
the others, and one request's case must never change another's answer. Each job gets its own
result or error, so one bad case fails only its own request: a batch that fails as a whole, for any
reason, is scored again job by job, so the failure lands on the job that causes it alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from starlette.concurrency import run_in_threadpool

Item = TypeVar("Item")


@dataclass
class _Job(Generic[Item]):
    item: Item
    key: Hashable
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher(Generic[Item]):
    """Queue of jobs for one model; ``score`` runs in a worker thread on lists of at most ``max_size``.

    ``score(items)`` returns one outcome per item, in order: a result, or an exception instance that
    is raised to that item's caller.
    """

    def __init__(
        self,
        score: Callable[[list[Item]], Sequence[Any]],
        max_size: int = 64,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.score = score
        self.max_size = max_size
        self.observe = observe  # called with each batch's size (the service's metrics)
        self._pending: deque[_Job[Item]] = deque()
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: Item, key: Hashable) -> Any:
        """The outcome of ``item``; ``key`` (a patient) appears at most once per batch."""
        job = _Job(item, key, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await job.future

    def _next_batch(self) -> list[_Job[Item]]:
        batch: list[_Job[Item]] = []
        keys: set[Hashable] = set()
        deferred: list[_Job[Item]] = []
        while self._pending and len(batch) < self.max_size:
            job = self._pending.popleft()
            if job.future.done():  # its caller has gone (disconnected): nothing to score
                continue
            if job.key in keys:
                deferred.append(job)
            else:
                keys.add(job.key)
                batch.append(job)
        self._pending.extendleft(reversed(deferred))  # keep their place at the front
        return batch

    async def _drain(self) -> None:
        while self._pending:
            batch = self._next_batch()
            if not batch:
                continue
            outcomes = await self._outcomes(batch)
            if self.observe is not None:
                self.observe(len(batch))
            for job, outcome in zip(batch, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    async def _outcomes(self, batch: list[_Job[Item]]) -> list[Any]:
        """One outcome per job; when the batch fails as a whole, each job's own from scoring it alone."""
        try:
            outcomes = list(await run_in_threadpool(self.score, [job.item for job in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"scored {len(outcomes)} outcomes for {len(batch)} jobs")
            return outcomes
        except Exception as error:
            if len(batch) == 1:
                return [error]
        return [outcome for job in batch for outcome in await self._outcomes([job])]
