"""Real clips made with ffmpeg for the frame and join tests (the ``clips`` fixture in conftest)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# H.264 without scene cuts and with B-frames: the last frame is not a keyframe.
_H264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params", "keyint=1000:scenecut=0"]
_H264_BF = [*_H264, "-bf", "2"]


@dataclass(frozen=True)
class Clips:
    plain: Path  # testsrc, 2 s, 320x240, 24 fps, H.264, no sound
    plain2: Path  # the same settings, other pictures
    sound: Path  # testsrc + 440 Hz sine, 2 s, 320x240, 24 fps, H.264 + AAC
    sound2: Path  # testsrc2 + 660 Hz sine, same settings
    big: Path  # 640x360, 24 fps, H.264 + AAC
    fast: Path  # 320x240 at 30 fps, H.264, no sound
    portrait: Path  # 120x240 solid red, 24 fps, H.264, no sound
    webm: Path  # testsrc, 2 s, 320x240, VP9 + Opus
    one_frame: Path  # a single magenta frame, 320x240, H.264
    colours: Path  # red 1.5 s, green 0.5 s, then one blue frame (a P/B frame), H.264
    colours_webm: Path  # the same in VP9/WebM
    long_sound: Path  # 1 s of blue picture, 5 s of sound
    corrupt: Path  # random bytes named .mp4
    truncated: Path  # the first half of a valid MP4 (its moov is at the end)
    odd_name: Path  # a copy of `sound` in "dir 'with' quotes/clip \"one\" 'two'.mp4"
    odd_name2: Path  # a copy of `sound2` beside it


def make(path: Path, *args: str) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args, str(path)],
        check=True,
        timeout=120,
    )
    return path


def _lavfi(source: str) -> list[str]:
    return ["-f", "lavfi", "-i", source]


def _colours(path: Path, *codec: str) -> Path:
    size = "size=320x240:rate=24"
    return make(
        path,
        *_lavfi(f"color=red:{size}:duration=1.5"),
        *_lavfi(f"color=green:{size}:duration=0.5"),
        *_lavfi(f"color=blue:{size}:duration=1"),
        "-filter_complex",
        "[2:v]trim=end_frame=1[b];[0:v][1:v][b]concat=n=3:v=1:a=0",
        *codec,
    )


def make_clips(d: Path) -> Clips:
    src = "size=320x240:rate=24:duration=2"
    aac = ["-c:a", "aac", "-shortest"]
    sound = make(
        d / "sound.mp4", *_lavfi(f"testsrc={src}"), *_lavfi("sine=f=440:d=2"), *_H264, *aac
    )
    sound2 = make(
        d / "sound2.mp4", *_lavfi(f"testsrc2={src}"), *_lavfi("sine=f=660:d=2"), *_H264, *aac
    )
    odd_dir = d / "dir 'with' quotes"
    odd_dir.mkdir()
    odd_name = odd_dir / "clip \"one\" 'two'.mp4"
    odd_name.write_bytes(sound.read_bytes())
    odd_name2 = odd_dir / "clip \"three\" 'four'.mp4"
    odd_name2.write_bytes(sound2.read_bytes())
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(bytes((i * 7919 + 13) % 251 for i in range(20_000)))
    whole = sound.read_bytes()
    truncated = d / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])
    return Clips(
        plain=make(d / "plain.mp4", *_lavfi(f"testsrc={src}"), *_H264),
        plain2=make(d / "plain2.mp4", *_lavfi(f"testsrc2={src}"), *_H264),
        sound=sound,
        sound2=sound2,
        big=make(
            d / "big.mp4",
            *_lavfi("testsrc=size=640x360:rate=24:duration=2"),
            *_lavfi("sine=f=330:d=2"),
            *_H264,
            *aac,
        ),
        fast=make(d / "fast.mp4", *_lavfi("testsrc=size=320x240:rate=30:duration=2"), *_H264),
        portrait=make(
            d / "portrait.mp4", *_lavfi("color=red:size=120x240:rate=24:duration=2"), *_H264
        ),
        webm=make(
            d / "clip.webm",
            *_lavfi(f"testsrc={src}"),
            *_lavfi("sine=f=440:d=2"),
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "200k",
            "-c:a",
            "libopus",
            "-shortest",
        ),
        one_frame=make(
            d / "one.mp4", *_lavfi("color=magenta:size=320x240:rate=24"), "-frames:v", "1", *_H264
        ),
        colours=_colours(d / "colours.mp4", *_H264_BF),
        colours_webm=_colours(d / "colours.webm", "-c:v", "libvpx-vp9", "-b:v", "200k"),
        long_sound=make(
            d / "long_sound.mp4",
            *_lavfi("color=blue:size=320x240:rate=24:duration=1"),
            *_lavfi("sine=f=440:d=5"),
            *_H264,
            "-c:a",
            "aac",
        ),
        corrupt=corrupt,
        truncated=truncated,
        odd_name=odd_name,
        odd_name2=odd_name2,
    )
