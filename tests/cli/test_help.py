"""``caselens ... --help`` reads as paragraphs: no sentence of any command's help is broken across lines.

Docstrings and help strings are wrapped in the source; the help must join those lines again and leave
line breaks to the terminal. On a terminal wide enough for any paragraph, every paragraph of prose is
then one line and every command or option of a panel one row, so a second line is a hard break.
"""

from __future__ import annotations

import re

import pytest
import typer
from typer import rich_utils
from typer.testing import CliRunner

from cli.app import app

WIDE = 3000  # wider than any paragraph: a wrap here can only come from the text itself
PANEL_ROW = re.compile(r"^│ {1,5}\S")  # a panel row starts with its name (after the `*` of required ones)
LIST_ITEM = re.compile(r"^ *([•*-]|\d+\.) ")
METADATA = re.compile(r"^\[(default|required|env var)[^\]]*\]$")  # typer's own notes, one per row


def _command_paths(command: typer.core.TyperCommand, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*path, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def _help(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(rich_utils, "MAX_WIDTH", WIDE)
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def broken_lines(output: str) -> list[str]:
    """Lines that continue the previous line's sentence: a paragraph or a panel entry on two lines."""
    broken = []
    previous = ""
    for line in output.splitlines():
        text = line.rstrip(" │")
        if text.startswith(("╭", "╰")):
            pass
        elif text.startswith("│"):  # inside a panel: a row without a name continues the row above
            rest = text.strip("│ ")
            if rest and not PANEL_ROW.match(text) and not METADATA.match(rest):
                broken.append(rest)
        elif text.strip() and previous.strip() and not LIST_ITEM.match(text):
            broken.append(text.strip())  # a second line of the same paragraph
        previous = "" if text.startswith(("╭", "╰", "│")) else text
    return broken


def test_every_command_is_covered() -> None:
    assert {("train",), ("casemix", "report"), ("queue", "coding"), ("forecast", "surplus")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("caselens", *p)))
def test_help_paragraphs_are_not_broken_mid_sentence(path: tuple[str, ...], monkeypatch) -> None:
    output = _help(path, monkeypatch)
    assert "Usage: caselens" in output
    assert broken_lines(output) == [], output


def test_a_hard_wrapped_help_is_caught() -> None:
    """The check itself: the old rendering of a hard-wrapped docstring fails it, a joined one passes."""
    old = (
        " Train TASK on the case store.\n\n"
        " Cases are split by discharge quarter: the latest is the test set, the one before calibrates and\n"
        " tunes.\n"
    )
    assert broken_lines(old) == ["tunes."]
    panel = (
        "│ demo-data  Generate a hospital: cases, plus oracle.parquet (true probabilities, expected │\n"
        "│            cost, true codes) kept apart. │\n"
    )
    assert broken_lines(panel) == ["cost, true codes) kept apart."]
    joined = " Train TASK.\n\n Cases are split by discharge quarter; the latest is the test set.\n"
    assert broken_lines(joined) == []
