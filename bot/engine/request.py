"""The POST body for a stored job: exactly what the member asked for."""

from __future__ import annotations

import math

from bot.domain.catalog import ModelSpec
from bot.media.keyframes import to_base64
from bot.together.models import CreateVideoRequest, FrameImage, VideoMedia
from storage.models import Job


def build_request(
    job: Job, images: dict[str, bytes] | None = None, model: ModelSpec | None = None
) -> CreateVideoRequest:
    dimensions: dict[str, object] = {"width": job.width, "height": job.height}
    if model is not None and model.dimensions == "resolution_ratio":
        resolution, ratio = resolution_and_ratio(job.width, job.height)
        dimensions = {"resolution": resolution, "ratio": ratio}
    return CreateVideoRequest(
        model=job.model,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        seconds=str(job.seconds),
        fps=job.fps,
        steps=job.steps,
        seed=job.seed,
        guidance_scale=job.guidance_scale,
        output_format="WEBM" if job.output_format == "WEBM" else "MP4",
        media=media(images or {}),
        **dimensions,  # type: ignore[arg-type]
    )


def media(images: dict[str, bytes]) -> VideoMedia | None:
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
