"""The POST body for a stored job: exactly what the member asked for.

The one place that knows Together's field names. Every VideoParams field goes into
CreateVideoRequest under its own name, as it is, but the ones in SHAPED: a new parameter whose
name is Together's needs nothing here (CreateVideoRequest forbids names it does not know, so a
mismatch fails at once).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from bot.domain.catalog import ModelSpec
from bot.media.keyframes import to_base64
from bot.together.models import AudioLink, CreateVideoRequest, FrameImage, VideoLink, VideoMedia
from storage.models import Job, MediaLink, VideoParams

# VideoParams fields Together takes in another shape, built below.
SHAPED = frozenset({"width", "height", "output_format", "media"})
AS_IS = tuple(f.name for f in dataclasses.fields(VideoParams) if f.name not in SHAPED)


def build_request(
    job: Job,
    images: Mapping[str, bytes] | None = None,
    model: ModelSpec | None = None,
    links: Sequence[MediaLink] = (),
) -> CreateVideoRequest:
    params = job.params
    body: dict[str, object] = {name: getattr(params, name) for name in AS_IS}
    # With resolution and ratio (sent as they are), width and height only describe the frame.
    if params.resolution is None:
        if model is not None and model.dimensions == "resolution_ratio":
            # Stored before resolution and ratio were columns: derived from the frame.
            body["resolution"], body["ratio"] = resolution_and_ratio(params.width, params.height)
        else:
            body["width"], body["height"] = params.width, params.height
    body["output_format"] = "WEBM" if params.output_format == "WEBM" else "MP4"
    body["media"] = media(images or {}, links, model)
    return CreateVideoRequest(model=job.model, **body)  # type: ignore[arg-type]


def media(
    images: Mapping[str, bytes],
    links: Sequence[MediaLink] = (),
    model: ModelSpec | None = None,
) -> VideoMedia | None:
    fields: dict[str, object] = {}
    frames: list[FrameImage] = []
    if "first_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["first_frame"]), frame=0))
    if "last_frame" in images:
        frames.append(FrameImage(input_image=to_base64(images["last_frame"]), frame="last"))
    if frames:
        fields["frame_images"] = frames
    if "reference" in images:
        fields["reference_images"] = [to_base64(images["reference"])]
    for link in links:
        if link.kind == "soundtrack":
            fields["audio_inputs"] = [AudioLink(audio=link.url)]
        elif link.kind == "video":
            # Where a clip goes depends on the model's kind: continued (i2v), followed (r2v)
            # or edited (videoedit). The option check made sure the model takes one.
            target = (model.video_input_field if model else None) or "frame_videos"
            clip = VideoLink(video=link.url)
            fields[target] = clip if target == "source_video" else [clip]
    return VideoMedia.model_validate(fields) if fields else None


def resolution_and_ratio(width: int, height: int) -> tuple[str, str]:
    """1280x720 -> ("720P", "16:9"), for models that take these instead of width and height."""
    divisor = math.gcd(width, height)
    return f"{min(width, height)}P", f"{width // divisor}:{height // divisor}"
