"""Shared pieces of the benchmark reports: timing, peak memory, the machine line and writing the file."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SHARED_CORES = "The 2 cores are shared with other engineers' jobs, so"


def timed(step: Callable[[], T]) -> tuple[T, float]:
    """The step's result and its wall seconds."""
    started = time.perf_counter()
    return step(), time.perf_counter() - started


def timed_cpu(step: Callable[[], T]) -> tuple[T, tuple[float, float]]:
    """The step's result, wall seconds and CPU seconds of this process (the fair figure on shared cores)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = step()
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_line() -> str:
    """The report's ``Peak memory (max RSS): N MB.`` sentence."""
    return f"Peak memory (max RSS): {peak_memory_mb():,.0f} MB."


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def machine_line(extra: str = "", versions: str = "") -> str:
    """``Machine: <arch>, `nproc` = N, Python X.Y.Z, [versions, ]run <UTC time> UTC`` followed by ``extra``.

    ``extra`` starts with its own punctuation (``". The 2 cores ..."`` or ``", load average ..."``).
    """
    libraries = f"{versions}, " if versions else ""
    return (
        f"Machine: {platform.machine()}, `nproc` = {os.cpu_count()}, Python {platform.python_version()}, "
        f"{libraries}run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC{extra}"
    )


def write_results(lines: Iterable[str], output: Path) -> str:
    """Join the lines, write them to ``output`` (creating its folder), print and return the text."""
    text = "\n".join(lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(text)
    return text
