"""The error a user's training data raises: an ``InputError`` of the one hierarchy (contract.errors)."""

from __future__ import annotations

from contract.errors import InputError


class TrainingInputError(InputError):
    """The training data cannot train this task; the message names the problem and where it is."""
