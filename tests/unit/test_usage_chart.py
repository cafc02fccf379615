"""The usage chart: a PNG of the right size, one bar per day with videos, the spend line, and
no words (numbers and month-day dates only)."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from PIL import Image, ImageDraw

from bot.reports.usage_chart import (
    BACKGROUND,
    BAR,
    HEIGHT,
    SPEND,
    VIDEOS_BOX,
    WIDTH,
    Axis,
    chart_date,
    nice_axis,
    usage_chart_png,
)
from storage.models import DailyUsage

FIRST = dt.date(2026, 11, 3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What the chart may draw: counts, dollar amounts and month-day dates, in any language.
NEUTRAL = re.compile(r"\$?[0-9][0-9,.]*|[0-9]{2}-[0-9]{2}")


def month(values: dict[int, tuple[int, float]] | None = None, days: int = 30) -> list[DailyUsage]:
    """`days` days from FIRST; `values`: day index -> (videos, spend), zeros elsewhere."""
    given = values or {}
    return [DailyUsage(FIRST + dt.timedelta(days=i), *given.get(i, (0, 0.0))) for i in range(days)]


def opened(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def runs(image: Image.Image, colour: tuple[int, int, int]) -> list[tuple[int, int]]:
    """The column ranges (first, last) holding `colour`, left to right."""
    pixels = image.load()
    assert pixels is not None
    found: list[tuple[int, int]] = []
    start = None
    for x in range(image.width + 1):
        hit = x < image.width and any(pixels[x, y] == colour for y in range(image.height))
        if hit and start is None:
            start = x
        elif not hit and start is not None:
            found.append((start, x - 1))
            start = None
    return found


def column_height(image: Image.Image, x: int, colour: tuple[int, int, int]) -> int:
    pixels = image.load()
    assert pixels is not None
    return sum(pixels[x, y] == colour for y in range(image.height))


def topmost(image: Image.Image, colour: tuple[int, int, int]) -> tuple[int, int]:
    """(x, y) of the highest pixel of `colour`."""
    pixels = image.load()
    assert pixels is not None
    for y in range(image.height):
        for x in range(image.width):
            if pixels[x, y] == colour:
                return x, y
    raise AssertionError("colour not drawn")


def test_a_png_of_the_expected_size_on_an_opaque_background() -> None:
    image = opened(usage_chart_png(month({3: (2, 0.98), 29: (1, 0.28)})))
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT) == (1000, 500)
    assert image.mode == "RGB"  # no alpha: the same on Discord's dark and light themes
    corners = [(0, 0), (WIDTH - 1, 0), (0, HEIGHT - 1), (WIDTH - 1, HEIGHT - 1)]
    assert all(image.getpixel(corner) == BACKGROUND for corner in corners)


def test_thirty_buckets_make_thirty_bars_in_day_order() -> None:
    days = month({i: (i + 1, 0.1 * (i + 1)) for i in range(30)})
    image = opened(usage_chart_png(days))
    bars = runs(image, BAR)
    assert len(bars) == 30
    heights = [column_height(image, (first + last) // 2, BAR) for first, last in bars]
    assert heights == sorted(heights) and heights[0] < heights[-1]
    # Every bar is as wide as the others, and they are evenly spaced.
    widths = {last - first for first, last in bars}
    assert max(widths) - min(widths) <= 1


def test_an_all_zero_month_draws_no_bar_and_a_flat_line() -> None:
    image = opened(usage_chart_png(month()))
    assert image.size == (WIDTH, HEIGHT)
    assert runs(image, BAR) == []
    spend = runs(image, SPEND)
    assert spend  # the line is on the zero baseline, across the days
    assert spend[-1][1] - spend[0][0] > WIDTH // 2


def test_one_huge_day_fills_its_panel_and_small_days_still_show() -> None:
    days = month({0: (1, 0.28), 12: (250_000, 99_999.0), 29: (1, 0.28)})
    image = opened(usage_chart_png(days))
    bars = runs(image, BAR)
    assert len(bars) == 3
    first, huge, last = (column_height(image, (a + b) // 2, BAR) for a, b in bars)
    top, bottom = VIDEOS_BOX
    assert huge > 0.8 * (bottom - top)
    assert 2 <= first == last < 0.01 * (bottom - top) + 2
    # The spend line peaks over the huge day.
    x, _ = topmost(image, SPEND)
    assert bars[1][0] - 10 <= x <= bars[1][1] + 10


def test_bars_sit_where_their_days_are() -> None:
    image = opened(usage_chart_png(month({0: (3, 1.0), 29: (3, 1.0)})))
    (left_first, _), (_, right_last) = runs(image, BAR)
    assert left_first < WIDTH * 0.15 and right_last > WIDTH * 0.85


def test_any_number_of_days_draws_but_none_is_refused() -> None:
    assert len(runs(opened(usage_chart_png(month({0: (1, 1.0)}, days=1))), BAR)) == 1
    with pytest.raises(ValueError):
        usage_chart_png([])


def test_the_chart_draws_no_words_only_numbers_and_month_day_dates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pillow's bundled font has no Japanese: every word is in the reply's text instead."""
    drawn: list[str] = []
    original = ImageDraw.ImageDraw.text

    def recording(self: ImageDraw.ImageDraw, xy: Any, text: Any, *args: Any, **kw: Any) -> None:
        drawn.append(str(text))
        original(self, xy, text, *args, **kw)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", recording)
    usage_chart_png(month({5: (4, 1.96), 29: (1_234, 5_678.9)}))
    usage_chart_png(month())  # an empty month draws no "no videos" either
    assert drawn and all(NEUTRAL.fullmatch(label) for label in drawn), drawn
    assert "12-02" in drawn  # the last day (FIRST + 29) under its tick
    assert "11-07" in drawn  # every fifth day back from it


def test_dates_are_month_day_in_digits() -> None:
    assert chart_date(DailyUsage(dt.date(2026, 11, 7), 0, 0.0)) == "11-07"
    assert chart_date(DailyUsage(dt.date(2027, 1, 31), 0, 0.0)) == "01-31"


@pytest.mark.parametrize(
    ("peak", "smallest", "axis"),
    [
        (0, 1, Axis(1, 1)),  # an empty month still has a scale
        (0, 0.01, Axis(1, 0.2)),
        (1, 1, Axis(1, 1)),
        (3, 1, Axis(3, 1)),
        (7, 1, Axis(8, 2)),
        (13, 1, Axis(15, 5)),
        (250_000, 1, Axis(250_000, 50_000)),
        (0.49, 0.01, Axis(0.5, 0.1)),
        (0.03, 0.01, Axis(0.03, 0.01)),
        (43.26, 0.01, Axis(50, 10)),
    ],
)
def test_round_axes(peak: float, smallest: float, axis: Axis) -> None:
    got = nice_axis(peak, smallest_step=smallest, empty_top=1)
    assert got.top == pytest.approx(axis.top) and got.step == pytest.approx(axis.step)
    assert len(got.ticks) <= 6 and got.ticks[0] == 0 and got.ticks[-1] >= peak
