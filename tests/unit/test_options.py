"""Checking /video's options against the catalog."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.catalog import load_catalog
from bot.domain.errors import InvalidOptionError
from bot.domain.options import VideoOptions, clean_text, validate_options

CATALOG = load_catalog()
DEFAULT = "minimax/hailuo-02"


def check(**options: object) -> object:
    return validate_options(VideoOptions(**options), CATALOG, DEFAULT)  # type: ignore[arg-type]


def test_defaults_come_from_the_model() -> None:
    request = check(prompt="a cat surfing", model="google/veo-2.0")
    assert (request.params.width, request.params.height, request.params.seconds) == (1280, 720, 5)  # type: ignore[attr-defined]
    assert request.params.output_format == "MP4"  # type: ignore[attr-defined]


def test_default_model_when_none_given() -> None:
    assert check(prompt="x").model.id == DEFAULT  # type: ignore[attr-defined]


def test_blank_model_means_the_default() -> None:
    assert check(prompt="x", model=" \u200b ").model.id == DEFAULT  # type: ignore[attr-defined]


def test_model_lookup_ignores_case() -> None:
    assert check(prompt="x", model="MINIMAX/Hailuo-02").model.id == DEFAULT  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"prompt": "   "}, "`prompt` is empty"),
        ({"prompt": "\x00\x07"}, "`prompt` is empty"),
        ({"prompt": "x", "model": "acme/nothing"}, "no model called `acme/nothing`"),
        ({"prompt": "x", "steps": 9}, "`steps` must be between 10 and 50"),
        ({"prompt": "x", "steps": 51}, "`steps`"),
        ({"prompt": "x", "guidance": -1.0}, "`guidance`"),
        ({"prompt": "x", "fps": 0}, "`fps`"),
        ({"prompt": "x", "seed": -5}, "`seed`"),
        (
            {"prompt": "x", "seed": 2**40},
            "`seed` must be between 0 and 4294967295 (got 1099511627776)",
        ),
        ({"prompt": "x", "guidance": 20.5}, "`guidance` must be between 1 and 20 (got 20.5)"),
        ({"prompt": "x", "seconds": 7}, "makes clips of 6, 10 seconds"),
        ({"prompt": "x", "format": "GIF"}, "`format` must be MP4 or WEBM"),
        ({"prompt": "x", "size": "1x1"}, "`size`: MiniMax Hailuo 02 makes videos of"),
        ({"prompt": "x" * 2049, "model": "pixverse/pixverse-v5"}, "takes at most 2048"),
        ({"prompt": "x", "negative_prompt": "n" * 2001}, "`negative_prompt`"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], names: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        check(**options)
    assert names in info.value.message


def test_boundaries_are_accepted() -> None:
    request = check(prompt="x", steps=10, guidance=20.0, fps=60, seed=0, seconds=10, format="webm")
    assert request.params.steps == 10 and request.params.output_format == "WEBM"  # type: ignore[attr-defined]


def test_clean_text_keeps_newlines_drops_controls() -> None:
    assert clean_text(" a\x00b\nc\u200b ") == "ab\nc"


@given(st.text(st.characters(codec=None), max_size=40))
def test_clean_text_fast_path_agrees_with_the_rule(text: str) -> None:
    """Printable text skips the per-character loop: it must give what the loop would."""
    kept = (ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    assert clean_text(text) == "".join(kept).strip()
