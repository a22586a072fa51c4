"""CI must not pass without the browser tests: with CASELENS_REQUIRE_BROWSER set, a missing Chromium
fails the run instead of skipping it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def browser_tests_without_chromium(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Collect and run tests/serving/test_browser.py with a PATH on which no chromium can be found
    (without the conftest: the served world is not needed to skip or to fail)."""
    inherited = {k: v for k, v in os.environ.items() if k != "CASELENS_REQUIRE_BROWSER"}
    environment = {**inherited, "PATH": str(tmp_path), **env}
    command = [sys.executable, "-m", "pytest", "tests/serving/test_browser.py", "--noconftest"]
    command += ["-p", "no:randomly", "-p", "no:cacheprovider", "-n", "0", "-q", "-rs"]
    return subprocess.run(command, env=environment, capture_output=True, text=True, cwd=Path.cwd())


def test_a_missing_browser_fails_the_run_when_it_is_required(tmp_path):
    required = browser_tests_without_chromium(tmp_path, CASELENS_REQUIRE_BROWSER="1")
    assert required.returncode != 0
    assert "CASELENS_REQUIRE_BROWSER is set but chromium/chromedriver not installed" in required.stdout
    optional = browser_tests_without_chromium(tmp_path)
    assert optional.returncode == 0 and "skipped" in optional.stdout, optional.stdout
