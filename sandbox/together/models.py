"""The video models the stand-in knows, from /work/shared/together-facts.md."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a job reports for `seconds` and `size` when the request leaves them out."""

    seconds: str
    size: str


_VEO3 = ModelSpec("8", "1280x720")
_KLING = ModelSpec("5", "1920x1080")
_SEEDANCE = ModelSpec("5", "864x480")

# The one list of model ids the stand-in accepts; anything else is a 400 like the real API.
MODELS: dict[str, ModelSpec] = {
    "google/veo-3.0": _VEO3,
    "google/veo-3.0-audio": _VEO3,
    "google/veo-3.0-fast": _VEO3,
    "google/veo-3.0-fast-audio": _VEO3,
    "google/veo-2.0": ModelSpec("5", "1280x720"),
    "openai/sora-2": ModelSpec("8", "1280x720"),
    "openai/sora-2-pro": ModelSpec("8", "1280x720"),
    "minimax/hailuo-02": ModelSpec("10", "1366x768"),
    "minimax/video-01-director": ModelSpec("5", "1366x768"),
    "kwaivgI/kling-2.1-master": _KLING,
    "kwaivgI/kling-2.1-standard": _KLING,
    "kwaivgI/kling-2.1-pro": _KLING,
    "ByteDance/Seedance-1.0-pro": _SEEDANCE,
    "ByteDance/Seedance-1.0-lite": _SEEDANCE,
    "pixverse/pixverse-v5": ModelSpec("5", "1280x720"),
    "vidu/vidu-2.0": ModelSpec("8", "1280x720"),
    "vidu/vidu-q1": ModelSpec("5", "1920x1080"),
}
