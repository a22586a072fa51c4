"""The payment benchmark runs end to end at toy size."""

from __future__ import annotations

from pathlib import Path

from experiments.benchmarks.casemix_payment import grouped_cases, run


def test_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "casemix_payment.md"
    run(cases=2000, demo_cases=1500, output=out)
    text = out.read_text(encoding="utf-8")
    assert "`price_cases`" in text and "Peak memory" in text and "--cases 2000 --demo-cases 1500" in text
    assert "| insurer table (the city's, regional) |" in text and "paid twice" in text


def test_synthetic_cases_are_grouped_frames() -> None:
    frame = grouped_cases(500)
    assert len(frame) == 500 and set(frame["status"]) <= {"grouped", "ungroupable", "invalid"}
    assert (frame.loc[frame["status"] != "grouped", "drg"] == "0000").all()


def test_speed_benchmark_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "pricing_speed.md"
    run(cases=3000, demo_cases=0, output=out, speed_only=True)
    text = out.read_text(encoding="utf-8")
    assert "--cases 3000 --speed-only" in text and "load average" in text
    for what in ("`price_cases`, 1 grouped stay", "`Pregrouper.pregroup`", "`price_cases`, 3,000 stays"):
        assert f"| {what}" in text
    assert "payment.point-city.toml" in text and "no copy-on-write" in text
