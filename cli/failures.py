"""How every command ends on a user error: one red message and ``EXIT_CODES``' code, never a traceback.

The mapping is installed once, on the ``caselens`` group (``CaselensGroup``), so commands raise and do
not catch; a fault (an exception outside ``contract.errors.EXIT_CODES``) keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from contract.errors import exit_code, user_message

console = Console()


def show(error: BaseException, prefix: str = "") -> None:
    """Print a user error as ``error: <prefix><message>``; the message is printed as is, not as markup."""
    console.print("error:", style="bold red", end=" ")
    console.print(f"{prefix}{user_message(error)}", markup=False, highlight=False)


class CaselensGroup(TyperGroup):
    """The top-level group: a user error raised by any command (sub-commands included) exits here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            code = exit_code(error)
            if code is None:
                raise
            show(error)
            raise typer.Exit(code) from None
