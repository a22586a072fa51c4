"""Several worker processes: reload reaches every worker, /metrics adds up every worker's counts.

The end-to-end test starts ``caselens serve --workers 2`` as a subprocess on a free loopback port, over
its own data_dir and the world's MLflow store and keys; the others test the reload generation file and
a worker following another's reload in one process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import mlflow
import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from serving.registry import ModelRegistry
from serving.reload import ReloadGeneration, WorkerReloads
from serving.security import add_key, revoke_key
from serving.tasks import SERVED_TASKS
from tests.serving.conftest import TRAINED_TASKS
from tests.serving.ports import free_port


def test_generation_starts_at_zero_and_each_bump_writes_the_next_atomically(tmp_path):
    generation = ReloadGeneration(tmp_path / "serve" / "reload-generation")
    assert generation.read() == 0
    assert [generation.bump() for _ in range(3)] == [1, 2, 3]
    assert generation.read() == 3 and generation.path.read_text() == "3\n"
    assert sorted(p.name for p in generation.path.parent.iterdir()) == [
        "reload-generation",
        "reload-generation.lock",
    ]  # no temp file left behind


def test_an_unreadable_generation_counts_as_zero_and_the_next_bump_repairs_it(tmp_path):
    generation = ReloadGeneration(tmp_path / "reload-generation")
    generation.path.write_bytes(b"\xff not a number")
    assert generation.read() == 0
    assert generation.bump() == 1 and generation.read() == 1


def test_concurrent_bumps_never_write_the_same_generation(tmp_path):
    generation = ReloadGeneration(tmp_path / "reload-generation")
    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(lambda _: generation.bump(), range(40)))
    assert sorted(written) == list(range(1, 41))


def test_a_worker_follows_other_announcements_but_not_its_own(tmp_path):
    path = tmp_path / "reload-generation"
    calls: dict[str, int] = {"a": 0, "b": 0}

    def reloader(name: str):
        def reload() -> list[str]:
            calls[name] += 1
            return ["cost"]

        return reload

    a = WorkerReloads(ReloadGeneration(path), reloader("a"), every=1.0)
    b = WorkerReloads(ReloadGeneration(path), reloader("b"), every=1.0)

    async def scenario() -> None:
        assert await a.follow() is False and await b.follow() is False  # nothing announced yet
        assert await a.reload() == (["cost"], 1)
        assert await a.follow() is False  # its own announcement
        assert await b.follow() is True and b.seen == 1
        assert await b.follow() is False  # once per announcement
        path.write_text("garbage")  # a reset file differs from what both have seen: both reload once more
        assert await a.follow() is True and await b.follow() is True

    asyncio.run(scenario())
    assert calls == {"a": 2, "b": 2}


def test_following_runs_in_the_background_and_stops_at_shutdown(tmp_path):
    path = tmp_path / "reload-generation"
    followed: list[int] = []
    worker = WorkerReloads(ReloadGeneration(path), lambda: followed.append(1) or [], every=0.02)

    async def scenario() -> asyncio.Task:
        async with worker.following():
            ReloadGeneration(path).bump()
            for _ in range(200):
                if followed:
                    break
                await asyncio.sleep(0.01)
            task = next(t for t in asyncio.all_tasks() if t.get_name() == "caselens-reload-follower")
        return task

    task = asyncio.run(scenario())
    assert followed == [1] and task.cancelled()
    idle = WorkerReloads(ReloadGeneration(path), lambda: [], every=0)

    async def disabled() -> set[str]:
        async with idle.following():
            return {t.get_name() for t in asyncio.all_tasks()}

    assert "caselens-reload-follower" not in asyncio.run(disabled())


@pytest.mark.slow
def test_an_app_follows_a_reload_announced_by_another_app_on_the_same_data_dir(
    world, make_app, auth, register
):
    """Two apps in one process stand in for two workers: each reloads its own registry."""
    client_models = mlflow.MlflowClient(tracking_uri=world.mlflow_uri, registry_uri=world.mlflow_uri)
    with (
        TestClient(make_app(("cost",), reload_poll_seconds=0.05, open_operations=True)) as first,
        TestClient(make_app(("cost",), reload_poll_seconds=0.05, open_operations=True)) as second,
    ):
        served = first.app.state.service.registry.models["cost"]
        champion = served.version  # put back at the end, whatever other tests left it at
        try:
            version = register(world.mlflow_uri, "caselens-cost", served.model)
            answer = first.post("/v1/admin/reload", headers=auth("admin")).json()
            assert answer["changed"] == ["cost"] and answer["others_follow_within_seconds"] == 0.05
            assert (
                answer["generation"]
                == ReloadGeneration(world.settings.data_dir / "serve" / "reload-generation").read()
            )
            deadline = time.monotonic() + 20
            while served_version(second, "cost") != version:
                assert time.monotonic() < deadline, "the second app did not follow the reload"
                time.sleep(0.05)
            assert served_version(first, "cost") == version
        finally:
            client_models.set_registered_model_alias("caselens-cost", "champion", str(champion))


def served_version(client: TestClient, task: str) -> str | None:
    return next(m["version"] for m in client.get("/readyz").json()["models"] if m["task"] == task)


class Served(NamedTuple):
    url: str
    keys: Path  # the server's key file: tests may change it while the server runs


@pytest.fixture(scope="module")
def two_workers(world, tmp_path_factory) -> Iterator[Served]:
    """`caselens serve --workers 2` over its own data_dir, serving the world's models and a copy of its
    keys; started once for the module's tests (a start takes the better part of a minute)."""
    tmp_path = tmp_path_factory.mktemp("two-workers")
    port = free_port()
    command = ["serve", "--port", str(port), "--workers", "2"]
    with running(command, serve_environment(world, tmp_path), f"http://127.0.0.1:{port}", tmp_path) as url:
        yield Served(url, tmp_path / "api-keys.json")


def serve_environment(world, folder: Path) -> dict[str, str]:
    """A `caselens serve` subprocess's environment: data_dir ``folder/data``, the world's models and a
    copy of its keys in ``folder/api-keys.json``."""
    keys = folder / "api-keys.json"
    shutil.copy(world.keys_path, keys)
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "MLFLOW_REGISTRY_URI")
    }
    return {
        **inherited,
        "CASELENS_DATA_DIR": str(folder / "data"),
        "MLFLOW_TRACKING_URI": world.mlflow_uri,
        "CASELENS_SERVE_API_KEYS": str(keys),
        "CASELENS_SERVE_OPEN_OPERATIONS": "1",  # /readyz details and /metrics without a key
        # the world's models: it has no in-stay champion, for which /readyz would wait
        "CASELENS_SERVE_TASKS": ",".join(TRAINED_TASKS),
    }


@contextmanager
def running(
    arguments: list[str], env: dict[str, str], url: str, folder: Path, verify: Any = True
) -> Iterator[str]:
    """`caselens <arguments>` as a subprocess until it answers /healthz at ``url``; stopped at the end."""
    log_path = folder / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.app", *arguments],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path.cwd(),
        )
        try:
            deadline = time.monotonic() + 180
            while not healthy(url, verify):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the server did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            stop(process)


def healthy(url: str, verify: Any = True) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2, verify=verify).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen) -> None:
    """Stop the server and, should any outlive it, its worker processes (by their ids)."""
    children = psutil.Process(process.pid).children(recursive=True) if process.poll() is None else []
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in children:
        if child.is_running():
            child.kill()


def readiness(url: str, requests: int) -> list[dict]:
    """``requests`` /readyz answers, each on a new connection, several at once so both workers answer."""
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: httpx.get(url + "/readyz", timeout=30), range(requests)))
    assert {a.status_code for a in answers} == {200}
    return [a.json() for a in answers]


def cost_versions(answers: list[dict]) -> dict[int, str]:
    """Each answering worker's pid → its served cost version (the last answer of each pid)."""
    return {a["pid"]: next(m["version"] for m in a["models"] if m["task"] == "cost") for a in answers}


@pytest.mark.slow
def test_two_workers_answer_reload_together_and_count_requests_together(world, two_workers, auth, register):
    url = two_workers.url
    sent = 0
    pids: set[int] = set()
    while len(pids) < 2:
        answers = readiness(url, 20)
        sent += len(answers)
        pids |= set(cost_versions(answers))
        assert sent <= 400, "every /readyz answer came from one worker"
    client_models = mlflow.MlflowClient(tracking_uri=world.mlflow_uri, registry_uri=world.mlflow_uri)
    # Other tests of the session may have moved the shared world's champion: start from whatever it is.
    champion = client_models.get_model_version_by_alias("caselens-cost", "champion").version
    assert set(cost_versions(answers).values()) == {str(champion)}

    loaded = ModelRegistry(world.mlflow_uri, {"cost": SERVED_TASKS["cost"]})
    loaded.load()
    served = loaded.models["cost"]
    try:
        version = register(world.mlflow_uri, "caselens-cost", served.model)
        reloaded = httpx.post(url + "/v1/admin/reload", headers=auth("admin"), timeout=60)
        assert reloaded.status_code == 200, reloaded.text
        answer = reloaded.json()
        assert answer["changed"] == ["cost"] and answer["generation"] == 1
        assert answer["others_follow_within_seconds"] == 1.0

        deadline = time.monotonic() + 20
        followed: dict[int, str] = {}
        while {p for p, v in followed.items() if v == version} != pids:
            assert time.monotonic() < deadline, f"not every worker serves v{version}: {followed}"
            answers = readiness(url, 8)
            sent += len(answers)
            followed |= cost_versions(answers)
            time.sleep(0.2)
    finally:
        client_models.set_registered_model_alias("caselens-cost", "champion", str(champion))

    text = httpx.get(url + "/metrics", timeout=30).text
    counted = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "caselens_requests_total" and sample.labels.get("endpoint") == "/readyz"
    )
    assert counted == sent  # both workers' requests, whichever worker answered /metrics


def statuses(url: str, key: str, requests: int = 16) -> set[int]:
    """Status codes of ``requests`` key-checked requests, each on a new connection, so both workers answer."""
    with ThreadPoolExecutor(4) as pool:
        answers = pool.map(
            lambda _: httpx.get(url + "/v1/review/queue", headers={"X-API-Key": key}, timeout=30),
            range(requests),
        )
        return {a.status_code for a in answers}


@pytest.mark.slow
def test_two_workers_accept_a_new_key_and_refuse_a_revoked_one_within_5_s_without_restart(two_workers):
    url, keys = two_workers
    key = add_key(keys, "added-while-running", "coder")  # the way `caselens api-key` adds one
    added = time.monotonic()
    while 401 in statuses(url, key):
        assert time.monotonic() - added < 5, "a new key is still refused after 5 s"
    assert statuses(url, key, 40).isdisjoint({401, 403})  # every worker knows it
    revoke_key(keys, "added-while-running")
    revoked = time.monotonic()
    while statuses(url, key) != {401}:
        assert time.monotonic() - revoked < 5, "a revoked key is still accepted after 5 s"
    assert statuses(url, key, 40) == {401}  # by every worker


def test_serve_with_workers_runs_the_app_factory_over_an_emptied_metrics_folder(settings, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from cli.app import app

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append((app, options)))
    # Set here so monkeypatch restores the test process's environment after the command changed it.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")
    monkeypatch.setenv("CASELENS_SERVE_WORKERS", "1")
    stale = settings.data_dir / "serve" / "prometheus" / "counter_123.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old counts")

    result = CliRunner().invoke(app, ["serve", "--workers", "3"])
    assert result.exit_code == 0, result.output
    target, options = started[-1]
    assert target == "serving.app:create_app" and options["factory"] and options["workers"] == 3
    assert options["access_log"] is False and options["server_header"] is False  # no banner, any worker
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(stale.parent) and not stale.exists()
    assert os.environ["CASELENS_SERVE_WORKERS"] == "3"

    monkeypatch.setenv("CASELENS_SERVE_WORKERS", "1")
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    target, options = started[-1]
    assert not isinstance(target, str) and "workers" not in options  # one worker: the app object itself
    assert CliRunner().invoke(app, ["serve", "--workers", "0"]).exit_code == 2
