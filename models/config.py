"""Training configuration: hyperparameters and split settings from a TOML file (``models/train.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from contract.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).parent / "train.toml"


def load_config(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed config; ``None`` reads the project's default. Bad TOML names the file."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"training config {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def task_params(config: dict[str, Any], task: str) -> dict[str, Any]:
    """The ``[tasks.<task>]`` table; a task with no table cannot be trained from this config."""
    try:
        return config["tasks"][task]
    except KeyError:
        raise ConfigError(f"the training config has no [tasks.{task}] table") from None
