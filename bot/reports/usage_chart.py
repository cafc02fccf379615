"""The /videoadmin usage chart: videos and spend per UTC day, drawn as a PNG with Pillow.

A pure function of the daily series (storage.usage.UsageRepository.daily_usage): no Discord, no
database, no clock. Two panels share the day axis: bars for the videos (top), a line for the
spend (bottom). The background is opaque, so the chart reads the same in Discord's dark and
light themes. The chart draws no words, only numbers, "$" and dates as month-day ("11-07"):
Pillow's bundled font covers Latin only, and the moderator may read Japanese. The reply's text
(cogs.usage, in their language) says what the panels are and lists the members as mentions.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from storage.models import DailyUsage

WIDTH, HEIGHT = 1000, 500

BACKGROUND = (255, 255, 255)
TEXT = (32, 34, 37)
MUTED = (96, 99, 107)
GRID = (226, 228, 233)
AXIS = (150, 153, 161)
BAR = (88, 101, 242)  # Discord's blurple: the videos
SPEND = (230, 126, 34)  # orange: the spend

TICK_SIZE = 13
RIGHT_MARGIN = 40  # room for the last day's centred date
VIDEOS_BOX = (30, 240)  # each panel's plot area, top and bottom
SPEND_BOX = (270, 460)
MOST_TICKS = 5
DAY_LABEL_EVERY = 5  # a date under every fifth day, counted back from the last
BAR_SHARE = 0.7  # of a day's width; the rest is the gap between bars
SMALLEST_BAR = 2  # px: a day with any video shows, even next to a huge one
LINE_WIDTH, DOT_RADIUS = 3, 3


@dataclass(frozen=True, slots=True)
class Axis:
    """A value axis from 0 to `top` in steps of `step` (1, 2 or 5 times a power of ten)."""

    top: float
    step: float

    @property
    def ticks(self) -> list[float]:
        count = round(self.top / self.step)
        return [i * self.step for i in range(count + 1)]


def nice_axis(
    peak: float, *, smallest_step: float, empty_top: float, most_ticks: int = MOST_TICKS
) -> Axis:
    """The shortest axis of at most `most_ticks` round steps that reaches `peak`.

    A peak of zero (a month without videos) gets the axis of `empty_top`, so the panel still
    has a scale.
    """
    peak = max(peak, smallest_step) if peak > 0 else empty_top
    rough = peak / most_ticks
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(b * power for b in (1, 2, 5, 10) if b * power >= rough * (1 - 1e-9))
    step = max(step, smallest_step)
    return Axis(top=math.ceil(peak / step - 1e-9) * step, step=step)


def usage_chart_png(days: Sequence[DailyUsage]) -> bytes:
    """The chart of `days` (oldest first, one per UTC day) as PNG bytes, WIDTH x HEIGHT, RGB."""
    if not days:
        raise ValueError("the usage chart needs at least one day")
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    videos = nice_axis(max(d.jobs for d in days), smallest_step=1, empty_top=1)
    spend = nice_axis(max(d.spend_usd for d in days), smallest_step=0.01, empty_top=1)
    spend_label = _money_tick(spend.step)
    tick_font = _font(TICK_SIZE)
    widest = max(
        draw.textlength(label, font=tick_font)
        for label in [*map(_count, videos.ticks), *map(spend_label, spend.ticks)]
    )
    plot = _Plot(left=max(56, math.ceil(widest) + 16), right=WIDTH - RIGHT_MARGIN, count=len(days))

    _panel(draw, plot, VIDEOS_BOX, videos, _count)
    _panel(draw, plot, SPEND_BOX, spend, spend_label)
    _bars(draw, plot, [d.jobs for d in days], videos)
    _line(draw, plot, [d.spend_usd for d in days], spend)
    _day_labels(draw, plot, days)

    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- drawing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plot:
    """The horizontal layout shared by both panels: one slot per day."""

    left: int
    right: int
    count: int

    @property
    def slot(self) -> float:
        return (self.right - self.left) / self.count

    def centre(self, index: int) -> float:
        return self.left + (index + 0.5) * self.slot


def _panel(
    draw: ImageDraw.ImageDraw,
    plot: _Plot,
    box: tuple[int, int],
    axis: Axis,
    label: Callable[[float], str],
) -> None:
    """The panel's grid lines with their values, and its baseline."""
    bottom = box[1]
    for value in axis.ticks:
        y = _y(value, axis, box)
        if value:
            draw.line([(plot.left, y), (plot.right, y)], fill=GRID, width=1)
        draw.text((plot.left - 8, y), label(value), font=_font(TICK_SIZE), fill=MUTED, anchor="rm")
    draw.line([(plot.left, bottom), (plot.right, bottom)], fill=AXIS, width=1)


def _bars(draw: ImageDraw.ImageDraw, plot: _Plot, counts: list[int], axis: Axis) -> None:
    """One bar per day with videos; its count above it where there is room."""
    top, bottom = VIDEOS_BOX
    half = plot.slot * BAR_SHARE / 2
    font = _font(TICK_SIZE)
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        height = max(SMALLEST_BAR, round(count / axis.top * (bottom - top)))
        centre = plot.centre(index)
        x0, x1 = round(centre - half), round(centre + half) - 1
        draw.rectangle([(x0, bottom - height), (x1, bottom - 1)], fill=BAR)
        words = _count(count)
        if draw.textlength(words, font=font) <= plot.slot:
            draw.text((centre, bottom - height - 3), words, font=font, fill=TEXT, anchor="md")


def _line(draw: ImageDraw.ImageDraw, plot: _Plot, amounts: list[float], axis: Axis) -> None:
    points = [(plot.centre(i), _y(amount, axis, SPEND_BOX)) for i, amount in enumerate(amounts)]
    if len(points) > 1:
        draw.line(points, fill=SPEND, width=LINE_WIDTH, joint="curve")
    for x, y in points:
        draw.ellipse(
            [(x - DOT_RADIUS, y - DOT_RADIUS), (x + DOT_RADIUS, y + DOT_RADIUS)], fill=SPEND
        )


def _day_labels(draw: ImageDraw.ImageDraw, plot: _Plot, days: Sequence[DailyUsage]) -> None:
    """A tick under both panels for every day; a date under every fifth, ending with today."""
    font = _font(TICK_SIZE)
    last = len(days) - 1
    for index, day in enumerate(days):
        x = plot.centre(index)
        labelled = (last - index) % DAY_LABEL_EVERY == 0
        length = 6 if labelled else 3
        for _top, bottom in (VIDEOS_BOX, SPEND_BOX):
            draw.line([(x, bottom), (x, bottom + length)], fill=AXIS, width=1)
        if labelled:
            label = chart_date(day)
            half = draw.textlength(label, font=font) / 2
            # Kept inside the image: the last label sits under the right edge.
            centre = min(max(x, half + 2), WIDTH - half - 2)
            draw.text((centre, SPEND_BOX[1] + 9), label, font=font, fill=MUTED, anchor="ma")


def _y(value: float, axis: Axis, box: tuple[int, int]) -> float:
    top, bottom = box
    return bottom - value / axis.top * (bottom - top)


# --- numbers and dates --------------------------------------------------------------------


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (no font files to ship or find)."""
    return ImageFont.load_default(size=size)


def _count(value: float) -> str:
    return f"{round(value):,}"


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def _money_tick(step: float) -> Callable[[float], str]:
    """Cents only when the steps are smaller than a dollar."""
    return _money if step < 1 else (lambda amount: f"${amount:,.0f}")


def chart_date(day: DailyUsage) -> str:
    """'11-07' for 7 November: month-day in digits, the ISO order, the same in every language
    (the reply's text gives the first and last days in full)."""
    return f"{day.day.month:02d}-{day.day.day:02d}"
