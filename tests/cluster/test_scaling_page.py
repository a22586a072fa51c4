"""The scaling page from measured figures: runs of two store write paths, a skipped pandas size and
the part-size sweep, each shown for what it is."""

from __future__ import annotations

from typing import Any

from experiments.benchmarks.scaling import STAGES, STREAMED, commands, report


def _run(cases: int, peak: int, pandas: bool, streamed: bool, rows: int = 131_072) -> dict[str, Any]:
    dask = {
        s: {"seconds": cases / 1e5, "client": 900, "worker 1": peak, "worker 2": peak - 10} for s in STAGES
    }
    row: dict[str, Any] = {"cases": cases, "dask": {**dask, "partitions": cases // rows}}
    row["pandas"] = {s: {"seconds": cases / 5e4, "process": cases // 300} for s in STAGES} if pandas else None
    if streamed:
        row.update(memory_limit="6GiB", row_group_rows=rows, store_write=STREAMED)
    return row


def test_page_keeps_write_paths_apart_and_says_why_pandas_is_missing() -> None:
    rows = [_run(1_000_000, 700, True, False), _run(3_000_000, 1_600, True, False)]
    rows += [_run(3_000_000, 560, False, True), _run(10_000_000, 580, False, True)]
    parts = [_run(1_000_000, peak, False, True, rows=r) for r, peak in ((32_768, 420), (131_072, 540))]
    page = "\n".join(report(rows, 2, "2GiB", commands(rows, "2GiB"), parts))
    assert page.count("ingest †") == 2  # the runs that rewrote whole years are marked
    assert "--cases 10000000 --memory-limit 6GiB --no-pandas-above 3000000" in page
    assert "not run at 10,000,000 stays" in page and "not run at 3,000,000" not in page
    assert "| 32,768 | 30 | 420 |" in page and "| 131,072 | 7 | 540 |" in page
    # the same part size from the sweep's 1M run to the 10M run, not from the marked runs
    assert "540 → 580 (k 0.03)" in page
    assert "Dask from 1,000,000 to 10,000,000" in page
    assert page.count("| 50,000,000 |") == 3
