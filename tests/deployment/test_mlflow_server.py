"""The shared tracking server of docs/deployment.md: MLflow on PostgreSQL with a shared artifact store.

A real PostgreSQL (Debian's ``postgresql`` package, installed by ``make test``) and a real ``mlflow
server`` start on free loopback ports; then, with ``MLFLOW_TRACKING_URI`` pointing at the server,
``caselens`` trains a task through its command line, registers it, promotes the champion, and serves
it. The database password and the token in the tracking URI must appear in no command's output, no
log, no HTTP answer and no file caselens or MLflow wrote.

PostgreSQL refuses to run as root: as root the cluster is run as the package's ``postgres`` user
(``runuser``). Without the binaries the test skips, unless ``CASELENS_REQUIRE_POSTGRES`` is set (CI),
where it fails.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest

from tests.serving.conftest import case_json
from tests.serving.ports import free_port
from tests.serving.test_workers import running, stop

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DATABASE, USER = "mlflow", "caselens"


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: Debian keeps them off PATH, in /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def as_cluster_owner(command: list[str]) -> list[str]:
    """``command`` run by the user that owns the cluster: root may not run PostgreSQL."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str

    def uri(self) -> str:
        return f"postgresql+psycopg2://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throw-away PostgreSQL cluster with password (SCRAM) login and an empty ``mlflow`` database."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.environ.get("CASELENS_REQUIRE_POSTGRES"):
            pytest.fail("CASELENS_REQUIRE_POSTGRES is set but PostgreSQL is not installed (make postgres)")
        pytest.skip("PostgreSQL is not installed (`make postgres` installs Debian's package)")
    # Not under pytest's tmp_path: that folder is private to root, and the cluster's owner must enter it.
    folder = Path(tempfile.mkdtemp(prefix="caselens-pg-"))
    password = "pw-" + secrets.token_hex(12)
    (folder / "pwfile").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pwfile", "postgres")
    data, port = folder / "data", free_port()
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256"]
        initdb += ["--pwfile", str(folder / "pwfile"), "-E", "UTF8", "--no-locale"]
        subprocess.run(as_cluster_owner(initdb), check=True, capture_output=True)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        subprocess.run(
            as_cluster_owner([*pg_ctl, "-l", str(folder / "postgres.log"), "-w", "-o", options, "start"]),
            check=True,
            capture_output=True,
        )
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user=USER, password=password, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {DATABASE}")
        connection.close()
        yield Postgres(port, password)
    finally:
        subprocess.run(as_cluster_owner([*pg_ctl, "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class TrackingServer:
    url: str
    artifacts: Path
    log: Path


@pytest.fixture(scope="module")
def tracking_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    """``mlflow server`` on the cluster, serving artifacts from a shared folder (what an NFS mount or an
    object store is in production). The database URI goes in by environment, never on the command line."""
    folder = tmp_path_factory.mktemp("tracking")
    port, log_path = free_port(), folder / "mlflow-server.log"
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--artifacts-destination", str(folder / "artifacts")]
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": postgres.uri()}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _answers(url + "/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield TrackingServer(url, folder / "artifacts", log_path)
    finally:
        stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_train_register_promote_and_serve_through_a_shared_postgres_tracking_server(
    postgres: Postgres, tracking_server: TrackingServer, tmp_path: Path
) -> None:
    token = "tok-" + secrets.token_hex(12)
    # Credentials in the URI as a proxy in front of the server would take them (HTTP basic auth).
    uri = tracking_server.url.replace("http://", f"http://{USER}:{token}@")
    data_dir = tmp_path / "caselens-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CASELENS_"))}
    env |= {"CASELENS_DATA_DIR": str(data_dir), "MLFLOW_TRACKING_URI": uri, "COLUMNS": "240"}
    outputs: list[str] = []

    def caselens(*arguments: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli.app", *arguments], env=env, cwd=ROOT, capture_output=True, text=True
        )
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"caselens {arguments[0]} failed:\n{outputs[-1]}"
        return done.stdout

    demo = tmp_path / "demo"
    caselens("demo-data", "--cases", "2500", "--years", "2", "--seed", "5", "--out", str(demo))
    caselens("ingest", str(demo / "cases.parquet"))
    trained = caselens("train", "cost", "--oracle", str(demo / "oracle.parquet"))
    assert "this version becomes champion" in trained

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("caselens-cost", "champion")
    assert champion.version == "1"
    # The model and the run's plots were written through the server into the shared artifact store.
    assert list(tracking_server.artifacts.rglob("MLmodel")), "no model in the shared artifact store"
    run_files = {p.name for p in tracking_server.artifacts.rglob("*") if champion.run_id in p.parts}
    assert "metrics.json" in run_files

    key = re.search(r"cl_[A-Za-z0-9_-]{20,}", caselens("api-key", "--role", "clinician", "--id", "deploy"))
    assert key is not None
    port = free_port()
    serve_env = env | {"CASELENS_SERVE_OPEN_OPERATIONS": "1"}  # /readyz details: the models' sources
    body = {"case": case_json(pd.read_parquet(demo / "cases.parquet").iloc[0], "admission")}
    answers: list[httpx.Response] = []
    with running(["serve", "--port", str(port)], serve_env, f"http://127.0.0.1:{port}", tmp_path) as url:
        headers = {"X-API-Key": key.group(0)}
        answers.append(httpx.post(url + "/v1/predict/cost", json=body, headers=headers, timeout=60))
        answers.append(httpx.get(url + "/readyz", timeout=30))
        answers.append(httpx.post(url + "/v1/predict/cost", json={"case": {}}, headers=headers, timeout=60))
    predicted, ready, refused = answers
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["model"] == {"name": "caselens-cost", "version": champion.version}
    assert predicted.json()["prediction"]["value"] > 0
    served = next(m for m in ready.json()["models"] if m["task"] == "cost")
    assert served["version"] == champion.version
    assert refused.status_code == 422

    logs = [tracking_server.log.read_text(), (tmp_path / "serve.log").read_text()]
    written = [p.read_bytes().decode("utf-8", "replace") for p in _files(data_dir, tracking_server.artifacts)]
    for secret in (postgres.password, token):
        for text in (*outputs, *logs, *(a.text for a in answers), *written):
            assert secret not in text


def _files(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from (p for p in folder.rglob("*") if p.is_file())
