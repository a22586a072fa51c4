"""A chart per top cell: its gap per case by charge group and by case feature, side by side."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from models.drivers.story import driver_label
from models.forecast.charts import cjk_font

UP, DOWN = "#c0392b", "#1f6f43"


def plot_cell(
    groups: pd.Series,
    features: pd.Series | None,
    drivers: tuple[list[str], list[str]],
    title: str,
    path: Path,
) -> Path:
    """Horizontal bars of each driver's yuan per case (red: over the benchmark, green: under), written
    as a PNG; labels bilingual when a Chinese font is installed."""
    panels = [(groups, drivers[0], "charge groups 费用类别" if cjk_font() else "charge groups")]
    if features is not None:
        panels.append((features, drivers[1], "case features 病例特征" if cjk_font() else "case features"))
    figure = Figure(figsize=(6.0 * len(panels), 4.2))
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for axis, (row, names, heading) in zip(axes, panels, strict=True):
        _bars(axis, row, names, heading)
    figure.suptitle(title, fontfamily=cjk_font() or "DejaVu Sans", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def _bars(axis: Axes, row: pd.Series, names: list[str], heading: str) -> None:
    per_case = (row[names].astype(float) / float(row["cases"])).sort_values(key=abs)
    per_case = per_case[per_case.abs() >= 0.5]  # groups a cell does not use (or uses like its benchmark)
    labels = [_label(n) for n in per_case.index]
    axis.barh(labels, per_case.to_numpy(), color=[UP if v > 0 else DOWN for v in per_case])
    axis.axvline(0, color="#555", lw=0.8)
    axis.set_title(heading, fontfamily=cjk_font() or "DejaVu Sans", fontsize=10)
    axis.set_xlabel("yuan per case vs benchmark")
    for tick in axis.get_yticklabels():
        tick.set_fontfamily(cjk_font() or "DejaVu Sans")
        tick.set_fontsize(8)


def _label(driver: str) -> str:
    english = driver_label(driver, "en")
    return f"{driver_label(driver, 'zh')} {english}" if cjk_font() else english
