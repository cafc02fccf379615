"""SHARD_COUNT, SHARD_IDS and SYNC_COMMANDS: parsing, the one-line errors, the sync decision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings
from bot.sharding import describe_shards, parse_shard_ids, syncs_commands

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_TOKEN", "TOGETHER_API_KEY", "SHARD_COUNT", "SHARD_IDS", "SYNC_COMMANDS"):
        monkeypatch.delenv(name, raising=False)


def settings_from(tmp_path: Path, *lines: str) -> Settings:
    env = tmp_path / ".env"
    env.write_text("\n".join(["DISCORD_TOKEN=a", "TOGETHER_API_KEY=b", *lines]) + "\n")
    return load_settings(env_file=env)


@pytest.mark.parametrize(
    ("text", "count", "ids"),
    [
        ("0-3", 4, (0, 1, 2, 3)),
        ("0,2", 4, (0, 2)),
        ("5", 6, (5,)),
        (" 4-5 , 0 ", 8, (0, 4, 5)),
        ("2-2", 3, (2,)),
        ("", None, None),
        ("  ", 4, None),
    ],
)
def test_shard_lists_are_read(text: str, count: int | None, ids: tuple[int, ...] | None) -> None:
    assert parse_shard_ids(text, count) == ids


@pytest.mark.parametrize(
    ("text", "count", "words"),
    [
        ("0", None, "needs SHARD_COUNT"),
        ("4", 4, "shard 4 does not exist"),
        ("0-9", 4, "shard 4 does not exist"),
        ("3-1", 4, "runs backwards"),
        ("1,1", 4, "names a shard twice"),
        ("0-2,2", 4, "names a shard twice"),
        ("-1", 4, "must be a list"),
        ("a", 4, "must be a list"),
        ("1,", 4, "must be a list"),
        ("1-", 4, "must be a list"),
        ("+1", 4, "must be a list"),
        ("1 2", 4, "must be a list"),
        ("١", 4, "must be a list"),  # an Arabic-Indic one: isdecimal, but not ASCII
    ],
)
def test_bad_shard_lists_are_refused_with_words(text: str, count: int | None, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_shard_ids(text, count)


def test_without_shard_settings_discord_decides(tmp_path: Path) -> None:
    settings = settings_from(tmp_path)
    assert settings.shard_count is None
    assert settings.shard_ids is None
    assert settings.sync_commands == "auto"


def test_shard_settings_are_read(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "SHARD_COUNT=4", "SHARD_IDS=2-3", "SYNC_COMMANDS=OFF")
    assert settings.shard_count == 4
    assert settings.shard_ids == (2, 3)
    assert settings.sync_commands == "off"


def test_blank_shard_settings_mean_unset(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, "SHARD_COUNT=", "SHARD_IDS=")
    assert settings.shard_count is None
    assert settings.shard_ids is None


@pytest.mark.parametrize(
    ("lines", "start"),
    [
        (("SHARD_IDS=0",), "SHARD_IDS is invalid: needs SHARD_COUNT"),
        (("SHARD_COUNT=2", "SHARD_IDS=2"), "SHARD_IDS is invalid: shard 2 does not exist"),
        (("SHARD_COUNT=2", "SHARD_IDS=[0]"), "SHARD_IDS is invalid: must be a list"),
        (("SHARD_COUNT=0",), "SHARD_COUNT is invalid"),
        (("SHARD_COUNT=two", "SHARD_IDS=0"), "SHARD_COUNT is invalid"),
        (("SYNC_COMMANDS=yes",), "SYNC_COMMANDS is invalid: must be auto, on or off"),
    ],
)
def test_bad_shard_settings_name_themselves(
    tmp_path: Path, lines: tuple[str, ...], start: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from(tmp_path, *lines)
    assert str(caught.value).startswith(start)
    assert "\n" not in str(caught.value)


def test_start_with_a_bad_shard_list_prints_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "d",
        "TOGETHER_API_KEY": "t",
        "SHARD_COUNT": "2",
        "SHARD_IDS": "0-2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("video-bot: SHARD_IDS is invalid: shard 2 does not exist")
    assert not (tmp_path / "data").exists()  # refused before the database was touched


@pytest.mark.parametrize(
    ("setting", "shard_ids", "syncs"),
    [
        ("auto", None, True),  # one process runs every shard
        ("auto", (0,), True),
        ("auto", (0, 1), True),
        ("auto", (1,), False),
        ("auto", (2, 3), False),
        ("on", (1,), True),
        ("on", None, True),
        ("off", (0,), False),
        ("off", None, False),
    ],
)
def test_one_process_syncs_the_commands(
    setting: str, shard_ids: tuple[int, ...] | None, syncs: bool
) -> None:
    assert syncs_commands(setting, shard_ids) is syncs  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ids", "count", "shown"),
    [
        (None, None, None),
        (None, 4, "0-3"),
        ((0,), 1, "0"),
        ((0, 2), 4, "0, 2"),
        ((0, 1, 2, 5, 7, 8), 10, "0-2, 5, 7-8"),
        (tuple(range(0, 100, 2)), 100, "0, 2, 4, 6, 8, 10, …"),
    ],
)
def test_a_processs_shards_are_described_as_runs(
    ids: tuple[int, ...] | None, count: int | None, shown: str | None
) -> None:
    assert describe_shards(ids, count) == shown
