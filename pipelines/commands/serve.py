"""`caselens serve` and `caselens api-key`: run the prediction service and hand out keys."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel

from pipelines.settings import get_settings
from serving.config import ServingSettings
from serving.middleware import share_metrics_across_processes
from serving.security import KeyConfigError, KeyStore, add_key
from serving.tasks import ROLES

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
) -> None:
    """Serve predictions, explanations and pages (FastAPI + uvicorn); API docs at /docs.

    Models load from the MLflow registry by their `champion` alias; POST /v1/admin/reload swaps in new
    champions without downtime, and with --workers N the other workers follow within about a second.
    /metrics adds up every worker's counts. With no API key configured, a demo admin key is made in
    data_dir and shown once.
    """
    import uvicorn

    from serving.app import create_app

    settings, serving = get_settings(), ServingSettings()
    try:
        keys = KeyStore.from_config(serving.api_keys, serving.keys_path(settings))
    except KeyConfigError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
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
    console.print(
        f"caselens serving on http://{host}:{port} with {workers} worker process(es) "
        f"(docs: /docs, models from {settings.mlflow_uri})"
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # the app logs its own access lines, by route template
        "log_config": log_config(workers),
        "log_level": "info",
    }
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
        "formatters": {"plain": {"format": f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }


def api_key(
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(ROLES)}")],
    key_id: Annotated[str, typer.Option("--id", help="who the key is for; the audit log records this id")],
) -> None:
    """Make an API key for a role; the key is shown once and only its SHA-256 hash is stored."""
    settings, serving = get_settings(), ServingSettings()
    path = serving.keys_path(settings)
    if path is None:
        console.print(
            "[red]keys are given inline in CASELENS_SERVE_API_KEYS: add the new key's hash there[/red]"
        )
        raise typer.Exit(2)
    try:
        key = add_key(path, key_id, role)
    except KeyConfigError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    console.print(Panel(f"[bold]{key}[/bold]", title=f"API key {key_id} ({role}), shown once"))
    console.print(f"hash stored in {path}")
