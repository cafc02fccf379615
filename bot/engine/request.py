"""The POST body for a stored job: exactly what the member asked for.

The one place that knows Together's field names. Every VideoParams field goes into
CreateVideoRequest under its own name, as it is, but the ones in SHAPED: a new parameter whose
name is Together's needs nothing here (CreateVideoRequest forbids names it does not know, so a
mismatch fails at once).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from bot.domain.catalog import ModelSpec
from bot.media.keyframes import to_base64
from bot.together.models import CreateVideoRequest, FrameImage, VideoMedia
from storage.models import Job, VideoParams

# VideoParams fields Together takes in another shape, built below.
SHAPED = frozenset({"width", "height", "output_format", "media"})
AS_IS = tuple(f.name for f in dataclasses.fields(VideoParams) if f.name not in SHAPED)


def build_request(
    job: Job, images: Mapping[str, bytes] | None = None, model: ModelSpec | None = None
) -> CreateVideoRequest:
    params = job.params
    body: dict[str, object] = {name: getattr(params, name) for name in AS_IS}
    if model is not None and model.dimensions == "resolution_ratio":
        body["resolution"], body["ratio"] = resolution_and_ratio(params.width, params.height)
    else:
        body["width"], body["height"] = params.width, params.height
    body["output_format"] = "WEBM" if params.output_format == "WEBM" else "MP4"
    body["media"] = media(images or {})
    return CreateVideoRequest(model=job.model, **body)  # type: ignore[arg-type]


def media(images: Mapping[str, bytes]) -> VideoMedia | None:
    frames: list[FrameImage] = []
    if "first_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["first_frame"]), frame=0))
    if "last_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["last_frame"]), frame="last"))
    references = [to_base64(images["reference"])] if "reference" in images else []
    if not frames and not references:
        return None
    return VideoMedia(frame_images=frames or None, reference_images=references or None)


def resolution_and_ratio(width: int, height: int) -> tuple[str, str]:
    """1280x720 -> ("720p", "16:9"), for models that take these instead of width and height."""
    divisor = math.gcd(width, height)
    return f"{min(width, height)}p", f"{width // divisor}:{height // divisor}"
