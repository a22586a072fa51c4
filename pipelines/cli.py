"""The ``caselens`` command line: thin Typer wrappers over the pipelines, one line per command here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="caselens",
    help="DRG money and risk before it arrives: ingest case histories, group them, train and serve models.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _main() -> None:
    """caselens command line."""


if __name__ == "__main__":
    app()
