"""Every command ends a user error the same way: exit 2, one ``error:`` line, no traceback.

One command per area whose command used to list its own user errors (casemix, group, features,
forecast, queue, train, ingest, api-key); a fault still surfaces as the exception it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["casemix", "report", "--input", "{tmp}/absent.csv"], "absent.csv: no such file"),
        (["group", "{tmp}/absent.csv", "-o", "{tmp}/out.csv"], "absent.csv: no such file or store folder"),
        (["features", "build", "--store", "{tmp}/none", "-o", "{tmp}/f.parquet"], "no case store at"),
        (["features", "catalog", "--stage", "bogus"], "stage must be 'admission' or 'discharge'"),
        (["forecast", "surplus", "--store", "{tmp}/none", "--no-track"], "no case store at"),
        (["queue", "coding", "--period", "2025Q4"], "no case store at"),
        (["train", "los"], "unknown task 'los'"),
        (["train", "cost", "--config", "{tmp}/absent.toml"], "training config"),
        (["ingest", "{tmp}/absent.csv", "--store", "{tmp}/store"], "absent.csv"),
        (["api-key", "--role", "boss", "--id", "bob"], "roles are"),
        (["api-key"], "give --role and --id (new key), --revoke ID or --list"),
    ],
)
def test_a_user_error_exits_2_with_one_clear_message(
    args: list[str], message: str, settings, tmp_path: Path
) -> None:
    code, output = run(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code == 2, output
    assert "error: " in output and message in output and "Traceback" not in output


def test_the_message_is_printed_as_written_not_read_as_markup(settings, tmp_path: Path) -> None:
    code, output = run("group", str(tmp_path / "cases[red].csv"), "-o", str(tmp_path / "out.csv"))
    assert code == 2 and "cases[red].csv: no such file" in output


def test_a_fault_is_not_swallowed_as_a_user_error(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from features.pipeline import CaseFeatures

    def broken(self: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(CaseFeatures, "catalog", property(broken))
    result = CliRunner().invoke(app, ["features", "catalog"])
    assert result.exit_code == 1 and isinstance(result.exception, RuntimeError)
    assert "error:" not in result.output
