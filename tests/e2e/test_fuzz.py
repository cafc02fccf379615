"""Property: every /video gets an answer, and nothing refused reaches Together.

Hypothesis generates /video commands (control characters, 6000-character strings, huge and
negative numbers, unknown models, omitted options, attachments of every kind) and sends them
through the Discord stand-in to the real bot. For each one: the member gets an answer within
ANSWER_TIMEOUT, either the public progress message (accepted) or a private refusal naming an
option; a refusal never reaches Together and an acceptance reaches it exactly once; no answer
shows the bot's generic failure text or a traceback. Where the README is explicit the verdict
is checked too: documented-valid commands are accepted, and out-of-range values, blank
prompts, unknown models and files that are not usable images are refused. At the end every
accepted job has finished, Together got exactly one POST per acceptance, no WARNING+ log record
carries an exception, and nothing was logged at ERROR.

How it runs: starting the bot costs about 2 s, so ONE stack serves every example. The stack
lives in this async test's event loop (the ordinary `make_stack` fixture); the @given function
is an inner, synchronous function that Hypothesis drives in a worker thread
(`asyncio.to_thread`), and each example hands its coroutine back to the loop with
`asyncio.run_coroutine_threadsafe`. So no fixture is function-scoped from Hypothesis's point of
view (no health check to suppress), and the loop stays free to run the bot while an example
waits.

Settings: EXAMPLES generated commands after the explicit examples (each documented limit
crossed alone, each kind of file once), derandomized (the same commands on every run, so a
failure reproduces) and without an example database. There is no shrinking and the first
failure stops the run: a failure can cost ANSWER_TIMEOUT per attempt, and a shrink would
outlast pytest's timeout; the failing command is printed as drawn. About 10 s in all; run with
-s to see a tally of acceptances and refusals.

Attribution: an accepted command's Together POST is awaited before the next command is sent,
so while any example runs no other POST can be on its way: the POST count before and after an
example says exactly what that example sent (one if accepted, none if refused). Refused
commands create no job, so a POST arriving later would still break the final count.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.client import GENERIC_FAILURE
from bot.domain.catalog import ModelSpec, load_catalog
from bot.i18n import translate
from bot.settings import Settings
from sandbox.discord_api import Interaction, Message
from sandbox.harness import Stack
from sandbox.together import JobScript
from tests.e2e.conftest import StackFactory

EXAMPLES = 200
ANSWER_TIMEOUT = 10.0  # seconds until the member must see an answer
POST_TIMEOUT = 10.0  # seconds until an accepted job must have been sent to Together
SETTLE_TIMEOUT = 30.0  # seconds for every accepted job to reach a final state at the end
EPHEMERAL = 64

# Together finishes every job almost at once, so accepted jobs do not pile up.
INSTANT_JOB = JobScript(queue_seconds=0.05, run_seconds=0.1)
# High limits, so every refusal comes from the option checks, not from a quota. (Settings caps
# DEFAULT_USER_CONCURRENT at 1000; accepted jobs finish in well under a second anyway.)
NO_QUOTA: dict[str, Any] = {
    "default_user_daily": 100_000,
    "default_guild_daily": 100_000,
    "default_user_concurrent": 1000,
    "default_monthly_budget_usd": 1_000_000,
}

CATALOG = load_catalog()
MODELS: list[ModelSpec] = list(CATALOG)
MODEL_IDS = [model.id for model in MODELS]
# An edit model needs a clip; the clip paths are covered in test_together_2026.py.
IMAGE_MODELS = [model for model in MODELS if model.kind != "videoedit"]
# What an image-to-video or reference model needs to make anything.
REQUIRED_IMAGE = {"i2v": "first_frame", "r2v": "reference"}
DEFAULT_MODEL = str(Settings.model_fields["default_model"].default)
ALL_SIZES = sorted({size for model in MODELS for size in model.sizes})
ALL_DURATIONS = frozenset(seconds for model in MODELS for seconds in model.durations)
UNKNOWN_MODEL_PREFIX = "unknown-vendor/"  # no catalog id starts with this

# The ranges the README documents for /video.
DOCUMENTED_RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 4_294_967_295),
    "steps": (10, 50),
    "guidance": (1, 20),
    "fps": (1, 60),
    "quality": (1, 50),
}
VIDEO_OPTIONS = frozenset(
    {
        "prompt",
        "model",
        "size",
        "resolution",
        "ratio",
        "audio",
        "quality",
        "video",
        "soundtrack",
        "first_frame",
        "last_frame",
        "reference",
        "seconds",
        "seed",
        "negative_prompt",
        "steps",
        "guidance",
        "fps",
        "format",
    }
)
# Image option -> the catalog attribute saying whether a model takes it.
IMAGE_OPTIONS = {
    "first_frame": "first_frame",
    "last_frame": "last_frame",
    "reference": "reference_images",
}
FINAL_TITLES = frozenset(
    {"Your video is ready", "The video could not be made", "The video took too long", "Cancelled"}
)
LEAKS = (
    "Traceback",
    'File "',
    translate("en", GENERIC_FAILURE).split(".")[0],
)  # "Something went wrong on..."


# --------------------------------------------------------------------------- attachments


@dataclass(frozen=True)
class Upload:
    """One attached file; `usable` is True for a real image within the limits, False for a file
    that must be refused, None when it cannot be told without decoding (fuzzed headers)."""

    kind: str
    filename: str
    data: bytes = field(repr=False)
    content_type: str
    usable: bool | None

    def __repr__(self) -> str:
        return (
            f"Upload({self.kind!r}, {self.filename!r}, <{len(self.data)} bytes>, "
            f"{self.content_type!r})"
        )

    def spec(self) -> tuple[str, bytes, str]:
        return self.filename, self.data, self.content_type


def _encoded(image: Image.Image, image_format: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_with_header(
    width: int, height: int, bit_depth: int = 8, colour_type: int = 2, idat: bytes = b""
) -> bytes:
    """A PNG whose IHDR says anything (valid CRCs), with an optional IDAT payload."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    chunks = _png_chunk(b"IHDR", header)
    if idat:
        chunks += _png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + _png_chunk(b"IEND", b"")


def _usable_images() -> dict[str, bytes]:
    rgba = Image.new("RGBA", (48, 48), (0, 120, 200, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 24, 24))
    palette = Image.new("P", (30, 20), 1)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # orientation: rotate 90 degrees, as phone photos are
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "blue")]
    return {
        "png": _encoded(Image.new("RGB", (64, 36), (200, 30, 30)), "PNG"),
        "png-rgba-transparent": _encoded(rgba, "PNG"),
        "png-16-bit-grey": _encoded(Image.new("I;16", (32, 32), 40_000), "PNG"),
        "png-palette-transparent": _encoded(palette, "PNG", transparency=0),
        "png-1x1": _encoded(Image.new("L", (1, 1), 128), "PNG"),
        "apng": _encoded(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "jpeg": _encoded(Image.new("RGB", (80, 60), (10, 200, 10)), "JPEG"),
        "jpeg-cmyk": _encoded(Image.new("CMYK", (40, 40), (0, 255, 0, 0)), "JPEG"),
        "jpeg-exif-rotated": _encoded(Image.new("RGB", (60, 20), "white"), "JPEG", exif=rotated),
        "webp": _encoded(Image.new("RGB", (50, 50), (240, 240, 0)), "WEBP"),
        "gif-animated": _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]),
    }


def _unusable_files() -> dict[str, bytes]:
    noise = _encoded(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    return {
        "text-named-like-an-image": b"just some text, not an image",
        "empty": b"",
        "png-header-claiming-10-gigapixels": png_with_header(100_000, 100_000),
        "png-header-claiming-41-megapixels": png_with_header(8000, 5125),
        "png-header-with-zero-width": png_with_header(0, 10),
        "png-truncated": noise[: len(noise) // 2],
        "bmp": _encoded(Image.new("RGB", (20, 20)), "BMP"),
        "tiff": _encoded(Image.new("RGB", (20, 20)), "TIFF"),
        "gif-header-only": b"GIF89a" + struct.pack("<HH", 10, 10) + b"\x00\x00\x00",
        "jpeg-marker-only": b"\xff\xd8\xff",
    }


USABLE_IMAGES = _usable_images()
UNUSABLE_FILES = _unusable_files()
FILENAMES = ("image.png", "photo.jpg", "picture.webp", "anim.gif", "upload", "data.bin", "a.txt")
CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "application/octet-stream",
    "text/plain",
)


def _uploads(kinds: st.SearchStrategy[tuple[str, bytes, bool | None]]) -> st.SearchStrategy[Upload]:
    # The name and content type are drawn independently of the content: the bot must judge
    # a file by its bytes.
    return st.builds(
        lambda kind, filename, content_type: Upload(
            kind[0], filename, kind[1], content_type, kind[2]
        ),
        kinds,
        st.sampled_from(FILENAMES),
        st.sampled_from(CONTENT_TYPES),
    )


_usable_kinds = st.sampled_from([(k, v, True) for k, v in USABLE_IMAGES.items()])
_unusable_kinds = st.one_of(
    st.sampled_from([(k, v, False) for k, v in UNUSABLE_FILES.items()]),
    st.binary(min_size=1, max_size=1024).map(lambda data: ("random-bytes", data, False)),
    st.builds(
        png_with_header,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.sampled_from([0, 1, 2, 3, 4, 7, 8, 16]),
        st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7]),
        st.one_of(st.just(b""), st.binary(max_size=256), st.just(zlib.compress(bytes(300)))),
    ).map(lambda data: ("png-with-fuzzed-header", data, None)),
)
usable_uploads = _uploads(_usable_kinds)
unusable_uploads = _uploads(_unusable_kinds)
any_uploads = _uploads(st.one_of(_usable_kinds, _unusable_kinds))


# --------------------------------------------------------------------------- option values


def _repeated(chunks: st.SearchStrategy[str], low: int, high: int) -> st.SearchStrategy[str]:
    """Long strings, cheaply: a short drawn chunk repeated to a drawn length."""
    return st.builds(
        lambda chunk, length: (chunk * (length // len(chunk) + 1))[:length],
        chunks.filter(bool),
        st.integers(low, high),
    )


_no_surrogates = st.characters(codec="utf-8")  # what JSON from Discord can carry: no surrogates
_visible = st.characters(categories=("L", "M", "N", "P", "S", "Zs"))
_invisible = st.characters(categories=("Cc", "Cf", "Co", "Zs", "Zl", "Zp"))

wild_text = st.one_of(
    st.text(_no_surrogates, max_size=80),
    st.text(_invisible, max_size=30),  # control characters and whitespace only
    _repeated(st.text(_no_surrogates, min_size=1, max_size=12), 1000, 6000),
    st.sampled_from(
        ["", " ", "\t\n ", "\x00", "\u200b", "\ufeff", "@everyone", "<@123> <@&456>", "```", "\\"]
    ),
)


def visible_text(max_chars: int) -> st.SearchStrategy[str]:
    """Text that survives cleaning unchanged, with something besides blanks in it."""
    long = _repeated(st.text(_visible, min_size=1, max_size=12), 200, min(max_chars, 6000))
    return st.one_of(st.text(_visible, min_size=1, max_size=min(max_chars, 120)), long).filter(
        str.strip
    )


def _case_variant(model_id: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if flip else c.lower() for c, flip in zip(model_id, flips, strict=False)
    )


wild_models = st.one_of(
    st.sampled_from(MODEL_IDS),
    st.builds(_case_variant, st.sampled_from(MODEL_IDS), st.lists(st.booleans(), max_size=40)),
    st.builds(
        lambda m, pad: f"{pad}{m}{pad}",
        st.sampled_from(MODEL_IDS),
        st.sampled_from([" ", "\t", "\u3000"]),
    ),
    st.text(_no_surrogates, max_size=40),
    st.builds(lambda tail: UNKNOWN_MODEL_PREFIX + tail, st.text(_no_surrogates, max_size=20)),
    st.sampled_from(["", " ", "minimax", "../../etc/passwd", "google/veo-3.0\x00"]),
)

int64 = st.integers(-(2**63), 2**63 - 1)  # the stand-in sends any int; Discord caps at 2^53
_small_edges = [0, -1, 1, 5, 6, 8, 9, 10, 50, 51, 60, 61]
_big_edges = [2**31 - 1, 2**32 - 1, 2**32, 2**53, -(2**53), 2**63 - 1, -(2**63)]
edge_ints = st.sampled_from(_small_edges + _big_edges)
wild_ints = st.one_of(int64, edge_ints, st.integers(-100, 100))

# Finite only: Discord's JSON cannot carry NaN or infinity.
wild_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 0.9999999, 1.0, 20.0, 20.0000001, 5e-324, -1.0, 1e308, -1e308]),
    st.floats(0, 25),
)

wild_sizes = st.one_of(
    st.sampled_from(ALL_SIZES),
    st.text(_no_surrogates, max_size=30),
    st.builds(
        lambda w, sep, h: f"{w}{sep}{h}",
        wild_ints,
        st.sampled_from(["x", "X", " x ", "×", "*"]),
        wild_ints,
    ),
    st.sampled_from(["", "x", "1366x", " 1366X768 ", "0x0", "١٣٦٦x٧٦٨", "²x²", "9" * 5000 + "x1"]),
)

WILD: dict[str, st.SearchStrategy[Any]] = {
    "prompt": wild_text,
    "model": wild_models,
    "size": wild_sizes,
    "seconds": wild_ints,
    "seed": wild_ints,
    "negative_prompt": wild_text,
    "steps": wild_ints,
    "guidance": wild_floats,
    "fps": wild_ints,
    "format": st.sampled_from(["MP4", "WEBM"]),  # the stand-in enforces the choices
    "resolution": wild_text,
    "ratio": wild_text,
    "quality": wild_ints,
    "audio": st.booleans(),
}


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One /video command. `family` says how it was made: "valid" commands must be accepted;
    "mutated", "image" and "wild" ones may go either way; "edge" ones are explicit examples
    that must be refused naming `refused_for`, or accepted when that is None."""

    family: str
    options: dict[str, Any]  # "prompt" always; omitted options are absent
    files: dict[str, Upload] = field(default_factory=dict)
    refused_for: str | None = None


@st.composite
def valid_cases(draw: st.DrawFn) -> Case:
    """Only values the README documents as accepted, consistent with the chosen model."""
    spec = draw(st.sampled_from(IMAGE_MODELS))
    options: dict[str, Any] = {"prompt": draw(visible_text(spec.max_prompt_chars))}
    if spec.id != DEFAULT_MODEL or draw(st.booleans()):
        options["model"] = spec.id
    frame: dict[str, st.SearchStrategy[Any]] = (
        {"size": st.sampled_from(spec.sizes)}
        if spec.dimensions == "width_height"
        else {
            "resolution": st.sampled_from(spec.resolutions),
            "ratio": st.sampled_from(spec.ratios),
        }
    )
    sound = {"none": [], "optional": [True, False], "built_in": [True]}[spec.audio]
    optional: dict[str, st.SearchStrategy[Any]] = {
        **frame,
        **({"audio": st.sampled_from(sound)} if sound else {}),
        "quality": st.integers(1, 50),
        "seconds": st.sampled_from(spec.durations),
        "seed": st.integers(0, 2**32 - 1),
        "negative_prompt": visible_text(2000),
        "steps": st.integers(10, 50),
        "guidance": st.floats(1.0, 20.0),
        "fps": st.integers(1, 60),
        "format": st.sampled_from(["MP4", "WEBM"]),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            options[name] = draw(values)
    required = REQUIRED_IMAGE.get(spec.kind)
    files = {
        option: draw(usable_uploads)
        for option, takes in IMAGE_OPTIONS.items()
        if getattr(spec, takes) and (option == required or draw(st.integers(0, 2)) == 0)
    }
    return Case("valid", options, files)


@st.composite
def mutated_cases(draw: st.DrawFn) -> Case:
    """A valid command with one option replaced by a wild value."""
    base = draw(valid_cases())
    target = draw(st.sampled_from(list(WILD)))
    return Case("mutated", {**base.options, target: draw(WILD[target])}, base.files)


@st.composite
def image_cases(draw: st.DrawFn) -> Case:
    """A valid command with one image option set to a file of any kind (mostly unusable)."""
    base = draw(valid_cases())
    target = draw(st.sampled_from(list(IMAGE_OPTIONS)))
    upload = draw(st.one_of(unusable_uploads, unusable_uploads, usable_uploads))
    return Case("image", base.options, {**base.files, target: upload})


@st.composite
def wild_cases(draw: st.DrawFn) -> Case:
    """Every option wild or omitted (only the prompt is required)."""
    options: dict[str, Any] = {"prompt": draw(wild_text)}
    for name, values in WILD.items():
        if name != "prompt" and draw(st.booleans()):
            options[name] = draw(values)
    files = {option: draw(any_uploads) for option in IMAGE_OPTIONS if draw(st.integers(0, 2)) == 0}
    return Case("wild", options, files)


video_cases = st.one_of(valid_cases(), mutated_cases(), image_cases(), wild_cases())


# Explicit examples, tried before the generated ones. Random draws rarely isolate one option
# (a wild command usually has several problems) and cover the kinds of file unevenly, so each
# documented limit is crossed on an otherwise valid command, and each kind of file is sent once.


def _edges() -> list[Case]:
    kling = {"model": "kwaivgI/kling-2.1-pro"}  # takes prompts of at most 2500 characters
    refused: list[tuple[str, dict[str, Any]]] = [
        ("prompt", {"prompt": ""}),
        ("prompt", {"prompt": " \t\n\u3000"}),
        ("prompt", {"prompt": "\x00\u200b\x7f\ufeff"}),
        ("prompt", {"prompt": "p" * 2501, **kling}),
        ("model", {"model": UNKNOWN_MODEL_PREFIX + "x"}),
        ("model", {"model": "minimax"}),
        ("size", {"size": "1366x769"}),
        ("size", {"size": "9" * 5000 + "x1"}),
        ("seconds", {"seconds": 7}),
        ("seconds", {"seconds": -(2**63)}),
        ("seed", {"seed": -1}),
        ("seed", {"seed": 2**32}),
        ("negative_prompt", {"negative_prompt": "n" * 2001}),
        ("steps", {"steps": 9}),
        ("steps", {"steps": 51}),
        ("guidance", {"guidance": 0.999}),
        ("guidance", {"guidance": 20.001}),
        ("fps", {"fps": 0}),
        ("fps", {"fps": 2**63 - 1}),
    ]
    accepted: list[dict[str, Any]] = [
        {"prompt": "p" * 2500, **kling},
        {"prompt": "  a prompt with control characters\x00\x1b[31m  "},
        {"model": " MINIMAX/Hailuo-02 ", "size": " 1920X1080 ", "seconds": 10},
        {"seed": 0, "steps": 10, "guidance": 1.0, "fps": 1, "format": "WEBM"},
        {"seed": 2**32 - 1, "steps": 50, "guidance": 20.0, "fps": 60, "format": "MP4"},
        {"negative_prompt": "n" * 2000},
        {"negative_prompt": "\x00\u200b   "},  # nothing left after cleaning: none given
    ]
    cases = [
        Case("edge", {"prompt": "a boundary case", **options}, refused_for=option)
        for option, options in refused
    ]
    cases += [Case("edge", {"prompt": "a boundary case", **options}) for options in accepted]
    return cases


def _every_file_kind() -> list[Case]:
    kinds: list[tuple[str, bytes, bool | None]]
    kinds = [(kind, data, True) for kind, data in USABLE_IMAGES.items()]
    kinds += [(kind, data, False) for kind, data in UNUSABLE_FILES.items()]
    kinds.append(("random-bytes", bytes(range(256)) * 3, False))
    kinds.append(("png-with-fuzzed-header", png_with_header(2**32 - 1, 3, 16, 3, b"?"), None))
    placements = [
        ("first_frame", {}),
        ("last_frame", {"model": "google/veo-2.0"}),
        ("reference", {"model": "vidu/vidu-2.0"}),
    ]
    cases = []
    for number, (kind, data, usable) in enumerate(kinds):
        option, model = placements[number % len(placements)]
        filename = FILENAMES[number % len(FILENAMES)]
        content_type = CONTENT_TYPES[number % len(CONTENT_TYPES)]
        upload = Upload(kind, filename, data, content_type, usable)
        family = "valid" if usable else "image"
        cases.append(Case(family, {"prompt": f"a {kind} as {option}", **model}, {option: upload}))
    # A last frame on a model without one is refused before anything is downloaded.
    upload = Upload("png", "image.png", USABLE_IMAGES["png"], "image/png", True)
    cases.append(
        Case("edge", {"prompt": "no last frame here"}, {"last_frame": upload}, "last_frame")
    )
    return cases


EXPLICIT_EXAMPLES = _edges() + _every_file_kind()


def with_explicit_examples(test: Callable[..., None]) -> Callable[..., None]:
    for case in reversed(EXPLICIT_EXAMPLES):
        test = example(case=case)(test)
    return test


def must_refuse(case: Case) -> str | None:
    """A reason the README gives for refusing this command, if there is one."""
    options = case.options
    if not options["prompt"].strip():
        return "the prompt is blank"
    model = options.get("model")
    if isinstance(model, str) and model.startswith(UNKNOWN_MODEL_PREFIX):
        return f"there is no model {model!r}"
    for name, (low, high) in DOCUMENTED_RANGES.items():
        value = options.get(name)
        if value is not None and not low <= value <= high:
            return f"{name}={value!r} is outside {low:g} to {high:g}"
    seconds = options.get("seconds")
    if seconds is not None and seconds not in ALL_DURATIONS:
        return f"no model makes {seconds}-second clips"
    for option, upload in case.files.items():
        if upload.usable is False:
            return f"{option} is {upload.kind}"
    return None


# --------------------------------------------------------------------------- one command


def check_verdict(case: Case, outcome: Outcome) -> None:
    """Accepted or refused as the README says, where it says."""
    if outcome.accepted:
        reason = must_refuse(case) or (case.refused_for and f"`{case.refused_for}` is invalid")
        assert not reason, f"accepted although {reason}"
        return
    must_accept = case.family == "valid" or (case.family == "edge" and not case.refused_for)
    assert not must_accept, f"a valid command was refused: {outcome.text!r}"
    if case.refused_for:
        named = f"`{case.refused_for}`"
        assert outcome.text.startswith(named), f"refused, but not for {named}: {outcome.text!r}"


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    text: str  # the refusal, or the progress message's title
    message: Message | None = None  # the progress message, when accepted


def _answered(interaction: Interaction) -> bool:
    if interaction.followups:
        return True
    original = interaction.original_message
    # A deferral ("thinking") is not an answer yet; a deleted one awaits its followup.
    return original is not None and not original.loading and not original.deleted


def _describe(interaction: Interaction) -> str:
    original = interaction.original_message
    shown = None if original is None else (original.flags, original.deleted, original.content)
    return f"responded={interaction.responded} original={shown} followups={interaction.followups}"


async def send(stack: Stack, case: Case) -> Outcome:
    """Send one /video; check the answer and what reached Together because of it."""
    posts = stack.together.posts
    before = len(posts())
    interaction = await stack.discord.slash_command(
        "video",
        case.options,
        member=stack.member,
        attachments={option: upload.spec() for option, upload in case.files.items()},
    )
    try:
        await stack.discord.wait_for(lambda: _answered(interaction), ANSWER_TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"/video was never answered: {_describe(interaction)}") from None

    original = interaction.original_message
    for message in (original, *interaction.followups):
        if message is not None:
            # Only the bot's own words: an embed's description is the member's prompt.
            leaked = [leak for leak in LEAKS if leak in message.content]
            assert not leaked, f"an unhandled error reached the member: {message.content!r}"

    if original is not None and not original.deleted and not original.ephemeral:
        assert original.embeds, f"a public answer without a progress embed: {original.content!r}"
        try:
            await stack.discord.wait_for(lambda: len(posts()) > before, POST_TIMEOUT)
        except TimeoutError:
            raise AssertionError("an accepted job never reached Together") from None
        assert len(posts()) == before + 1, "one accepted command sent several jobs"
        return Outcome(True, str(original.embeds[0].get("title")), original)

    reply = interaction.followups[-1] if interaction.followups else original
    assert reply is not None and reply.flags & EPHEMERAL, "the refusal is not private"
    text = reply.content
    named = re.match(r"`(\w+)`", text)
    assert named and named[1] in VIDEO_OPTIONS, f"the refusal names no option: {text!r}"
    assert len(posts()) == before, f"a refused command reached Together ({text!r})"
    return Outcome(False, text)


# --------------------------------------------------------------------------- logs


class LogRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self) -> list[str]:
        return [
            f"{record.name} {record.levelname}: {record.getMessage()}"
            for record in self.records
            if record.exc_info
            or record.levelno >= logging.ERROR
            or record.name.startswith("discord.app_commands")
            or "Ignoring exception" in record.getMessage()
        ]


@contextmanager
def recording_logs() -> Iterator[LogRecorder]:
    recorder = LogRecorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)


# --------------------------------------------------------------------------- the property


async def test_every_video_command_is_answered_and_refusals_never_reach_together(
    make_stack: StackFactory,
) -> None:
    tally: Counter[str] = Counter()
    accepted: list[Message] = []
    with recording_logs() as logs:
        stack = await make_stack(together_options={"default_script": INSTANT_JOB}, **NO_QUOTA)
        loop = asyncio.get_running_loop()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=(Phase.explicit, Phase.generate),
            report_multiple_bugs=False,
        )
        @with_explicit_examples
        @given(case=video_cases)
        def each_command_is_answered(case: Case) -> None:
            future = asyncio.run_coroutine_threadsafe(send(stack, case), loop)
            try:
                outcome = future.result(timeout=ANSWER_TIMEOUT + POST_TIMEOUT + 5)
            except TimeoutError:
                future.cancel()
                raise
            check_verdict(case, outcome)
            if outcome.message is not None:
                accepted.append(outcome.message)
                tally[f"accepted: {case.family} command"] += 1
                tally.update(f"accepted: image {upload.kind}" for upload in case.files.values())
            else:
                tally[f"refused: {re.sub(r'[0-9]+', 'N', outcome.text)[:64]}"] += 1

        await asyncio.to_thread(each_command_is_answered)

        def settled() -> bool:
            return all(m.embeds and m.embeds[0].get("title") in FINAL_TITLES for m in accepted)

        await stack.discord.wait_for(settled, SETTLE_TIMEOUT)

    posts = stack.together.posts()
    tally.update(f"final: {m.embeds[0].get('title')}" for m in accepted)
    tally.update(f"Together answered POST with {post.status}" for post in posts)
    tally.update(f"log {r.levelname}: {r.name}: {r.getMessage()[:80]}" for r in logs.records)
    print("\n".join(f"{count:4d}  {what}" for what, count in sorted(tally.items())))
    assert not logs.problems(), logs.problems()
    assert len(posts) == len(accepted), "Together got POSTs that no accepted command explains"
