"""A SHAP waterfall chart as inline SVG: no image files, no JavaScript, readable without a build step.

Steps walk from the base value to the prediction on the prediction's own scale (yuan or probability),
adding the listed contributions largest first and the remainder last, so the bars end exactly at
the model's output however the raw scale is transformed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from markupsafe import Markup, escape

from serving.explain import Link

ROW, LABEL_WIDTH, BAR_WIDTH, AMOUNT_WIDTH = 24, 300, 320, 110
UP, DOWN, ENDS = "#d9534f", "#3a7bd5", "#888888"


def output_scale(raw: float, prediction: float, link: Link) -> Any:
    """The map from a raw-scale value to the prediction's scale, anchored so raw ↦ prediction."""
    if link == "log":
        return lambda x: prediction * float(np.exp(x - raw))
    if link == "logit":
        return lambda x: float(1.0 / (1.0 + np.exp(-x)))
    return lambda x: float(x)


def steps(
    explanation: dict[str, Any], prediction: float, link: Link, other_label: str
) -> list[tuple[str, float, float]]:
    """(label, start, end) for each contribution and the remainder, on the prediction's scale."""
    f = output_scale(explanation["raw_output"], prediction, link)
    position, out = explanation["base_value"], []
    parts = [(f"{c['name']} = {c['value']}", c["contribution"]) for c in explanation["contributions"]]
    if abs(explanation["rest"]) > 0:
        parts.append((other_label, explanation["rest"]))
    for label, contribution in parts:
        out.append((label, f(position), f(position + contribution)))
        position += contribution
    return out


def waterfall_svg(
    explanation: dict[str, Any], prediction: float, link: Link, unit: str, language: str
) -> Markup:
    zh = language == "zh"
    bars = steps(explanation, prediction, link, "其他特征" if zh else "other features")
    base = output_scale(explanation["raw_output"], prediction, link)(explanation["base_value"])
    end = bars[-1][2] if bars else base
    points = [base, end, *(v for _, s, e in bars for v in (s, e))]
    low, high = min(points), max(points)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / span * BAR_WIDTH

    def amount(value: float, signed: bool = False) -> str:
        sign = ("+" if value >= 0 else "−") if signed else ""
        return f"{sign}¥{abs(value):,.0f}" if unit == "yuan" else f"{sign}{abs(value) * 100:.1f}%"

    rows = [("基线（平均）" if zh else "base value (average case)", low, base, ENDS, amount(base))]
    rows += [(label, s, e, UP if e >= s else DOWN, amount(e - s, signed=True)) for label, s, e in bars]
    rows.append(("预测" if zh else "prediction", low, end, ENDS, amount(end)))
    height = ROW * len(rows) + 8
    width = LABEL_WIDTH + BAR_WIDTH + AMOUNT_WIDTH
    parts = [
        f'<svg class="waterfall" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{'SHAP 瀑布图' if zh else 'SHAP waterfall'}</title>",
    ]
    for i, (label, start, stop, colour, text) in enumerate(rows):
        y = 4 + i * ROW
        left, right = sorted((x(start), x(stop)))
        bar = max(right - left, 1.0)
        parts.append(
            f'<g class="step"><text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{left:.1f}" y="{y + 3}" width="{bar:.1f}" height="{ROW - 8}" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 6}" y="{y + 15}">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
