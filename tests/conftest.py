"""Fixtures shared by every test area."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contract import settings as settings_module

if TYPE_CHECKING:
    from pipelines.demo import DemoHospital

TEST_DATA = Path(__file__).parent / "data"

# Rich wraps command output at the terminal width, read when a console is made: a wide fixed width
# keeps assertions on printed text independent of the checkout's path length and of the terminal.
os.environ["COLUMNS"] = "240"


@pytest.fixture(scope="session", autouse=True)
def _data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A test without the ``settings`` fixture writes to a temporary data folder too (the casemix
    tables cache, made by any grouping), never to the checkout's ``caselens-data``."""
    patch = pytest.MonkeyPatch()
    patch.setenv("CASELENS_DATA_DIR", str(tmp_path_factory.mktemp("caselens-data")))
    settings_module.get_settings.cache_clear()
    yield
    patch.undo()
    settings_module.get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> settings_module.Settings:
    """Settings pointing every written file into a fresh temporary folder."""
    data_dir = tmp_path / "caselens-data"
    monkeypatch.setenv("CASELENS_DATA_DIR", str(data_dir))
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; setting it here makes monkeypatch remove it
    # afterwards, so no test's store leaks into the next test's settings.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir.resolve() / 'mlflow.db'}")
    # Likewise for a registry some earlier test pointed elsewhere: the registry follows tracking again.
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_registry_uri("")
    settings_module.get_settings.cache_clear()
    yield settings_module.get_settings()
    settings_module.get_settings.cache_clear()


@pytest.fixture(scope="session")
def demo_hospital() -> DemoHospital:
    """A small synthetic hospital (4,000 cases, 3 years from 2023-01-01, seed 7), generated once per session.

    ``.cases`` are canonical cases (with ``los_days``), ``.oracle`` the truths; treat both as read-only.
    """
    from pipelines.demo import generate_demo  # imported here: only sessions that use it pay for it

    return generate_demo(4000, 3, 7)
