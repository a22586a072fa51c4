"""Service settings: worker processes, limits, key file, audit log and the files workers share.

Like :mod:`contract.settings`, every value has a default and an environment override
(``CASELENS_SERVE_<NAME>``); paths default to files under the shared ``data_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, field_validator

from contract.settings import EnvironmentSettings, Settings
from serving.roles import TASK_ROLES

if TYPE_CHECKING:
    from serving.tasks import ServedTask


class ServingSettings(EnvironmentSettings):
    env_prefix: ClassVar[str] = "CASELENS_SERVE_"

    api_keys: str | None = Field(
        default=None,
        description="API keys as JSON ({key_id: {sha256, role}}) or a path to a JSON/TOML file of them; "
        "None reads <data_dir>/api-keys.json",
    )
    audit_log: Path | None = Field(
        default=None, description="audit JSON-lines file; None: <data_dir>/audit.jsonl"
    )
    tasks: str | None = Field(
        default=None,
        description="comma-separated tasks to serve, e.g. 'cost,margin'; None: every task. /readyz answers "
        "503 until each has a champion loaded",
    )
    max_batch: int = Field(default=10_000, ge=1, description="most cases in one batch request (413 above)")
    max_body_mb: float = Field(default=32.0, gt=0, description="largest request body in MB (413 above)")
    micro_batch: int = Field(
        default=64, ge=1, description="most one-case requests of one model scored together (1: no batching)"
    )
    explain_threads: int = Field(
        default=2, ge=1, description="threads of the SHAP pass for batch requests of 1,000 cases or more"
    )
    top_contributions: int = Field(
        default=8, ge=1, le=50, description="SHAP contributions listed by default (a request may ask 50)"
    )
    history_lookups_per_minute: int = Field(
        default=1000,
        ge=1,
        description="patients whose stored history one key may have read per minute (sliding, per worker); "
        "a request that would exceed it is refused with 429",
    )
    open_operations: bool = Field(
        default=False,
        description="serve /metrics and the details of /readyz without a key (e.g. to a Prometheus on a "
        "private network); otherwise they need an admin key",
    )
    queue_period: str | None = Field(
        default=None, description="period of the coding-review queue, e.g. 2025Q4; None: the latest quarter"
    )
    cookie_secure: bool = Field(
        default=False,
        description="send the session cookie over HTTPS only (set by `caselens serve --ssl-certfile`)",
    )
    keys_check_seconds: float = Field(
        default=1.0, ge=0, description="how often a worker checks the key file for added or revoked keys"
    )
    session_hours: float = Field(default=8.0, gt=0, description="a login session ends this long after login")
    session_idle_minutes: float = Field(
        default=30.0, gt=0, description="a login session ends after this long without a request"
    )
    login_per_minute: int = Field(
        default=10, ge=1, description="most login attempts per client address and minute (429 above)"
    )
    login_failures: int = Field(
        default=5, ge=1, description="failed logins of a client address that lock it out (429)"
    )
    login_lockout_minutes: float = Field(
        default=15.0, gt=0, description="how long failed logins count towards the lockout"
    )
    docs: bool = Field(
        default=True, description="serve /docs, /redoc and /openapi.json (assets from the package, no CDN)"
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="worker processes of `caselens serve`; each has its own models and case store in memory",
    )
    reload_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        description="how often a worker checks whether another one reloaded the models (0: never follow)",
    )

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: str | None) -> str | None:
        unknown = [n for n in _names(value) if n not in TASK_ROLES]
        if unknown:
            raise ValueError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TASK_ROLES)}")
        return value

    def served_tasks(self) -> dict[str, ServedTask]:
        """The tasks this service serves (and /readyz waits for)."""
        from serving.tasks import SERVED_TASKS  # the task registry: loaded by the service, not the CLI

        names = _names(self.tasks)
        return {n: t for n, t in SERVED_TASKS.items() if not names or n in names}

    def keys_path(self, settings: Settings) -> Path | None:
        """The key file: the configured one, else <data_dir>/api-keys.json; None when keys are inline JSON."""
        if self.api_keys and self.api_keys.lstrip().startswith("{"):
            return None
        return Path(self.api_keys) if self.api_keys else settings.data_dir / "api-keys.json"

    def audit_path(self, settings: Settings) -> Path:
        return self.audit_log or settings.data_dir / "audit.jsonl"

    @staticmethod
    def sessions_path(settings: Settings) -> Path:
        """The login sessions and login throttle every worker shares."""
        return settings.data_dir / "serve" / "sessions.sqlite"

    @staticmethod
    def reload_path(settings: Settings) -> Path:
        """The reload generation file every worker serving this data_dir watches."""
        return settings.data_dir / "serve" / "reload-generation"

    @staticmethod
    def metrics_dir(settings: Settings) -> Path:
        """Where the workers of a multi-process service keep their Prometheus values (emptied at start)."""
        return settings.data_dir / "serve" / "prometheus"


def _names(tasks: str | None) -> list[str]:
    return [name.strip() for name in (tasks or "").split(",") if name.strip()]
