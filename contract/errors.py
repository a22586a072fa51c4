"""One error hierarchy, sorted by what the user should do about the error.

Every layer raises these (or a named subclass of them), so the command line maps them to an exit code
once (``EXIT_CODES``, used by ``cli.failures``) and the service to an HTTP status once
(``serving.errors``). An exception outside the hierarchy is a fault of caselens: a traceback on the
command line, a bare 500 from the service. This module imports nothing from the project, so every
layer may import it.

Each subclass also keeps the builtin base its former classes had (``ValueError``, ``LookupError``,
``RuntimeError``), so ``except ValueError`` written before the hierarchy still catches them.
"""

from __future__ import annotations

import re

from pydantic import ValidationError


class CaselensError(Exception):
    """An error the user can fix; the message says what is wrong and where (file, row, field)."""


class InputError(CaselensError, ValueError):
    """Bad data or a bad file from the user: fix the file; the message names the row and field."""


class ConfigError(CaselensError, ValueError):
    """Bad settings, payment rules, grouping tables, keys or declarations: fix the named file or entry."""


class NotFound(CaselensError, LookupError):
    """A store, model, champion or task that should exist does not: the message says how to make it."""


class StateError(CaselensError, RuntimeError):
    """It exists but cannot answer yet (a model unloaded, no queue ranked): run the step named or retry."""


EXIT_CODES: dict[type[BaseException], int] = {
    InputError: 2,
    ConfigError: 2,
    NotFound: 2,
    StateError: 2,
    CaselensError: 2,
    # pydantic's check of a user's rules, mapping or settings: the message names the model and field.
    ValidationError: 2,
}
"""Exit code per user error, first match wins; an exception matching none is a fault (traceback).

A bare ``ValueError`` or ``OSError`` is a fault too: a check meant for users raises the hierarchy."""


def exit_code(error: BaseException) -> int | None:
    """The exit code of a user error, or None for a fault, which keeps its traceback."""
    return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), None)


def user_message(error: BaseException) -> str:
    """The one-line(ish) message a user error is shown with: its text, and what was invalid for pydantic."""
    if isinstance(error, ValidationError):
        what = re.sub(r"(?<!^)(?=[A-Z])", " ", error.title).lower()  # PaymentRules -> payment rules
        return f"invalid {what}: {error}"
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
