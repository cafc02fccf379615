"""The newcomer's first look: `python -m sandbox demo` prints the whole flow with no tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_the_whole_flow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TOGETHER_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "videos"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "demo",
            "--prompt",
            "a red kite",
            "--seconds",
            "2",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert 'types: /video prompt:"a red kite"' in text
    assert "First response, public" in text
    assert "Queued at Together" in text and "Generating" in text
    assert "** Your video is ready **" in text
    saved = out / "video-1.mp4"
    assert f"saved to {saved}" in text
    assert saved.read_bytes()[4:8] == b"ftyp"


def test_demo_extends_and_joins(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "TOGETHER_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "videos"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "demo",
            "--seconds",
            "1",
            "--extend",
            "1",
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "presses Extend on #1: a form opens ('Extend #1')" in text
    assert "presses Join on #2" in text and "The 2 parts of #1, joined" in text
    assert sorted(p.name for p in out.iterdir()) == ["video-1.mp4", "video-2.mp4", "video-3.mp4"]
    assert (out / "video-3.mp4").read_bytes()[4:8] == b"ftyp"
