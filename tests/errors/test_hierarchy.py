"""The one error hierarchy: every former error class has its place, and one table maps it to an exit code."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casemix.payment import PaymentRules
from casemix.tables import TablesError
from contract.errors import (
    CaselensError,
    ConfigError,
    InputError,
    NotFound,
    StateError,
    exit_code,
    user_message,
)
from features.pipeline import FeatureInputError
from features.view import FeatureStageError
from models.errors import TrainingInputError
from pipelines import readers
from pipelines.store import StoreError
from serving.cases import CasesUnavailable
from serving.predictions import ScoringError
from serving.queue import QueueUnavailable
from serving.registry import ModelNotServable
from serving.security import KeyConfigError
from serving.singles import ModelUnavailable


@pytest.mark.parametrize(
    ("error", "kind", "builtin"),
    [
        (TrainingInputError, InputError, ValueError),
        (FeatureInputError, InputError, ValueError),
        (ScoringError, InputError, ValueError),
        (TablesError, ConfigError, ValueError),
        (FeatureStageError, ConfigError, ValueError),
        (KeyConfigError, ConfigError, ValueError),
        (StoreError, NotFound, RuntimeError),
        (QueueUnavailable, StateError, RuntimeError),
        (CasesUnavailable, StateError, RuntimeError),
        (ModelUnavailable, StateError, RuntimeError),
        (ModelNotServable, StateError, RuntimeError),
    ],
)
def test_each_former_error_class_is_a_kind_of_the_hierarchy_and_keeps_its_builtin_base(
    error: type[Exception], kind: type[CaselensError], builtin: type[Exception]
) -> None:
    assert issubclass(error, kind) and issubclass(error, builtin)


def test_the_readers_input_error_is_the_hierarchys_not_a_second_class() -> None:
    assert readers.InputError is InputError


@pytest.mark.parametrize(
    "error",
    [
        InputError("row 3, field age_years: not a number"),
        ConfigError("rules.toml: base_rate must be positive"),
        NotFound("no case store at /x: run `caselens ingest FILE` first"),
        StateError("no queue yet"),
        CaselensError("anything the user can fix"),
    ],
)
def test_user_errors_exit_2(error: Exception) -> None:
    assert exit_code(error) == 2


def test_pydantics_check_of_a_users_file_exits_2() -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentRules.model_validate({"name": "x", "base_rate": "not a number"})
    assert exit_code(caught.value) == 2


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("bug"),
        KeyError("column"),
        TypeError("bug"),
        ZeroDivisionError(),
        # Bare builtins are no longer user errors: a check meant for users raises the hierarchy.
        ValueError("an internal invariant"),
        FileNotFoundError("a file caselens itself should have written"),
    ],
)
def test_other_exceptions_are_faults_with_no_exit_code(error: Exception) -> None:
    assert exit_code(error) is None


def test_a_pydantic_error_is_shown_as_invalid_and_names_the_model_and_field() -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentRules.model_validate({"name": "x", "base_rate": "not a number"})
    message = user_message(caught.value)
    assert message.startswith("invalid payment rules: ") and "base_rate" in message


def test_a_key_error_message_is_shown_without_its_quotes() -> None:
    assert user_message(KeyError("no column age")) == "no column age"
