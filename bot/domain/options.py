"""Checking /video's options against the chosen model, before anything is stored or sent.

Discord's client hints are not a guarantee (typed values and API clients bypass them), so every
value is checked here, and a refusal names the option and what it accepts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain.catalog import Catalog, ModelSpec, parse_size
from bot.domain.errors import InvalidOptionError
from bot.media.keyframes import check_declared_size
from storage.models import MEDIA_KINDS, VideoParams, media_kinds

STEPS_RANGE = (10, 50)
GUIDANCE_RANGE = (1.0, 20.0)
FPS_RANGE = (1, 60)
SEED_RANGE = (0, 2**32 - 1)
NEGATIVE_PROMPT_MAX = 2000
FORMATS = ("MP4", "WEBM")
IMAGE_OPTIONS = MEDIA_KINDS


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """The options as the member gave them (None = not given)."""

    prompt: str
    model: str | None = None
    size: str | None = None
    seconds: int | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    fps: int | None = None
    format: str | None = None
    # Attached images: option name -> the size Discord declares for the file, in bytes.
    images: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """Checked options: the chosen model, and the parameters (its defaults filled in)."""

    model: ModelSpec
    params: VideoParams


def clean_text(text: str) -> str:
    """Strip control characters (keeping newlines and tabs) and surrounding blanks."""
    if text.isprintable():
        # No character of category C (nor Z but the space): nothing to drop. Checked in C,
        # where the loop below costs about a microsecond per character of the prompt.
        return text.strip()
    kept = (ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "".join(kept).strip()


def _number(value: float) -> str:
    """Whole numbers in full (4294967295, not 4.29497e+09); others briefly."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e21 else f"{value:g}"


def _check_range(name: str, value: float | None, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if value is not None and not low <= value <= high:
        raise InvalidOptionError(
            f"`{name}` must be between {_number(low)} and {_number(high)} (got {_number(value)})."
        )


def _pick_model(catalog: Catalog, wanted: str | None, default_model: str) -> ModelSpec:
    # A model typed as blanks or invisible characters counts as not given.
    wanted = clean_text(wanted or "") or None
    model = catalog.get(wanted or default_model)
    if model is None:
        shown = clean_text(wanted or default_model)[:100]
        raise InvalidOptionError(
            f"`model`: there is no model called `{shown}`. Pick one from the list as you type."
        )
    return model


def _pick_size(model: ModelSpec, wanted: str | None) -> tuple[int, int]:
    if wanted is None:
        return parse_size(model.default_size)
    try:
        width, height = parse_size(wanted)
    except ValueError:
        width = height = -1
    size = f"{width}x{height}"
    if size not in model.sizes:
        raise InvalidOptionError(
            f"`size`: {model.name} makes videos of {', '.join(model.sizes)}"
            f" (got {clean_text(wanted)[:40]!r})."
        )
    return width, height


def _pick_seconds(model: ModelSpec, wanted: int | None) -> int:
    if wanted is None:
        return model.default_seconds
    if wanted not in model.durations:
        allowed = ", ".join(str(s) for s in model.durations)
        raise InvalidOptionError(
            f"`seconds`: {model.name} makes clips of {allowed} seconds (got {wanted})."
        )
    return wanted


def _models_with(catalog: Catalog, takes: str) -> str:
    names = [m.name for m in catalog if getattr(m, takes)]
    return ", ".join(names) if names else "none of the installed models"


def _check_images(model: ModelSpec, images: Mapping[str, int], catalog: Catalog) -> None:
    """Each attached image must suit the model, and be small enough to be worth downloading."""
    takes = {
        "first_frame": ("first_frame", "a first frame"),
        "last_frame": ("last_frame", "a last frame"),
        "reference": ("reference_images", "reference images"),
    }
    for option, declared_size in images.items():
        attribute, what = takes[option]
        if not getattr(model, attribute):
            raise InvalidOptionError(
                f"`{option}`: {model.name} does not take {what}. "
                f"Models that do: {_models_with(catalog, attribute)}."
            )
        check_declared_size(option, declared_size)


def validate_options(options: VideoOptions, catalog: Catalog, default_model: str) -> VideoRequest:
    """Check every option; raise InvalidOptionError naming the first problem."""
    prompt = clean_text(options.prompt)
    if not prompt:
        raise InvalidOptionError("`prompt` is empty: describe the video you want.")
    model = _pick_model(catalog, options.model, default_model)
    if len(prompt) > model.max_prompt_chars:
        raise InvalidOptionError(
            f"`prompt` is {len(prompt)} characters; {model.name} takes at most "
            f"{model.max_prompt_chars}."
        )
    negative = clean_text(options.negative_prompt) if options.negative_prompt else None
    if negative and len(negative) > NEGATIVE_PROMPT_MAX:
        raise InvalidOptionError(
            f"`negative_prompt` is {len(negative)} characters; the limit is {NEGATIVE_PROMPT_MAX}."
        )
    _check_range("steps", options.steps, STEPS_RANGE)
    _check_range("guidance", options.guidance, GUIDANCE_RANGE)
    _check_range("fps", options.fps, FPS_RANGE)
    _check_range("seed", options.seed, SEED_RANGE)
    output_format = (options.format or "MP4").strip().upper()
    if output_format not in FORMATS:
        raise InvalidOptionError(f"`format` must be MP4 or WEBM (got {options.format!r}).")
    width, height = _pick_size(model, options.size)
    _check_images(model, options.images, catalog)
    params = VideoParams(
        prompt=prompt,
        width=width,
        height=height,
        seconds=_pick_seconds(model, options.seconds),
        seed=options.seed,
        negative_prompt=negative or None,
        steps=options.steps,
        guidance_scale=options.guidance,
        fps=options.fps,
        output_format=output_format,
        media=media_kinds(options.images),
    )
    return VideoRequest(model=model, params=params)
