"""The ``caselens`` command line: thin Typer wrappers over the pipelines, one line per command here."""

from __future__ import annotations

import typer

from cli import casemix as casemix_cmd
from cli import demo as demo_cmd
from cli import demo_data as demo_data_cmd
from cli import features as features_cmd
from cli import forecast as forecast_cmd
from cli import group as group_cmd
from cli import ingest as ingest_cmd
from cli import queue as queue_cmd
from cli import score as score_cmd
from cli import serve as serve_cmd
from cli import train as train_cmd
from cli import watch as watch_cmd
from cli.failures import CaselensGroup
from contract.settings import get_settings, private_data_dir

app = typer.Typer(
    name="caselens",
    cls=CaselensGroup,  # user errors end every command with one message and exit 2
    help="DRG money and risk before it arrives: ingest case histories, group them, train and serve models.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # wrapped docstring lines join into paragraphs ("rich" keeps the breaks)
    add_completion=False,
)


@app.callback()
def _main() -> None:
    """caselens command line."""
    private_data_dir(get_settings().data_dir)  # 0700, and every file the command writes 0600


app.command("demo")(demo_cmd.demo)
app.add_typer(casemix_cmd.app, name="casemix")
app.command("demo-data")(demo_data_cmd.demo_data)
app.command("ingest")(ingest_cmd.ingest)
app.command("group")(group_cmd.group)
app.command("train")(train_cmd.train)
app.command("watch")(watch_cmd.watch)
app.command("score")(score_cmd.score)
app.add_typer(queue_cmd.app, name="queue")
app.add_typer(forecast_cmd.app, name="forecast")
app.add_typer(features_cmd.app, name="features")
app.command("serve")(serve_cmd.serve)
app.command("api-key")(serve_cmd.api_key)


if __name__ == "__main__":
    app()
