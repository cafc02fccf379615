"""Checking /video's options against the chosen model, before anything is stored or sent.

Discord's client hints are not a guarantee (typed values and API clients bypass them), so every
value is checked here, and a refusal names the option and what it accepts.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bot.domain.catalog import Catalog, ModelSpec, parse_size, size_for
from bot.domain.errors import InvalidOptionError
from bot.i18n import Text, option_name
from bot.media.keyframes import check_declared_size
from bot.media.probe import VideoLimits, check_declared_audio_size, check_declared_video_size
from storage.models import IMAGE_KINDS, MEDIA_KINDS, VideoParams, media_kinds

STEPS_RANGE = (10, 50)
GUIDANCE_RANGE = (1.0, 20.0)
FPS_RANGE = (1, 60)
SEED_RANGE = (0, 2**32 - 1)
# Together's output_quality: lower is better, 20 when left out.
QUALITY_RANGE = (1, 50)
NEGATIVE_PROMPT_MAX = 2000
FORMATS = ("MP4", "WEBM")
IMAGE_OPTIONS = IMAGE_KINDS
ATTACHMENT_OPTIONS = MEDIA_KINDS


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
    resolution: str | None = None
    ratio: str | None = None
    audio: bool | None = None
    quality: int | None = None
    # Attached files: option name (first_frame, last_frame, reference, video, soundtrack) ->
    # the size Discord declares for the file, in bytes.
    attachments: Mapping[str, int] = field(default_factory=dict)


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
            "option.range",
            name=option_name(name),
            low=_number(low),
            high=_number(high),
            value=_number(value),
        )


def _pick_model(catalog: Catalog, wanted: str | None, default_model: str) -> ModelSpec:
    # A model typed as blanks or invisible characters counts as not given.
    wanted = clean_text(wanted or "") or None
    model = catalog.get(wanted or default_model)
    if model is None:
        shown = clean_text(wanted or default_model)[:100]
        raise InvalidOptionError("model.unknown", option=option_name("model"), name=shown)
    if not model.enabled:
        raise InvalidOptionError(
            "model.switched_off", option=option_name("model"), model=model.name
        )
    return model


def _pick_size(model: ModelSpec, wanted: str | None) -> tuple[int, int]:
    if wanted is None:
        return model.default_dimensions()
    try:
        width, height = parse_size(wanted)
    except ValueError:
        width = height = -1
    size = f"{width}x{height}"
    if size not in model.sizes:
        raise InvalidOptionError(
            "option.size",
            size=option_name("size"),
            model=model.name,
            sizes=", ".join(model.sizes),
            got=repr(clean_text(wanted)[:40]),
        )
    return width, height


@dataclass(frozen=True, slots=True)
class Frame:
    """The frame a job makes: width and height, and for some models resolution and ratio."""

    width: int
    height: int
    resolution: str | None = None
    ratio: str | None = None


def _pick_frame(model: ModelSpec, options: VideoOptions) -> Frame:
    """`size` for width x height models; `resolution` and `ratio` for the others."""
    if model.dimensions == "width_height":
        for name, given in (("resolution", options.resolution), ("ratio", options.ratio)):
            if given is not None:
                raise InvalidOptionError(
                    "option.takes_size",
                    name=option_name(name),
                    model=model.name,
                    size=option_name("size"),
                    sizes=", ".join(model.sizes),
                )
        return Frame(*_pick_size(model, options.size))
    if options.size is not None:
        raise InvalidOptionError(
            "option.takes_frame",
            size=option_name("size"),
            model=model.name,
            resolution=option_name("resolution"),
            resolutions=", ".join(model.resolutions),
            ratio=option_name("ratio"),
            ratios=", ".join(model.ratios),
        )
    resolution = _pick_listed(
        "resolution", model, options.resolution, model.resolutions, model.default_resolution
    )
    ratio = _pick_listed("ratio", model, options.ratio, model.ratios, model.default_ratio)
    return Frame(*size_for(resolution, ratio), resolution=resolution, ratio=ratio)


def _pick_listed(
    name: str, model: ModelSpec, wanted: str | None, allowed: tuple[str, ...], default: str | None
) -> str:
    if wanted is None:
        assert default is not None  # the catalog checks it
        return default
    typed = clean_text(wanted).replace(" ", "")
    match = next((value for value in allowed if value.lower() == typed.lower()), None)
    if match is None:
        raise InvalidOptionError(
            "option.listed",
            name=option_name(name),
            model=model.name,
            allowed=", ".join(allowed),
            got=repr(typed[:20]),
        )
    return match


def _pick_audio(model: ModelSpec, wanted: bool | None, catalog: Catalog) -> bool | None:
    """What to send as generate_audio: None leaves it to the model."""
    if wanted is None:
        return None
    if wanted and model.audio == "none":
        raise InvalidOptionError(
            "option.audio_silent",
            audio=option_name("audio"),
            model=model.name,
            models=_models_where(catalog, lambda m: m.audio != "none"),
        )
    if not wanted and model.audio == "built_in":
        raise InvalidOptionError(
            "option.audio_built_in",
            audio=option_name("audio"),
            model=model.name,
            models=_models_where(catalog, lambda m: m.audio == "optional"),
        )
    return wanted if model.audio != "none" else None


def _pick_seconds(model: ModelSpec, wanted: int | None) -> int:
    if wanted is None:
        return model.default_seconds
    if wanted not in model.durations:
        allowed: str | Text = ", ".join(str(s) for s in model.durations)
        if model.durations_are_range:
            allowed = Text(
                "option.seconds_span", {"low": model.durations[0], "high": model.durations[-1]}
            )
        raise InvalidOptionError(
            "option.seconds",
            seconds=option_name("seconds"),
            model=model.name,
            allowed=allowed,
            got=wanted,
        )
    return wanted


def _models_where(catalog: Catalog, test: Callable[[ModelSpec], bool]) -> str | Text:
    names = [m.name for m in catalog if test(m)]
    return ", ".join(names) if names else Text("option.none_installed")


# What each attachment option needs of the model (a refusal names it as `takes.<option>`).
_TAKES: dict[str, Callable[[ModelSpec], bool]] = {
    "first_frame": lambda m: m.first_frame,
    "last_frame": lambda m: m.last_frame,
    "reference": lambda m: m.reference_images,
    "video": lambda m: m.video_input_field is not None,
    "soundtrack": lambda m: m.takes_audio_input,
}


def _check_attachments(model: ModelSpec, attachments: Mapping[str, int], catalog: Catalog) -> None:
    """Each attached file must suit the model, and be small enough to be worth downloading."""
    for option, declared_size in attachments.items():
        takes = _TAKES[option]
        if not takes(model):
            raise InvalidOptionError(
                "option.not_taken",
                option=option_name(option),
                model=model.name,
                what=Text(f"takes.{option}"),
                models=_models_where(catalog, takes),
            )
        if option in IMAGE_KINDS:
            check_declared_size(option, declared_size)
        elif option == "video":
            check_declared_video_size(option, declared_size, video_limits(model).max_bytes)
        else:
            check_declared_audio_size(option, declared_size)
    _check_needed_media(model, attachments)


def video_limits(model: ModelSpec) -> VideoLimits:
    """What a member's clip may be for this model (megabytes of 1,000,000 bytes)."""
    cap = model.video_input
    return VideoLimits(
        min_seconds=cap.min_seconds,
        max_seconds=cap.max_seconds,
        max_bytes=int(cap.max_mb * 1_000_000),
    )


def _check_needed_media(model: ModelSpec, attachments: Mapping[str, int]) -> None:
    """Image-to-video, reference and edit models need something to start from."""
    given = set(attachments)
    or_clip = "_or_clip" if model.video_input_field is not None else ""
    if model.kind == "i2v" and not given & {"first_frame", "video"}:
        key = "option.needs_image" + or_clip
    elif model.kind == "r2v" and not given & {"reference", "video"}:
        key = "option.needs_reference" + or_clip
    elif model.kind == "videoedit" and "video" not in given:
        key = "option.needs_clip"
    else:
        return
    names = {name: option_name(name) for name in ("first_frame", "reference", "video")}
    kind = Text(f"kind.{model.kind}")
    raise InvalidOptionError(key, model=model.name, kind=kind, **names)


def check_words(
    model: ModelSpec, prompt: str, negative_prompt: str | None
) -> tuple[str, str | None]:
    """The prompt and negative prompt, cleaned and within the model's limits."""
    prompt = clean_text(prompt)
    if not prompt:
        raise InvalidOptionError("option.prompt_empty", prompt=option_name("prompt"))
    if len(prompt) > model.max_prompt_chars:
        raise InvalidOptionError(
            "option.prompt_long",
            prompt=option_name("prompt"),
            length=len(prompt),
            model=model.name,
            limit=model.max_prompt_chars,
        )
    negative = clean_text(negative_prompt) if negative_prompt else None
    if negative and len(negative) > NEGATIVE_PROMPT_MAX:
        raise InvalidOptionError(
            "option.negative_long",
            negative_prompt=option_name("negative_prompt"),
            length=len(negative),
            limit=NEGATIVE_PROMPT_MAX,
        )
    return prompt, negative or None


def validate_options(options: VideoOptions, catalog: Catalog, default_model: str) -> VideoRequest:
    """Check every option; raise InvalidOptionError naming the first problem."""
    model = _pick_model(catalog, options.model, default_model)
    prompt, negative = check_words(model, options.prompt, options.negative_prompt)
    _check_range("steps", options.steps, STEPS_RANGE)
    _check_range("guidance", options.guidance, GUIDANCE_RANGE)
    _check_range("fps", options.fps, FPS_RANGE)
    _check_range("seed", options.seed, SEED_RANGE)
    _check_range("quality", options.quality, QUALITY_RANGE)
    output_format = (options.format or "MP4").strip().upper()
    if output_format not in FORMATS:
        raise InvalidOptionError(
            "option.format", format=option_name("format"), got=repr(options.format)
        )
    frame = _pick_frame(model, options)
    unknown = set(options.attachments) - set(ATTACHMENT_OPTIONS)
    if unknown:
        raise InvalidOptionError("option.unknown", name=sorted(unknown)[0])
    _check_attachments(model, options.attachments, catalog)
    params = VideoParams(
        prompt=prompt,
        width=frame.width,
        height=frame.height,
        resolution=frame.resolution,
        ratio=frame.ratio,
        generate_audio=_pick_audio(model, options.audio, catalog),
        output_quality=options.quality,
        seconds=_pick_seconds(model, options.seconds),
        seed=options.seed,
        negative_prompt=negative or None,
        steps=options.steps,
        guidance_scale=options.guidance,
        fps=options.fps,
        output_format=output_format,
        media=media_kinds(options.attachments),
    )
    return VideoRequest(model=model, params=params)
