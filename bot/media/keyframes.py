"""Keyframe images: checking and preparing what members attach to /video.

Members can attach a first frame, a last frame or a reference image. The files are untrusted, so
each one passes these checks, cheapest first, before anything is sent to Together:

* **Declared size before download** (:func:`check_declared_size`): Discord tells us the
  attachment's size, so an oversized file is refused without fetching a byte. The declared size
  can lie, so :func:`prepare_keyframe` checks the real length again.
* **Content sniffing, not names**: the format comes from Pillow reading the bytes, and only the
  PNG, JPEG, WEBP and GIF decoders are ever tried. A file name or content type says nothing, and
  keeping other decoders (EPS, which runs Ghostscript; TIFF; PSD...) out of reach shrinks what a
  hostile file can attack.
* **Header dimensions before decoding**: ``Image.open`` is lazy and only parses the header, so
  the pixel count is checked before any pixel is decoded. A few kilobytes of compressed data can
  claim billions of pixels (a decompression bomb); this stops it before it takes memory.
  Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``) is left as configured; its error, and its
  warning turned into an error here, are refusals too.
* **Corrupt or truncated files** raise :class:`KeyframeError` with a message for the member,
  never a bare Pillow exception.

Decoding is CPU-heavy and, for a 40-megapixel image, takes seconds. It runs on a small executor
of its own (:func:`prepare_keyframe_async`), never on asyncio's default one: with the default
one, a handful of large keyframes occupied every worker thread, and every other
``asyncio.to_thread`` in the bot (downloads included) waited behind them.

The output is always an upright (EXIF orientation applied), RGB, centre-cropped JPEG of exactly
the requested size. Animated images (GIF, WEBP, APNG) contribute their first frame only. The
JPEG carries no metadata, so location data in a phone photo is not passed on.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import struct
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.domain.errors import InvalidOptionError
from bot.i18n import option_name

MAX_KEYFRAME_BYTES = 20 * 1000 * 1000
MAX_KEYFRAME_PIXELS = 40_000_000
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF"})

JPEG_QUALITY = 90

# Pillow reports a multi-picture JPEG (common from phone cameras) as MPO; its first picture is a
# plain JPEG, which is all that is used.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# What Pillow's decoders raise on hostile or damaged input. UnidentifiedImageError is an OSError.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    OverflowError,
    NotImplementedError,
)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)

# One image at a time: bounds peak memory (a 40 MP RGBA image is 160 MB) and keeps the
# process-wide warnings filter that catch_warnings swaps from racing between worker threads.
_DECODE_LOCK = threading.Lock()
# Keyframes' own worker, so decoding never holds up asyncio's default executor. One thread is
# all the lock above lets work anyway; the others would only sit waiting for it.
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keyframes")


class KeyframeError(InvalidOptionError):
    """An attached image cannot be used; ``message`` tells the member why."""


def check_declared_size(option: str, size: int) -> None:
    """Refuse an attachment whose declared size is over the cap, before downloading it."""
    if size > MAX_KEYFRAME_BYTES:
        raise _too_many_bytes(option, size)


def prepare_keyframe(option: str, data: bytes, width: int, height: int) -> bytes:
    """Check ``data`` and return it as an RGB JPEG of exactly ``width`` x ``height``.

    ``option`` is the /video option the image came from, named in any refusal. CPU-bound and
    blocking: from the event loop, call :func:`prepare_keyframe_async` instead. Raises
    :class:`KeyframeError` for anything that is not a usable PNG, JPEG, WEBP or GIF within the
    limits.
    """
    if len(data) > MAX_KEYFRAME_BYTES:
        raise _too_many_bytes(option, len(data))
    try:
        with _DECODE_LOCK, _bomb_warnings_as_errors():
            frame = _decode_first_frame(option, data, width, height)
            upright = _apply_exif_orientation(frame)
            fitted = ImageOps.fit(_to_rgb(upright), (width, height), Image.Resampling.LANCZOS)
            return _encode_jpeg(fitted)
    except _BOMB_ERRORS as exc:
        raise KeyframeError(
            "image.too_many_pixels", option=option_name(option), megapixels=_megapixels()
        ) from exc
    except MemoryError as exc:
        raise KeyframeError("image.too_large", option=option_name(option)) from exc
    except _DECODE_ERRORS as exc:
        raise KeyframeError("image.unreadable", option=option_name(option)) from exc


async def prepare_keyframe_async(option: str, data: bytes, width: int, height: int) -> bytes:
    """:func:`prepare_keyframe` on the keyframe executor, one image at a time, leaving asyncio's
    default executor free for everything else. Cancelling the await does not stop a decode
    already under way; it runs to its end in the background."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, prepare_keyframe, option, data, width, height)


def to_base64(jpeg: bytes) -> str:
    """Plain base64 without a ``data:`` prefix, as Together's ``input_image`` expects."""
    return base64.b64encode(jpeg).decode("ascii")


# --------------------------------------------------------------------------- steps


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    # Locally only: Image.MAX_IMAGE_PIXELS and the global filters stay as they were.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _decode_first_frame(option: str, data: bytes, width: int, height: int) -> Image.Image:
    """Sniff and size-check the header, then decode the first frame only."""
    try:
        image = Image.open(io.BytesIO(data), formats=tuple(ALLOWED_FORMATS))
    except UnidentifiedImageError as exc:
        raise _not_an_image(option) from exc
    image_format = _FORMAT_ALIASES.get(image.format or "", image.format)
    if image_format not in ALLOWED_FORMATS:
        raise _not_an_image(option)
    _check_dimensions(option, *image.size)
    # JPEG can decode at 1/2, 1/4 or 1/8 scale: big photos cost less. Both sides are kept at
    # least the output's longer side so the crop never has to be upscaled because of this.
    side = max(width, height)
    image.draft(None, (side, side))
    # Stays on frame 0: n_frames or seek() would walk every frame of a hostile animation.
    image.load()
    return image


def _check_dimensions(option: str, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise KeyframeError(
            "image.no_pixels", option=option_name(option), width=width, height=height
        )
    if width * height > MAX_KEYFRAME_PIXELS:
        raise KeyframeError(
            "image.dimensions",
            option=option_name(option),
            width=width,
            height=height,
            megapixels=_megapixels(),
        )


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    # A photo with a broken EXIF block is still a usable photo: keep it as stored.
    try:
        return ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparent areas become white, not black."""
    if image.mode.startswith("I"):
        # 16-bit greyscale: scale down rather than let convert() clip everything to white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


# --------------------------------------------------------------------------- messages


def _too_many_bytes(option: str, size: int) -> KeyframeError:
    # Rounded up so a file just over the cap never reads as "20.0 MB".
    shown = math.ceil(size / 100_000) / 10
    limit = MAX_KEYFRAME_BYTES // 1_000_000
    return KeyframeError(
        "image.too_big", option=option_name(option), size=f"{shown:g}", limit=limit
    )


def _not_an_image(option: str) -> KeyframeError:
    return KeyframeError("image.not_image", option=option_name(option))


def _megapixels() -> int:
    return MAX_KEYFRAME_PIXELS // 1_000_000
