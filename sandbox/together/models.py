"""The video models the stand-in knows and what each accepts, from /work/shared/together-facts.md.

This table stands for Together's server, not for the bot: it is written from the facts file on
its own, so the bot's catalog (bot/domain/catalog.json) can be checked against it. Where the
facts leave a gap the choice is marked "assumed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["t2v", "i2v", "r2v", "videoedit"]

# Every field Together documents under `media`.
FRAME_IMAGES = "frame_images"
FRAME_VIDEOS = "frame_videos"
REFERENCE_IMAGES = "reference_images"
REFERENCE_VIDEOS = "reference_videos"
SOURCE_VIDEO = "source_video"
AUDIO_INPUTS = "audio_inputs"
MEDIA_FIELDS = (
    FRAME_IMAGES,
    FRAME_VIDEOS,
    REFERENCE_IMAGES,
    REFERENCE_VIDEOS,
    SOURCE_VIDEO,
    AUDIO_INPUTS,
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What one model accepts, and what its job reports when the request leaves things out.

    A model takes either `width`/`height` (one of `sizes`) or `resolution`/`ratio` (one of
    `resolutions` and one of `ratios`). Its seconds are one of `durations`, or a whole number in
    `seconds_range` (inclusive). `published=False` marks a model listed without published specs:
    its options are checked only for their types.
    """

    seconds: str  # reported when the request has no `seconds`
    size: str  # "WxH", reported when the request has no dimensions
    kind: Kind = "i2v"
    sizes: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    ratios: tuple[str, ...] = ()
    durations: tuple[int, ...] = ()
    seconds_range: tuple[int, int] | None = None
    media: frozenset[str] = frozenset()
    last_frame: bool = False  # frame_images may hold a last frame as well as a first
    generate_audio: bool = False
    fps: int | None = None
    published: bool = True

    @property
    def takes_resolution(self) -> bool:
        return bool(self.resolutions)

    def seconds_allowed(self, seconds: int) -> bool:
        if self.seconds_range is not None:
            low, high = self.seconds_range
            return low <= seconds <= high
        return seconds in self.durations

    def describe_seconds(self) -> str:
        if self.seconds_range is not None:
            return f"{self.seconds_range[0]} to {self.seconds_range[1]}"
        return ", ".join(str(s) for s in self.durations)


def _wh(
    seconds: int,
    sizes: tuple[str, ...],
    *,
    default_size: str | None = None,
    last_frame: bool = False,
    references: bool = False,
    audio: bool = False,
) -> ModelSpec:
    """A width/height model of the first table: a first frame, one clip length."""
    media = {FRAME_IMAGES, REFERENCE_IMAGES} if references else {FRAME_IMAGES}
    return ModelSpec(
        seconds=str(seconds),
        size=default_size or sizes[0],
        kind="i2v",
        sizes=sizes,
        durations=(seconds,),
        media=frozenset(media),
        last_frame=last_frame,
        generate_audio=audio,
    )


_VEO3_SIZES = ("1280x720", "720x1280", "1920x1080", "1080x1920")
_HD_PAIR = ("1280x720", "720x1280")
_KLING_SIZES = ("1920x1080", "1080x1080", "1080x1920")
_SEEDANCE_SIZES = (
    "864x480",
    "736x544",
    "640x640",
    "960x416",
    "416x960",
    "1248x704",
    "1120x832",
    "960x960",
    "1504x640",
    "640x1504",
)
# Assumed: the facts say "many, 640x360 to 1080x1920" (360p to 1080p in 16:9, 9:16, 1:1).
_PIXVERSE_SIZES = (
    "640x360",
    "360x640",
    "640x640",
    "960x540",
    "540x960",
    "1280x720",
    "720x1280",
    "1080x1080",
    "1920x1080",
    "1080x1920",
)
# Assumed: the facts say only "several".
_VIDU_SIZES = ("1280x720", "720x1280", "960x960", "1920x1080", "1080x1920")

_VEO3 = _wh(8, _VEO3_SIZES)
_VEO3_AUDIO = _wh(8, _VEO3_SIZES, audio=True)
_SEEDANCE = _wh(5, _SEEDANCE_SIZES, last_frame=True)

WAN_RESOLUTIONS = ("720P", "1080P")
WAN_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
WAN_FPS = 30


def _wan(kind: Kind, high: int, media: set[str], *, audio: bool = False) -> ModelSpec:
    return ModelSpec(
        seconds="5",  # assumed: the docs give no default length
        size="1280x720",  # 720P at 16:9
        kind=kind,
        resolutions=WAN_RESOLUTIONS,
        ratios=WAN_RATIOS,
        seconds_range=(2, high),
        media=frozenset(media),
        last_frame=kind == "i2v",
        generate_audio=audio,
        fps=WAN_FPS,
    )


def _unpublished(seconds: str = "5") -> ModelSpec:
    """A model on Together's list without published sizes or durations: types checked only."""
    return ModelSpec(
        seconds=seconds,
        size="1280x720",
        media=frozenset(MEDIA_FIELDS),
        last_frame=True,
        generate_audio=True,
        published=False,
    )


# The one list of model ids the stand-in accepts; anything else is a 400 like the real API.
MODELS: dict[str, ModelSpec] = {
    "google/veo-3.0": _VEO3,
    "google/veo-3.0-audio": _VEO3_AUDIO,
    "google/veo-3.0-fast": _VEO3,
    "google/veo-3.0-fast-audio": _VEO3_AUDIO,
    "google/veo-2.0": _wh(5, _HD_PAIR, last_frame=True),
    "openai/sora-2": _wh(8, _HD_PAIR),
    "openai/sora-2-pro": _wh(8, _HD_PAIR),
    "minimax/hailuo-02": ModelSpec(
        seconds="10",
        size="1366x768",
        kind="i2v",
        sizes=("1366x768", "1920x1080"),
        durations=(6, 10),
        media=frozenset({FRAME_IMAGES, REFERENCE_IMAGES}),
    ),
    "minimax/video-01-director": _wh(5, ("1366x768",)),
    "kwaivgI/kling-2.1-master": _wh(5, _KLING_SIZES),
    "kwaivgI/kling-2.1-standard": _wh(5, _KLING_SIZES),
    "kwaivgI/kling-2.1-pro": _wh(5, _KLING_SIZES, last_frame=True),
    "ByteDance/Seedance-1.0-pro": _SEEDANCE,
    "ByteDance/Seedance-1.0-lite": _SEEDANCE,
    "pixverse/pixverse-v5": _wh(5, _PIXVERSE_SIZES, default_size="1280x720"),
    "vidu/vidu-2.0": _wh(8, _VIDU_SIZES, references=True),
    "vidu/vidu-q1": _wh(5, _VIDU_SIZES, default_size="1920x1080"),
    "Wan-AI/wan2.7-t2v": _wan("t2v", 15, {AUDIO_INPUTS}, audio=True),
    "Wan-AI/wan2.7-i2v": _wan("i2v", 15, {FRAME_IMAGES, FRAME_VIDEOS, AUDIO_INPUTS}, audio=True),
    "Wan-AI/wan2.7-r2v": _wan("r2v", 10, {REFERENCE_IMAGES, REFERENCE_VIDEOS}),
    "Wan-AI/wan2.7-videoedit": _wan("videoedit", 10, {SOURCE_VIDEO, REFERENCE_IMAGES}),
    "google/veo-3.1": _unpublished("8"),
    "google/veo-3.1-lite": _unpublished("8"),
    "ByteDance/Seedance-2.0": _unpublished(),
    "ByteDance/Seedance-2.5": _unpublished(),
    "pixverse/pixverse-v5.6": _unpublished(),
    "pixverse/pixverse-v6": _unpublished(),
    "vidu/vidu-q3": _unpublished(),
    "vidu/vidu-q3-turbo": _unpublished(),
}


def pixel_size(resolution: str, ratio: str) -> str | None:
    """("720P", "4:3") -> "960x720": the short side is the resolution's number.

    None when either cannot be read.
    """
    digits = resolution.upper().removesuffix("P")
    left, sep, right = ratio.partition(":")
    if not (digits.isdigit() and sep and left.isdigit() and right.isdigit()):
        return None
    short, a, b = int(digits), int(left), int(right)
    if short == 0 or a == 0 or b == 0:
        return None
    long_side = round(short * max(a, b) / min(a, b) / 2) * 2
    return f"{long_side}x{short}" if a >= b else f"{short}x{long_side}"
