"""The model catalog: what each Together video model does, accepts and is estimated to cost.

The bundled data lives in catalog.json beside this module (with its sources and date); a
self-hoster's MODELS_FILE merges into it by id: an entry for a known id changes only the fields
it names (so `{"id": "google/veo-3.1", "enabled": true}` switches a model on), an entry for a
new id must be complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED_CATALOG = Path(__file__).with_name("catalog.json")
DEFAULT_TIMEOUT_MINUTES = 30.0

Kind = Literal["t2v", "i2v", "r2v", "videoedit"]
KIND_NAMES: dict[str, str] = {
    "t2v": "text to video",
    "i2v": "image to video",
    "r2v": "reference to video",
    "videoedit": "video edit",
}

# What a model may be given besides the prompt, named after Together's `media` fields (a frame
# image is split into first and last, which models support separately).
Input = Literal[
    "first_frame",
    "last_frame",
    "reference_images",
    "frame_videos",
    "reference_videos",
    "source_video",
    "audio_inputs",
]
VIDEO_INPUTS: tuple[Input, ...] = ("frame_videos", "reference_videos", "source_video")

# "none": silent; "optional": `generate_audio` switches sound on or off; "built_in": always
# has sound (the -audio variants).
Audio = Literal["none", "optional", "built_in"]

# The width x height each resolution and ratio comes out at (Wan 2.7's published outputs).
_SHORT_SIDE = {"480P": 480, "720P": 720, "1080P": 1080}


class CatalogError(Exception):
    """A catalog file cannot be read or is invalid; the message names the file and the entry."""


def parse_size(size: str) -> tuple[int, int]:
    """'1366x768' -> (1366, 768); raises ValueError on anything else."""
    width, sep, height = size.strip().lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{size!r} is not a size like 1366x768")
    return int(width), int(height)


def parse_ratio(ratio: str) -> tuple[int, int]:
    """'16:9' -> (16, 9); raises ValueError on anything else."""
    left, sep, right = ratio.strip().partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or not int(left) or not int(right):
        raise ValueError(f"{ratio!r} is not a ratio like 16:9")
    return int(left), int(right)


def size_for(resolution: str, ratio: str) -> tuple[int, int]:
    """The frame a resolution and ratio make: ("720P", "16:9") -> (1280, 720).

    The short side is the resolution's number; the long side follows the ratio, rounded to an
    even number of pixels as video encoders need.
    """
    short = _SHORT_SIDE.get(resolution.strip().upper())
    if short is None:
        raise ValueError(f"{resolution!r} is not a resolution like 720P")
    across, down = parse_ratio(ratio)
    long = 2 * round(short * max(across, down) / min(across, down) / 2)
    return (long, short) if across >= down else (short, long)


class Price(BaseModel):
    """An estimate until Together reports the real cost (`outputs.cost`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: float = Field(ge=0)
    per: Literal["video", "second"] = "video"

    def estimate(self, seconds: int) -> float:
        return self.usd * seconds if self.per == "second" else self.usd


class DurationRange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int = Field(ge=1)
    max: int = Field(ge=1, le=600)


class VideoInputLimits(BaseModel):
    """What a video given to the model (to continue, follow or edit) may be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_seconds: float = Field(default=1.0, ge=0)
    max_seconds: float = Field(default=10.0, gt=0)
    max_mb: float = Field(default=50.0, gt=0)


class ModelSpec(BaseModel):
    """One video model: what it does, the options it takes, and its estimated price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: Kind = "t2v"
    # Most models take width and height (`sizes`); newer ones (Wan 2.7) resolution and ratio.
    dimensions: Literal["width_height", "resolution_ratio"] = "width_height"
    sizes: tuple[str, ...] = ()
    default_size: str | None = None
    resolutions: tuple[str, ...] = ()
    ratios: tuple[str, ...] = ()
    default_resolution: str | None = None
    default_ratio: str | None = None
    # Every length the model makes; a {"min", "max"} range in the file is expanded here.
    durations: tuple[int, ...] = Field(min_length=1)
    durations_are_range: bool = False
    default_seconds: int
    fps: int | None = None  # the frame rate it makes, where published
    inputs: tuple[Input, ...] = ("first_frame",)
    audio: Audio = "none"
    video_input: VideoInputLimits = VideoInputLimits()
    max_prompt_chars: int = Field(default=32000, ge=1, le=32000)
    price: Price
    # A guess at generation time until real jobs have been timed (polling and the ETA use it).
    expected_seconds: float = Field(default=120.0, gt=0)
    timeout_minutes: float = Field(default=DEFAULT_TIMEOUT_MINUTES, gt=0)
    # Off: listed by Together without published sizes or durations; a self-hoster who has
    # checked them switches the model on in MODELS_FILE.
    enabled: bool = True
    summary: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        _upgrade_legacy(data)
        seconds = data.get("durations")
        if isinstance(seconds, dict):
            span = DurationRange.model_validate(seconds)
            if span.min > span.max:
                raise ValueError(f"durations: min {span.min} is above max {span.max}")
            data["durations"] = tuple(range(span.min, span.max + 1))
            data["durations_are_range"] = True
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.dimensions == "width_height":
            if not self.sizes:
                raise ValueError("sizes: a width_height model needs at least one size")
            for size in self.sizes:
                parse_size(size)
            if self.default_size not in self.sizes:
                raise ValueError(f"default_size {self.default_size} is not one of sizes")
        else:
            if not self.resolutions or not self.ratios:
                raise ValueError("a resolution_ratio model needs resolutions and ratios")
            for resolution in self.resolutions:
                for ratio in self.ratios:
                    size_for(resolution, ratio)
            if self.default_resolution not in self.resolutions:
                raise ValueError(f"default_resolution {self.default_resolution} is not listed")
            if self.default_ratio not in self.ratios:
                raise ValueError(f"default_ratio {self.default_ratio} is not one of ratios")
        if self.default_seconds not in self.durations:
            raise ValueError(f"default_seconds {self.default_seconds} is not one of durations")
        return self

    # -- what it takes ---------------------------------------------------------------------

    @property
    def first_frame(self) -> bool:
        return "first_frame" in self.inputs

    @property
    def last_frame(self) -> bool:
        return "last_frame" in self.inputs

    @property
    def reference_images(self) -> bool:
        return "reference_images" in self.inputs

    @property
    def takes_audio_input(self) -> bool:
        return "audio_inputs" in self.inputs

    @property
    def video_input_field(self) -> Input | None:
        """Where a member's video goes for this model: continued, followed or edited."""
        return next((field for field in VIDEO_INPUTS if field in self.inputs), None)

    @property
    def needs_media(self) -> bool:
        """Image-to-video, reference and edit models make nothing from words alone."""
        return self.kind != "t2v"

    def default_dimensions(self) -> tuple[int, int]:
        if self.dimensions == "resolution_ratio":
            assert self.default_resolution is not None and self.default_ratio is not None
            return size_for(self.default_resolution, self.default_ratio)
        assert self.default_size is not None
        return parse_size(self.default_size)

    # -- what people read -----------------------------------------------------------------

    @property
    def kind_name(self) -> str:
        if self.kind == "t2v" and self.first_frame:
            return "text or image to video"
        return KIND_NAMES[self.kind]

    def seconds_label(self) -> str:
        if self.durations_are_range or len(self.durations) > 4:
            return f"{self.durations[0]}-{self.durations[-1]} s"
        return "/".join(str(s) for s in self.durations) + " s"

    def estimate_usd(self, seconds: int) -> float:
        return self.price.estimate(seconds)

    def frame_choices(self) -> tuple[str, ...]:
        """Sizes, or resolutions x ratios, for listings."""
        if self.dimensions == "width_height":
            return self.sizes
        return tuple(f"{r} {q}" for r in self.resolutions for q in self.ratios)


def _upgrade_legacy(data: dict[str, Any]) -> None:
    """Entries written for the first catalog format (first_frame/last_frame/reference_images
    booleans, price_usd per video) still load."""
    flags = ("first_frame", "last_frame", "reference_images")
    if any(isinstance(data.get(flag), bool) for flag in flags) and "inputs" not in data:
        defaults = {"first_frame": True, "last_frame": False, "reference_images": False}
        data["inputs"] = tuple(f for f in flags if data.get(f, defaults[f]))
    for flag in flags:
        if isinstance(data.get(flag), bool):
            data.pop(flag)
    if "price_usd" in data and "price" not in data:
        data["price"] = {"usd": data.pop("price_usd"), "per": "video"}


class Catalog:
    """The models known to the bot, in a stable order, looked up by id (case-insensitive).

    Iteration and search give the enabled models only; `get` finds switched-off ones too so
    that old jobs still show their model's name, and `all_models` lists everything.
    """

    def __init__(
        self, models: Iterable[ModelSpec], sources: Iterable[str] = (), updated: str = ""
    ) -> None:
        self._models: dict[str, ModelSpec] = {}
        for model in models:
            self._models[model.id.lower()] = model
        self.sources = tuple(sources)
        self.updated = updated

    def __iter__(self) -> Iterator[ModelSpec]:
        return (m for m in self._models.values() if m.enabled)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def all_models(self) -> list[ModelSpec]:
        return list(self._models.values())

    def get(self, model_id: str) -> ModelSpec | None:
        return self._models.get(model_id.strip().lower())

    def search(self, text: str, limit: int = 25) -> list[ModelSpec]:
        """Enabled models whose id, name or kind contains the typed text, for autocomplete."""
        needle = text.strip().lower()
        found = [
            m
            for m in self
            if needle in m.id.lower() or needle in m.name.lower() or needle in m.kind_name
        ]
        return found[:limit]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"model catalog {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"model catalog {path} is not readable JSON: {exc}") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogError(f'model catalog {path} must be an object with a "models" list')
    return cast("dict[str, Any]", data)


def _validated(path: Path, index: int, entry: Any) -> ModelSpec:
    try:
        return ModelSpec.model_validate(entry)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "entry"
        label = entry.get("id", f"#{index + 1}") if isinstance(entry, dict) else f"#{index + 1}"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise CatalogError(f"model catalog {path}: model {label}: {where}: {msg}") from None


def load_catalog(override: Path | None = None) -> Catalog:
    """The bundled catalog, with the override file's entries merged in by id."""
    bundled = _read_file(BUNDLED_CATALOG)
    raw: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(bundled["models"]):
        _validated(BUNDLED_CATALOG, index, entry)
        raw[str(entry["id"]).lower()] = dict(entry)
    models = {key: ModelSpec.model_validate(entry) for key, entry in raw.items()}
    if override is not None:
        for index, entry in enumerate(_read_file(override)["models"]):
            known = raw.get(str(entry.get("id", "")).lower()) if isinstance(entry, dict) else None
            merged = {**known, **entry} if known is not None else entry
            if known is not None and isinstance(entry, dict):
                # A legacy price or flag in the override replaces the bundled new-style one.
                if "price_usd" in entry:
                    merged.pop("price", None)
                if any(flag in entry for flag in ("first_frame", "last_frame", "reference_images")):
                    merged.pop("inputs", None)
            model = _validated(override, index, merged)
            models[model.id.lower()] = model
    return Catalog(
        models.values(),
        sources=[str(s) for s in bundled.get("sources", [])],
        updated=str(bundled.get("updated", "")),
    )
