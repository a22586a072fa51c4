"""Reload across worker processes: the worker that reloads announces a new generation, the others follow.

``POST /v1/admin/reload`` reaches one worker of ``caselens serve --workers N``. That worker loads the
current champions, then writes the next *reload generation* to a small file under data_dir (temp file
+ ``os.replace``, so a reader never sees half a number; an exclusive lock, so two workers reloading at
once never write the same number). Every worker reads the file about once a second and, when it holds
a generation the worker has not seen, reloads through the same code path as the endpoint. A version
that fails to load leaves the old one serving, as the registry always does. With one worker the poll
only ever finds the worker's own announcements and does nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from serving.cases import CasesUnavailable
from serving.deps import ServiceState

log = logging.getLogger(__name__)


def reload_models(state: ServiceState) -> list[str]:
    """Load the current champions; forget what the service derived from the store (cases, review queue).

    Returns the tasks now served by a different version. Blocking: run it in a thread.
    """
    changed = state.registry.load()
    state.cases.reset()
    state.queue.reset()
    settle(state)
    return changed


def settle(state: ServiceState) -> None:
    """Read the case store and build the service's casemix engine now rather than in the next
    request, then keep the garbage collector off the long-lived objects (models, store, indexes):
    walking them again and again shows as pauses in the latency tail. Unfrozen first, so what a
    reload replaced can still be collected."""
    with suppress(CasesUnavailable):
        state.cases.stays_of([])
    state.casemix()  # the service's engine (its tables and rules), built once, before any request
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ReloadGeneration:
    """The reload generation file of one data_dir: a decimal number, 0 while there is none.

    Anything unreadable as a number also counts as 0 (the next ``bump`` writes a good one).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> int:
        try:
            return int(self.path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):  # ValueError includes UnicodeDecodeError
            return 0

    def bump(self) -> int:
        """Write the next generation atomically and return it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            generation = self.read() + 1
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="ascii") as file:
                    file.write(f"{generation}\n")
                os.chmod(temp, 0o644)  # mkstemp makes it private; every worker's user must read it
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        return generation


class WorkerReloads:
    """One worker's side of reloading: reload here and announce it, or follow another worker's reload.

    ``seen`` is the last generation this worker's models correspond to. It is read when the app is
    built, before the models load at start-up, so an announcement made while a worker starts is
    followed too. ``reload`` and ``follow`` assign ``seen`` in the event loop with no ``await`` between
    reading or writing the file and the assignment, so a worker never follows its own announcement.
    """

    def __init__(self, generation: ReloadGeneration, reload: Callable[[], list[str]], every: float) -> None:
        self.generation = generation
        self._reload = reload
        self.every = every
        self.seen = generation.read()

    async def reload(self) -> tuple[list[str], int]:
        """Reload in a thread, then announce it; returns the changed tasks and the new generation."""
        changed = await run_in_threadpool(self._reload)
        self.seen = self.generation.bump()
        return changed, self.seen

    async def follow(self) -> bool:
        """Reload (in a thread) when another worker announced a generation this one has not seen."""
        generation = self.generation.read()
        if generation == self.seen:
            return False
        self.seen = generation
        changed = await run_in_threadpool(self._reload)
        log.info("followed reload generation %d; %d task(s) changed version", generation, len(changed))
        return True

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.follow()
            except Exception as error:  # keep polling: the next announcement may load
                log.warning("following a reload failed: %s", type(error).__name__)

    @asynccontextmanager
    async def following(self) -> AsyncIterator[None]:
        """Follow other workers' reloads in the background while the app runs (never when ``every`` is 0)."""
        if self.every <= 0:
            yield
            return
        task = asyncio.create_task(self._poll(), name="caselens-reload-follower")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
