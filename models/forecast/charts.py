"""Charts finance staff read: history, the point forecast, and the 80% and 95% bands."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure

CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei")
LABELS: dict[str, tuple[str, str]] = {
    "volume": ("病例数", "cases"),
    "payment": ("DRG支付(万元)", "payment (¥10k)"),
    "cost": ("费用(万元)", "cost (¥10k)"),
    "surplus": ("结余(万元)", "surplus (¥10k)"),
    "actual": ("实际", "actual"),
    "expected_loss": ("预期亏损(万元)", "expected loss (¥10k)"),
    "said": ("预测亏损概率", "forecast probability of a loss"),
    "lost": ("实际亏损比例", "share that lost"),
    "forecast": ("预测", "forecast"),
}
MAX_PANELS = 20


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """An installed font with Chinese glyphs, if any: without one, charts are labelled in English only."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


def label(name: str) -> str:
    zh, en = LABELS[name]
    return f"{zh} {en}" if cjk_font() else en


def plot_level(table: pd.DataFrame, path: Path, title: str, measures: tuple[str, ...] | None = None) -> Path:
    """A PNG of a level's table (see ``level_table``): a panel per key, or per measure for one key."""
    keys = list(dict.fromkeys(table["key"]))[:MAX_PANELS]
    single = len(keys) == 1
    measures = measures or (("volume", "payment", "cost", "surplus") if single else ("surplus",))
    panels = [(keys[0], m) for m in measures] if single else [(k, measures[0]) for k in keys]
    columns = 2 if len(panels) > 1 else 1
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(6.5 * columns, 2.8 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis, (key, measure) in zip(axes.ravel(), panels, strict=False):
        _panel(
            axis,
            table[table["key"] == key],
            measure,
            label(measure) if single else f"{key}: {label(measure)}",
        )
    for axis in axes.ravel()[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontfamily=cjk_font() or "DejaVu Sans")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _panel(axis: Axes, rows: pd.DataFrame, measure: str, title: str) -> None:
    scale = 1.0 if measure == "volume" else 1e4
    x = rows["quarter"].astype(str)
    actual = rows["kind"] == "actual"
    future = rows["kind"] == "forecast"
    axis.plot(
        x[actual], rows.loc[actual, measure] / scale, color="#1f3a5f", marker="o", ms=3, label=label("actual")
    )
    if future.any():
        last = rows[actual].tail(1)
        joined = pd.concat([last, rows[future]])
        axis.plot(
            joined["quarter"].astype(str),
            joined[measure] / scale,
            color="#c0392b",
            ls="--",
            label=label("forecast"),
        )
        f = rows[future]
        fx = f["quarter"].astype(str)
        axis.fill_between(
            fx,
            f[f"{measure}_lo95"] / scale,
            f[f"{measure}_hi95"] / scale,
            color="#c0392b",
            alpha=0.15,
            label="95%",
        )
        axis.fill_between(
            fx,
            f[f"{measure}_lo80"] / scale,
            f[f"{measure}_hi80"] / scale,
            color="#c0392b",
            alpha=0.3,
            label="80%",
        )
    if measure == "surplus":
        axis.axhline(0.0, color="#888", lw=0.8)
    axis.set_title(str(title), fontsize=9, fontfamily=cjk_font() or "DejaVu Sans")
    axis.tick_params(axis="x", labelrotation=60, labelsize=7)
    axis.tick_params(axis="y", labelsize=7)
    axis.legend(fontsize=6, loc="best")


def plot_loss_risk(
    risk: pd.DataFrame, reliability: pd.DataFrame | None, path: Path, title: str, top: int = 15
) -> Path:
    """A PNG of the cells with the largest expected loss (each bar labelled with its first quarter's
    probability of a loss) and, when the run has a backtest, the probabilities' reliability diagram."""
    figure = Figure(figsize=(12 if reliability is not None else 7, 0.35 * top + 1.5))
    axes = figure.subplots(1, 2 if reliability is not None else 1, squeeze=False).ravel()
    cells = risk[risk["h"] == risk["h"].min()].nsmallest(top, "rank").iloc[::-1]
    names = cells["department"].astype(str) + " · " + cells["drg"].astype(str)
    bars = axes[0].barh(names, cells["expected_loss_total"] / 1e4, color="#c0392b")
    for bar, p in zip(bars, cells["p_loss"], strict=True):
        axes[0].annotate(
            f"{p:.0%}", (bar.get_width(), bar.get_y() + bar.get_height() / 2), fontsize=7, va="center"
        )
    axes[0].set_xlabel(label("expected_loss"), fontsize=8, fontfamily=cjk_font() or "DejaVu Sans")
    axes[0].tick_params(labelsize=7)
    if reliability is not None:
        shown = reliability[reliability["n"] > 0]
        axis = axes[1]
        axis.plot([0, 1], [0, 1], color="#888", lw=0.8)
        axis.scatter(
            shown["mean_p"], shown["observed"], s=12 + 60 * shown["n"] / shown["n"].max(), color="#1f3a5f"
        )
        axis.set_xlabel(label("said"), fontsize=8, fontfamily=cjk_font() or "DejaVu Sans")
        axis.set_ylabel(label("lost"), fontsize=8, fontfamily=cjk_font() or "DejaVu Sans")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.tick_params(labelsize=7)
    figure.suptitle(title, fontfamily=cjk_font() or "DejaVu Sans")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
