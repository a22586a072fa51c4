"""The ``caselens`` program's start-up: imports without the cycle collector, the command with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PROBE = """
import gc

AT_IMPORT = gc.isenabled()


def probe() -> None:
    print(AT_IMPORT, gc.isenabled(), gc.get_freeze_count() > 0)
"""
RUN = """
import sys
import cli.app

cli.app.COMMANDS["probe"] = ("caselens_probe", "probe")
sys.argv = ["caselens", "probe"]
cli.app.main()
"""


def test_the_command_runs_with_the_collector_its_import_without(tmp_path: Path) -> None:
    """A command that ran without the collector (a server, a training) would hold every cycle it made."""
    (tmp_path / "caselens_probe.py").write_text(PROBE)
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "True"]


def test_the_installed_program_starts_through_main() -> None:
    """``pyproject.toml``'s script is :func:`cli.app.main`, not the Typer app (it would skip the above)."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["caselens"] == "cli.app:main"
