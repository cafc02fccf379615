"""Fixtures shared by the unit tests.

``clips``: real clips made once per test session with ffmpeg (tests/unit/media_clips.py); the
tests that use it are skipped when ffmpeg/ffprobe are not on PATH.
"""

from __future__ import annotations

import pytest

from bot.media.reencode import ffmpeg_available
from tests.unit.media_clips import Clips, make_clips

NO_FFMPEG = "ffmpeg/ffprobe are not on PATH (Debian: apt-get install ffmpeg)"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    if not ffmpeg_available():
        pytest.skip(NO_FFMPEG)
    return make_clips(tmp_path_factory.mktemp("clips"))
