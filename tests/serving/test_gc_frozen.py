"""The service keeps the garbage collector off what it loaded: frozen after start-up and after every
reload (``serving.reload.settle``). A full collection walks every tracked object; over a loaded
server's models, store and indexes that is a pause of tens of ms in whichever request triggers it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from contract.settings import Settings
from serving.app import create_app
from serving.config import ServingSettings
from serving.registry import ModelRegistry
from serving.reload import reload_models


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Start from nothing frozen and leave nothing frozen (the rest of the test session collects as usual)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_app_freezes_what_it_loaded_at_start_up_and_after_each_reload(tmp_path, unfrozen) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(
        settings,
        ServingSettings(api_keys="{}", reload_poll_seconds=0),
        registry=ModelRegistry(settings.mlflow_uri, {}),  # nothing to load, no store: the freeze is the point
    )
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 0, "start-up left the loaded objects to the collector"
        gc.unfreeze()
        reload_models(app.state.service)
        assert gc.get_freeze_count() > 0, "a reload left the new objects to the collector"
