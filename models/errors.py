"""The one error a user's training data can raise, so the CLI can tell it from a bug."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """The training data cannot train this task; the message names the problem and where it is."""
