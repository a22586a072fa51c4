"""The settings: a value given, else the environment's ``CASELENS_<NAME>``, else the default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from contract.settings import CASEMIX_TABLES, Settings


def test_the_environment_overrides_defaults_and_a_given_value_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CASELENS_DATA_DIR", "CASELENS_CASEMIX_TABLES", "CASELENS_PAYMENT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("caselens_dask_scheduler", "tcp://10.0.0.9:8786")  # names in any case
    monkeypatch.setenv("CASELENS_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("CASELENS_SERVE_MAX_BATCH", "5")  # another prefix's variable: not ours, ignored
    settings = Settings()
    assert settings.dask_scheduler == "tcp://10.0.0.9:8786"
    assert settings.data_dir == tmp_path / "from-env"
    assert settings.casemix_tables == CASEMIX_TABLES and settings.payment_config is None
    assert Settings(data_dir=tmp_path / "given").data_dir == tmp_path / "given"
    assert Settings(data_dir=tmp_path / "given").dask_scheduler == "tcp://10.0.0.9:8786"


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="data_folder"):
        Settings(data_folder="x")


def test_service_settings_read_their_own_prefix_and_validate_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.config import ServingSettings

    monkeypatch.setenv("CASELENS_SERVE_MAX_BATCH", "5")
    monkeypatch.setenv("caselens_serve_open_operations", "true")
    monkeypatch.setenv("CASELENS_MAX_BATCH", "7")  # the general prefix: not a service setting
    settings = ServingSettings()
    assert settings.max_batch == 5 and settings.open_operations is True
    assert ServingSettings(max_batch=3).max_batch == 3
    monkeypatch.setenv("CASELENS_SERVE_MAX_BATCH", "0")
    with pytest.raises(ValidationError, match="max_batch"):
        ServingSettings()
