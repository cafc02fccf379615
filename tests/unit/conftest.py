"""Fixtures shared by the unit tests.

``clips``: real clips made once per test session with ffmpeg (tests/unit/media_clips.py); the
tests that use it are skipped when ffmpeg/ffprobe are not on PATH.

``any_db``: an empty database of each driver in turn: SQLite, then PostgreSQL at
TEST_DATABASE_URL (skipped without it, failed without it when CI=true; tests/databases.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.media.reencode import ffmpeg_available
from storage.db import open_database
from storage.driver import Database
from tests.databases import (
    drop_database,
    open_test_postgres,
    run_aside,
    scratch_database,
    server_url,
)
from tests.unit.media_clips import Clips, make_clips

NO_FFMPEG = "ffmpeg/ffprobe are not on PATH (Debian: apt-get install ffmpeg)"


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    if not ffmpeg_available():
        pytest.skip(NO_FFMPEG)
    return make_clips(tmp_path_factory.mktemp("clips"))


# --- databases: every storage repository test runs on SQLite and on PostgreSQL -------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own on TEST_DATABASE_URL's server (see databases.py)."""
    server = server_url()
    name, url = scratch_database(server)
    yield url
    run_aside(drop_database(server, name))


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty, migrated database of each driver in turn."""
    if request.param == "sqlite":
        db: Database = await open_database(tmp_path / "bot.sqlite3")
    else:
        db = await open_test_postgres(request.getfixturevalue("postgres_url"))
    yield db
    await db.close()


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    """An empty, migrated PostgreSQL database (for what only PostgreSQL has)."""
    db = await open_test_postgres(postgres_url)
    yield db
    await db.close()
