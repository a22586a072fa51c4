"""Where caselens keeps its data, tracking store and configuration.

Everything has an embedded default so the demo runs with no set-up; every value can be overridden by
an environment variable (``CASELENS_<NAME>``, any case), and the MLflow tracking store by the standard
``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CASEMIX_TABLES = PROJECT_ROOT / "casemix" / "tables" / "chs-drg-1.1"


class EnvironmentSettings(BaseModel):
    """Settings whose every field is a value given, else ``<env_prefix><NAME>`` (any case) from the
    environment, else its default.

    A pydantic model that reads its variables itself rather than pydantic-settings' ``BaseSettings``:
    every command reads settings before its work, and that package's import (asyncio, argparse, dotenv
    and the other sources it offers) cost 0.03 s of CPU for the one source used here."""

    model_config = ConfigDict(extra="forbid")
    env_prefix: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, given: Any) -> Any:
        """The environment's values under the ones given."""
        if not isinstance(given, dict):
            return given
        names = {f"{cls.env_prefix}{name}".lower(): name for name in cls.model_fields}
        found = {names[key.lower()]: value for key, value in os.environ.items() if key.lower() in names}
        return {**found, **given}


class Settings(EnvironmentSettings):
    """Where caselens keeps its data, its tables and rules, its MLflow store and its Dask cluster."""

    env_prefix: ClassVar[str] = "CASELENS_"

    data_dir: Path = Field(default=Path("caselens-data"), description="root of every file caselens writes")
    casemix_tables: Path = Field(
        default=CASEMIX_TABLES, description="grouping tables (a city's version is another folder)"
    )
    payment_config: Path | None = Field(
        default=None, description="payment rules TOML; None uses the embedded default"
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; MLFLOW_TRACKING_URI wins"
    )
    dask_scheduler: str | None = Field(
        default=None,
        description="Dask scheduler address (tcp://HOST:PORT): batch steps run on that cluster; "
        "None runs them in this process on pandas",
    )

    @property
    def store_dir(self) -> Path:
        """The canonical case store (Parquet dataset)."""
        return self.data_dir / "store"

    @property
    def mlflow_uri(self) -> str:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri
        if uri:
            return uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def mlflow_artifacts(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


# ``scheme://user:password@host``: the password; ``?password=…`` and the like in a query string.
_USERINFO_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):(?P<secret>[^@\s/]*)@")
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&;](?:password|passwd|pwd|secret|token|access_token|api_key|apikey|key)=)(?P<secret>[^&;#\s]*)",
    re.IGNORECASE,
)
MASK = "***"


def mask_credentials(text: str) -> str:
    """``text`` with the passwords and tokens of any URIs in it replaced by ***.

    The one helper every message that may hold a URI goes through (the MLflow store, a database, a
    proxy): start-up lines, the logs (``MaskingFormatter``) and model-loading errors shown on /readyz.
    """
    text = _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: m["head"] + MASK, text)


class MaskingFormatter(logging.Formatter):
    """A log formatter that masks credentials in the whole line, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_credentials(super().format(record))


def private_data_dir(data_dir: Path) -> Path:
    """Make every file and folder this process creates from now on private (0600, 0700), and close
    ``data_dir`` (0700) if an earlier, laxer run left it open.

    The data folder holds patient cases, the audit log, key hashes, sessions and the MLflow store;
    other users of the machine may not read any of it. A umask of 077 covers what the libraries
    write too (MLflow's SQLite store and artifacts, Parquet parts, Prometheus files). The folder is
    not made here: ``caselens --help`` must not leave one behind.
    """
    os.umask(0o077)
    if data_dir.is_dir() and data_dir.stat().st_uid == os.getuid():
        data_dir.chmod(0o700)
    return data_dir
