"""`caselens serve` and `caselens api-key`: run the prediction service and hand out keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from contract.errors import ConfigError, InputError
from contract.settings import get_settings, mask_credentials
from serving.config import ServingSettings
from serving.middleware import share_metrics_across_processes
from serving.roles import ROLES
from serving.security import KeyStore, add_key, list_keys, revoke_key
from serving.sessions import SessionDatabase

console = Console()

WORKER_HEALTHCHECK_SECONDS = 60


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="worker processes (default: CASELENS_SERVE_WORKERS, else 1); each loads its own models "
            "and case store, so memory grows with every worker",
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="TLS certificate (PEM): serve HTTPS, cookies Secure"),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="the certificate's private key (PEM)")
    ] = None,
) -> None:
    """Serve predictions, explanations and pages (FastAPI + uvicorn); API docs at /docs.

    Models load from the MLflow registry by their `champion` alias; POST /v1/admin/reload swaps in new
    champions without downtime, and with --workers N the other workers follow within about a second.
    /metrics adds up every worker's counts. With no API key configured, a demo admin key is made in
    data_dir and shown once. With --ssl-certfile and --ssl-keyfile it serves HTTPS and the login
    session cookie is sent over HTTPS only.
    """
    import uvicorn

    from serving.app import create_app

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise InputError("--ssl-certfile and --ssl-keyfile go together")
    if ssl_certfile is not None:
        os.environ["CASELENS_SERVE_COOKIE_SECURE"] = "true"  # every worker reads its settings from here
    settings, serving = get_settings(), ServingSettings()
    keys = KeyStore.from_config(serving.api_keys, serving.keys_path(settings))
    path = serving.keys_path(settings)
    if not len(keys) and serving.api_keys is None and path is not None:
        key = add_key(path, "demo-admin", "admin")
        console.print(
            Panel(
                f"[bold]{key}[/bold]\n\nrole admin, key id demo-admin; only its SHA-256 is kept, in {path}.\n"
                "Add keys per role with `caselens api-key --role coder --id alice`.",
                title="demo admin key (shown once)",
            )
        )
    workers = workers or serving.workers
    scheme = "https" if ssl_certfile else "http"
    console.print(
        f"caselens serving on {scheme}://{host}:{port} with {workers} worker process(es) "
        f"(docs: /docs, models from {mask_credentials(settings.mlflow_uri)})"
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # the app logs its own access lines, by route template
        "log_config": log_config(workers),
        "log_level": "info",
        "server_header": False,  # no software banner for a scanner to match against known flaws
    }
    if ssl_certfile is not None:
        options |= {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)}
    if workers == 1:
        uvicorn.run(create_app(settings, serving), **options)
        return
    # Every worker builds its own app with create_app(), which reads its settings from the environment.
    os.environ["CASELENS_SERVE_WORKERS"] = str(workers)
    share_metrics_across_processes(serving.metrics_dir(settings))
    # A worker answers uvicorn's health check only once it has imported pandas, MLflow and LightGBM;
    # on a busy machine that takes longer than uvicorn's 5 s, and the worker would be killed and restarted.
    options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    uvicorn.run("serving.app:create_app", factory=True, workers=workers, **options)


def log_config(workers: int) -> dict[str, Any]:
    """One line format for the app and uvicorn, applied by every worker (each sets up its own logging)."""
    worker = " [%(process)d]" if workers > 1 else ""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "()": "contract.settings.MaskingFormatter",  # no URI password in any line
                "format": f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s",
            }
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }


def api_key(
    role: Annotated[str | None, typer.Option(help=f"role of a new key, one of: {', '.join(ROLES)}")] = None,
    key_id: Annotated[
        str | None, typer.Option("--id", help="who a new key is for; the audit log records this id")
    ] = None,
    revoke: Annotated[
        str | None, typer.Option(help="revoke this key id: running servers refuse it within seconds")
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="list key ids, roles and dates (no secrets)")] = False,
) -> None:
    """Make an API key for a role (shown once; only its SHA-256 is stored), revoke one, or list them.

    Running servers read the key file again when it changes, within CASELENS_SERVE_KEYS_CHECK_SECONDS:
    no restart. Revoking a key also ends the login sessions opened with it.
    """
    settings, serving = get_settings(), ServingSettings()
    path = serving.keys_path(settings)
    if path is None:
        raise ConfigError("keys are given inline in CASELENS_SERVE_API_KEYS: edit them there")
    if list_:
        _print_keys(list_keys(path))
    elif revoke is not None:
        revoke_key(path, revoke)
        sessions = serving.sessions_path(settings)
        ended = SessionDatabase(sessions).end_sessions(revoke) if sessions.exists() else 0
        console.print(f"key {revoke} revoked in {path}; {ended} login session(s) ended")
    elif role is not None and key_id is not None:
        key = add_key(path, key_id, role)
        console.print(Panel(f"[bold]{key}[/bold]", title=f"API key {key_id} ({role}), shown once"))
        console.print(f"hash stored in {path}")
    else:
        raise InputError("give --role and --id (new key), --revoke ID or --list")


def _print_keys(keys: list[dict[str, str]]) -> None:
    table = Table("id", "role", "created", "revoked")
    for key in keys:
        table.add_row(key["id"], key["role"], key["created"] or "—", key["revoked"] or "—")
    console.print(table)
