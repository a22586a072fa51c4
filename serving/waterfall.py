"""A SHAP waterfall chart as inline SVG: no image files, no JavaScript, readable without a build step.

Steps walk from the base value to the prediction on the prediction's own scale (yuan or probability),
adding the listed contributions' effects largest first and the remainder last (``models.explain``
computes them so they add up), so the bars end exactly at the prediction and show the same amounts
as the reasons. Each step carries its exact start and end (``data-start``, ``data-end``) so a test
or a screen reader can check that the chart adds up to the prediction shown above it.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

ROW, LABEL_WIDTH, BAR_WIDTH, AMOUNT_WIDTH = 24, 300, 320, 110
UP, DOWN, ENDS = "#d9534f", "#3a7bd5", "#888888"


def steps(explanation: dict[str, Any], other_label: str) -> list[tuple[str, float, float]]:
    """(label, start, end) for each listed contribution and the remainder, on the prediction's scale."""
    position, out = explanation["base_prediction"], []
    parts = [(f"{c['name']} = {c['value']}", c["effect"]) for c in explanation["contributions"]]
    if explanation["rest_effect"] != 0:
        parts.append((other_label, explanation["rest_effect"]))
    for label, effect in parts:
        out.append((label, position, position + effect))
        position += effect
    return out


def amount(value: float, unit: str, signed: bool = False) -> str:
    """An amount as shown: ¥ or %, a minus sign when negative (a loss is never shown as a gain) and,
    for steps (``signed``), a plus sign when positive."""
    sign = "−" if value < 0 else ("+" if signed else "")
    return f"{sign}¥{abs(value):,.0f}" if unit == "yuan" else f"{sign}{abs(value) * 100:.1f}%"


def waterfall_svg(explanation: dict[str, Any], unit: str, language: str) -> Markup:
    zh = language == "zh"
    bars = steps(explanation, "其他特征" if zh else "other features")
    base = explanation["base_prediction"]
    end = bars[-1][2] if bars else base
    points = [0.0, base, end, *(v for _, s, e in bars for v in (s, e))]  # the ends are bars from zero
    low, high = min(points), max(points)
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return LABEL_WIDTH + (value - low) / span * BAR_WIDTH

    uncalibrated = explanation.get("explains") == "uncalibrated score"
    rows = [("基线（平均）" if zh else "base value (average case)", 0.0, base, ENDS, amount(base, unit))]
    rows += [(label, s, e, UP if e >= s else DOWN, amount(e - s, unit, signed=True)) for label, s, e in bars]
    if uncalibrated:
        last = "校准前评分" if zh else "score before calibration"
    else:
        last = "预测" if zh else "prediction"
    rows.append((last, 0.0, end, ENDS, amount(end, unit)))
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
            f'<g class="step" data-start="{float(start)!r}" data-end="{float(stop)!r}">'
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{left:.1f}" y="{y + 3}" width="{bar:.1f}" height="{ROW - 8}" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 6}" y="{y + 15}">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
