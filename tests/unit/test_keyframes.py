"""Checking and preparing keyframe images; every image is made here with Pillow."""

from __future__ import annotations

import asyncio
import base64
import io
import random
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from PIL import Image, ImageFile

from bot.domain.errors import InvalidOptionError
from bot.media.keyframes import (
    MAX_KEYFRAME_BYTES,
    KeyframeError,
    check_declared_size,
    prepare_keyframe,
    prepare_keyframe_async,
    to_base64,
)

Colour = tuple[int, int, int]

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
OPTION = "first_frame"


@pytest.fixture(autouse=True)
def pillow_globals_untouched() -> Iterator[None]:
    pixels, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    yield
    assert pixels == Image.MAX_IMAGE_PIXELS, "Image.MAX_IMAGE_PIXELS was changed"
    assert warnings.filters == filters


# --------------------------------------------------------------------------- helpers


def encode(image: Image.Image, image_format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def prepare(data: bytes, width: int = 160, height: int = 90) -> Image.Image:
    """Run prepare_keyframe and check the invariants every output must meet."""
    result = Image.open(io.BytesIO(prepare_keyframe(OPTION, data, width, height)))
    assert result.format == "JPEG"
    assert result.size == (width, height)
    assert result.mode == "RGB"
    return result


def assert_colour(image: Image.Image, xy: tuple[int, int], expected: Colour) -> None:
    actual = image.getpixel(xy)
    assert isinstance(actual, tuple)
    # JPEG is lossy: close is enough.
    assert all(abs(a - e) <= 20 for a, e in zip(actual, expected, strict=True)), (actual, expected)


def refusal(data: bytes, width: int = 160, height: int = 90) -> str:
    with pytest.raises(KeyframeError) as caught:
        prepare_keyframe(OPTION, data, width, height)
    assert f"`{OPTION}`" in caught.value.message
    return caught.value.message


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose header claims ``width`` x ``height`` greyscale pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + png_chunk(b"IEND", b"")
    )


def halves(size: tuple[int, int], left: Colour, right: Colour) -> Image.Image:
    image = Image.new("RGB", size, left)
    image.paste(right, (size[0] // 2, 0, size[0], size[1]))
    return image


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data gets decoded."""

    def refuse_to_load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_load)


# --------------------------------------------------------------------------- accepted images


@pytest.mark.parametrize(
    ("image_format", "params"),
    [("PNG", {}), ("JPEG", {}), ("WEBP", {}), ("GIF", {}), ("WEBP", {"lossless": True})],
)
def test_each_allowed_format_becomes_a_jpeg_of_the_target_size(
    image_format: str, params: dict[str, Any]
) -> None:
    data = encode(Image.new("RGB", (320, 180), BLUE), image_format, **params)
    assert_colour(prepare(data), (80, 45), BLUE)


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (720, 1280), (1, 1), (999, 333)])
def test_output_is_exactly_the_requested_size(width: int, height: int) -> None:
    data = encode(Image.new("RGB", (50, 70), GREEN), "PNG")
    prepare(data, width, height)


def test_transparent_areas_become_white_not_black() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (100, 0, 200, 100))
    result = prepare(encode(image, "PNG"), 200, 100)
    assert_colour(result, (40, 50), WHITE)
    assert_colour(result, (160, 50), RED)


def test_half_transparent_pixels_are_blended_on_white() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 128))
    assert_colour(prepare(encode(image, "PNG"), 20, 20), (10, 10), (127, 127, 127))


def test_greyscale_with_alpha_is_accepted() -> None:
    image = Image.new("LA", (20, 20), (0, 0))
    assert_colour(prepare(encode(image, "PNG"), 20, 20), (10, 10), WHITE)


def test_palette_png_keeps_its_colours_and_transparent_index_is_white() -> None:
    image = Image.new("P", (200, 100), 0)
    image.putpalette([*RED, *GREEN])
    image.paste(1, (100, 0, 200, 100))
    result = prepare(encode(image, "PNG", transparency=0), 200, 100)
    assert_colour(result, (40, 50), WHITE)
    assert_colour(result, (160, 50), GREEN)


def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white() -> None:
    image = Image.new("I;16", (20, 20), 32768)
    assert_colour(prepare(encode(image, "PNG"), 20, 20), (10, 10), (128, 128, 128))


def test_cmyk_jpeg_becomes_rgb() -> None:
    image = Image.new("CMYK", (40, 40), (0, 255, 255, 0))
    assert_colour(prepare(encode(image, "JPEG"), 40, 40), (20, 20), RED)


def test_multi_picture_jpeg_from_a_camera_is_accepted() -> None:
    first, second = Image.new("RGB", (40, 40), RED), Image.new("RGB", (40, 40), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert_colour(prepare(data, 40, 40), (20, 20), RED)


@pytest.mark.parametrize(
    ("image_format", "params"),
    [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],
    ids=["gif", "webp", "apng"],
)
def test_animated_images_use_their_first_frame(image_format: str, params: dict[str, Any]) -> None:
    frames = [Image.new("RGB", (60, 60), colour) for colour in (RED, GREEN, BLUE)]
    data = encode(
        frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, **params
    )
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert_colour(prepare(data, 60, 60), (30, 30), RED)


def test_exif_orientation_is_applied() -> None:
    # Stored 200x100, left red and right blue; orientation 6 shows it turned a quarter
    # clockwise: 100x200, red on top and blue below.
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(halves((200, 100), RED, BLUE), "JPEG", exif=exif.tobytes())
    result = prepare(data, 100, 200)
    assert_colour(result, (50, 30), RED)
    assert_colour(result, (50, 170), BLUE)


def test_wide_image_is_cropped_around_its_centre() -> None:
    image = Image.new("RGB", (400, 100), RED)
    image.paste(GREEN, (133, 0, 267, 100))
    image.paste(BLUE, (267, 0, 400, 100))
    result = prepare(encode(image, "PNG"), 100, 100)
    for xy in [(1, 1), (50, 50), (98, 98), (1, 98), (98, 1)]:
        assert_colour(result, xy, GREEN)


def test_large_jpeg_is_prepared_quickly() -> None:
    data = encode(halves((4000, 3000), RED, BLUE), "JPEG")
    started = time.perf_counter()
    result = prepare(data, 160, 120)
    assert time.perf_counter() - started < 2
    assert_colour(result, (20, 60), RED)
    assert_colour(result, (140, 60), BLUE)


def test_output_carries_no_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Phone Maker"  # Make
    data = encode(Image.new("RGB", (40, 40), RED), "JPEG", exif=exif.tobytes())
    assert len(prepare(data, 40, 40).getexif()) == 0


async def test_concurrent_calls_from_threads_all_finish() -> None:
    data = encode(Image.new("RGB", (300, 200), GREEN), "PNG")
    results = await asyncio.gather(
        *(asyncio.to_thread(prepare_keyframe, OPTION, data, 64, 64) for _ in range(6))
    )
    assert len(set(results)) == 1


# --------------------------------------------------------------------------- keyframe executor


class BlockingDecode:
    """Stands in for prepare_keyframe: blocks its thread until released, noting who ran it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.threads: list[str] = []
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def __call__(self, option: str, data: bytes, width: int, height: int) -> bytes:
        with self._lock:
            self.threads.append(threading.current_thread().name)
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        self.started.set()
        self.release.wait(timeout=60)
        with self._lock:
            self._running -= 1
        return data


async def wait_for_event(event: threading.Event) -> None:
    # Polled from the loop: waiting in a thread would need the very executor under test.
    for _ in range(1000):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the event was never set")


async def test_async_wrapper_gives_the_same_jpeg() -> None:
    data = encode(Image.new("RGB", (300, 200), GREEN), "PNG")
    assert await prepare_keyframe_async(OPTION, data, 64, 64) == prepare_keyframe(
        OPTION, data, 64, 64
    )


async def test_async_wrapper_passes_refusals_on() -> None:
    with pytest.raises(KeyframeError, match="PNG, JPEG, WEBP or GIF"):
        await prepare_keyframe_async(OPTION, b"not an image at all", 64, 64)


async def test_slow_decodes_leave_the_default_executor_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A default executor of two threads: three decodes on it would leave no thread free.
    small_default = ThreadPoolExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(small_default)
    decode = BlockingDecode()
    monkeypatch.setattr("bot.media.keyframes.prepare_keyframe", decode)
    decodes = [
        asyncio.create_task(prepare_keyframe_async(OPTION, b"%d" % n, 64, 64)) for n in range(3)
    ]
    try:
        await wait_for_event(decode.started)

        unrelated = await asyncio.wait_for(asyncio.to_thread(lambda: "done"), timeout=30)

        assert unrelated == "done"
        assert not any(task.done() for task in decodes)  # still decoding meanwhile
    finally:
        decode.release.set()
    assert await asyncio.gather(*decodes) == [b"0", b"1", b"2"]
    # All on the keyframe executor, one image at a time.
    assert all(name.startswith("keyframes") for name in decode.threads)
    assert decode.most_at_once == 1


# --------------------------------------------------------------------------- refused content


def test_text_file_named_png_is_refused() -> None:
    message = refusal(b"This is not a picture, whatever its file name says.\n" * 20)
    assert "PNG, JPEG, WEBP or GIF" in message


def test_random_bytes_are_refused() -> None:
    assert "PNG, JPEG, WEBP or GIF" in refusal(random.Random(0).randbytes(4096))


def test_empty_data_is_refused() -> None:
    refusal(b"")


@pytest.mark.parametrize("image_format", ["BMP", "TIFF", "PPM", "ICO"])
def test_formats_pillow_reads_but_we_do_not_accept_are_refused(image_format: str) -> None:
    data = encode(Image.new("RGB", (32, 32), RED), image_format)
    assert "PNG, JPEG, WEBP or GIF" in refusal(data)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_files_are_refused(image_format: str) -> None:
    noise = Image.frombytes("RGB", (128, 128), random.Random(1).randbytes(128 * 128 * 3))
    data = encode(noise, image_format)
    refusal(data[: len(data) // 2])


def test_corrupt_png_data_is_refused() -> None:
    data = bytearray(encode(Image.new("RGB", (64, 64), RED), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 20] = b"\xff" * 12  # garbage in the compressed stream
    refusal(bytes(data))


def test_zero_sized_image_is_refused() -> None:
    refusal(png_claiming(0, 10))


# --------------------------------------------------------------------------- size limits


def test_header_claiming_ten_billion_pixels_is_refused_without_decoding(no_decoding: None) -> None:
    data = png_claiming(100_000, 100_000)
    assert len(data) < 100
    started = time.perf_counter()
    assert "40 megapixels" in refusal(data)
    assert time.perf_counter() - started < 0.5


def test_header_just_over_the_pixel_cap_is_refused_without_decoding(no_decoding: None) -> None:
    # 50 MP: under Pillow's own bomb guard, so this is our limit at work.
    message = refusal(png_claiming(10_000, 5_000))
    assert "10000x5000 pixels" in message
    assert "40 megapixels" in message


@pytest.fixture(scope="module")
def png_48_megapixels() -> bytes:
    # Uniform black compresses to a few tens of kilobytes.
    return encode(Image.new("L", (8000, 6000)), "PNG", compress_level=9)


def test_real_48_megapixel_image_is_refused(png_48_megapixels: bytes, no_decoding: None) -> None:
    assert len(png_48_megapixels) < 100_000
    message = refusal(png_48_megapixels)
    assert "8000x6000 pixels" in message
    assert "40 megapixels" in message


@pytest.mark.parametrize("side", [40, 100], ids=["bomb-warning", "bomb-error"])
def test_pillows_own_bomb_guard_is_a_refusal(monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    # With the guard lowered to 1000 px, 40x40 only warns and 100x100 raises in Pillow.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(Image.new("RGB", (side, side), RED), "PNG")
    assert "40 megapixels" in refusal(data)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_declared_size_over_the_cap_is_refused_before_download() -> None:
    with pytest.raises(KeyframeError) as caught:
        check_declared_size(OPTION, 31_500_000)
    message = caught.value.message
    assert message == "`first_frame` is 31.5 MB; images can be at most 20 MB."


def test_declared_size_just_over_the_cap_never_reads_as_the_cap() -> None:
    with pytest.raises(KeyframeError, match=r"20\.1 MB;"):
        check_declared_size("last_frame", MAX_KEYFRAME_BYTES + 1)


def test_declared_size_at_the_cap_is_fine() -> None:
    check_declared_size(OPTION, MAX_KEYFRAME_BYTES)
    check_declared_size(OPTION, 0)


def test_data_over_the_cap_is_refused_without_opening_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_to_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("image was opened")

    monkeypatch.setattr(Image, "open", refuse_to_open)
    data = png_claiming(10, 10).ljust(MAX_KEYFRAME_BYTES + 1, b"\x00")
    assert "images can be at most 20 MB" in refusal(data)


def test_keyframe_error_is_an_invalid_option_error() -> None:
    assert issubclass(KeyframeError, InvalidOptionError)


# --------------------------------------------------------------------------- base64


def test_to_base64_round_trips_without_a_data_prefix() -> None:
    jpeg = prepare_keyframe(OPTION, encode(Image.new("RGB", (30, 30), RED), "PNG"), 30, 30)
    encoded = to_base64(jpeg)
    assert not encoded.startswith("data:")
    assert "\n" not in encoded
    assert base64.b64decode(encoded, validate=True) == jpeg
