"""`video-bot health` and `backup PATH` read DATABASE_PATH alone; their lines and exit codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.__main__ import main


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DATABASE_PATH set, and nothing else: no tokens, no .env in the working folder."""
    for name in ("DISCORD_TOKEN", "TOGETHER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bot.sqlite3"
    monkeypatch.setenv("DATABASE_PATH", str(path))
    return path


def test_health_without_a_bot_is_1_with_one_line(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"video-bot: no bot is running on DATABASE_PATH {database}\n")


def test_backup_copies_and_refuses_an_existing_path(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES (1)")
    conn.close()
    target = tmp_path / "copy.sqlite3"

    assert main(["backup", str(target)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"video-bot: Backed up {database} to {target}: ")
    assert out.endswith(", 1 job, quick_check ok\n")

    assert main(["backup", "copy.sqlite3"]) == 2  # relative to the working folder
    out, err = capsys.readouterr()
    assert (out, err.count("\n")) == ("", 1)
    assert err.startswith(f"video-bot: backup PATH {target} already exists")


def test_an_unknown_command_is_a_usage_error(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err
