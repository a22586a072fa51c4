"""The ingest benchmark runs end to end at toy size, and loses no row."""

from __future__ import annotations

import re
from pathlib import Path

from experiments.benchmarks.ingest import run


def test_benchmark_runs_at_toy_size(tmp_path: Path) -> None:
    results = tmp_path / "ingest.md"
    report = run(2_000, tmp_path, results)
    assert results.read_text(encoding="utf-8") == report
    assert "nproc" in report
    rows = {
        (kind, when): [int(v.replace(",", "")) for v in counts.split(" | ")]
        for kind, when, counts in re.findall(
            r"^\| (csv|parquet) \| (first|re-ingest) \|(?: [^|]+ \|){9} ([\d, |]+) \|$", report, re.MULTILINE
        )
    }
    assert len(rows) == 4
    for (_, when), (accepted, rejected, _, new, updated) in rows.items():
        # every case is stored or rejected (about 1% are made invalid), and a re-ingest only updates
        assert accepted + rejected == 2_000 and 0 < rejected < 100
        assert (new, updated) == ((accepted, 0) if when == "first" else (0, accepted))
