"""Where caselens keeps its data, tracking store and configuration.

Everything has an embedded default so the demo runs with no set-up; every value can be overridden by
an environment variable (``CASELENS_<NAME>``), and the MLflow tracking store by the standard
``MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CASEMIX_TABLES = PROJECT_ROOT / "features" / "casemix" / "tables" / "chs-drg-1.1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASELENS_")

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
