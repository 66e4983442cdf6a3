"""Server-rendered bar charts: geometry computed here, drawn as SVG by a template macro."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float | None


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    top: float  # the value at the top of the chart
    gridlines: tuple[tuple[float, float], ...]  # (y, value): the page writes the value its way
    unit: str = ""  # after each gridline's value, e.g. " h"


def _nice_top(highest: float) -> float:
    """A round number at or above `highest` (1, 2 or 5 times a power of ten)."""
    if highest <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(highest))) - 1)
    for step in (1, 2, 5, 10):
        if highest <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def bar_chart(points: Sequence[tuple[str, float | None]], *, width: int = 320, height: int = 120,
              unit: str = "") -> BarChart:
    """Bars for `points` (label, value or None for no data), scaled to a round top value."""
    top = _nice_top(max((v for _, v in points if v is not None), default=0))
    slot = width / max(len(points), 1)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = 0.0 if value is None else max(1.0, height * value / top)
        bars.append(Bar(x=round(index * slot + slot * 0.15, 2), y=round(height - bar_height, 2),
                        width=round(slot * 0.7, 2), height=round(bar_height, 2), label=label,
                        value=value))
    gridlines = tuple((round(height * (1 - share), 2), round(top * share)) for share in (0.5, 1.0))
    return BarChart(width=width, height=height, bars=tuple(bars), top=top, gridlines=gridlines,
                    unit=unit)
