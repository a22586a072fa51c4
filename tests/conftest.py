"""Fixtures shared by every test area."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import settings as settings_module

TEST_DATA = Path(__file__).parent / "data"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> settings_module.Settings:
    """Settings pointing every written file into a fresh temporary folder."""
    monkeypatch.setenv("CASELENS_DATA_DIR", str(tmp_path / "caselens-data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings_module.get_settings.cache_clear()
    yield settings_module.get_settings()
    settings_module.get_settings.cache_clear()
