"""Settings: defaults, validation, and the one-line error that names the setting."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DISCORD_TOKEN",
        "TOGETHER_API_KEY",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "PROGRESS_EDIT_INTERVAL",
        "DATABASE_PATH",
        "DATABASE_URL",
        "DOWNLOAD_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "d-token")
    monkeypatch.setenv("TOGETHER_API_KEY", "t-key")
    settings = load_settings(env_file=None)
    assert settings.database_path == Path("data/bot.sqlite3")
    assert settings.together_base_url == "https://api.together.ai"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.progress_edit_interval == 10.0
    assert settings.lease_seconds == 30.0
    assert "d-token" not in repr(settings) and "t-key" not in repr(settings)


def test_log_format_is_text_unless_json_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "d-token")
    monkeypatch.setenv("TOGETHER_API_KEY", "t-key")
    assert load_settings(env_file=None).log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", " JSON ")
    assert load_settings(env_file=None).log_format == "json"


def test_env_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DISCORD_TOKEN=abc\nTOGETHER_API_KEY=def\nLOG_LEVEL=debug\n")
    settings = load_settings(env_file=env)
    assert settings.log_level == "DEBUG"


def test_secrets_from_a_windows_env_file_come_out_clean(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    # CRLF line endings, a trailing space, and quoted values that keep their padding.
    env.write_bytes(b'DISCORD_TOKEN="d-token \r"\r\nTOGETHER_API_KEY=t-key  \r\nLOG_LEVEL=info\r\n')
    settings = load_settings(env_file=env)
    assert settings.discord_token.get_secret_value() == "d-token"
    assert settings.together_api_key.get_secret_value() == "t-key"


def test_secrets_from_the_environment_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", " d-token\r")
    monkeypatch.setenv("TOGETHER_API_KEY", "t-key\t\n")
    settings = load_settings(env_file=None)
    assert settings.discord_token.get_secret_value() == "d-token"
    assert settings.together_api_key.get_secret_value() == "t-key"


def test_downloads_default_to_a_folder_beside_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "d")
    monkeypatch.setenv("TOGETHER_API_KEY", "t")
    monkeypatch.setenv("DATABASE_PATH", "/data/bot.sqlite3")
    monkeypatch.setenv("DOWNLOAD_DIR", " ")  # left blank in .env: the default
    settings = load_settings(env_file=None)
    assert settings.download_dir is None
    assert settings.download_dir_path == Path("/data/downloads")


def test_download_dir_can_be_another_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "d")
    monkeypatch.setenv("TOGETHER_API_KEY", "t")
    monkeypatch.setenv("DATABASE_PATH", "/data/bot.sqlite3")
    monkeypatch.setenv("DOWNLOAD_DIR", "/scratch/videos")
    assert load_settings(env_file=None).download_dir_path == Path("/scratch/videos")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_TOKEN": "a"}, "TOGETHER_API_KEY is not set"),
        ({"DISCORD_TOKEN": "a", "TOGETHER_API_KEY": "b", "LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        (
            {"DISCORD_TOKEN": "a", "TOGETHER_API_KEY": "b", "LOG_FORMAT": "xml"},
            "LOG_FORMAT is invalid: must be text or json",
        ),
        (
            {"DISCORD_TOKEN": "a", "TOGETHER_API_KEY": "b", "PROGRESS_EDIT_INTERVAL": "0"},
            "PROGRESS_EDIT_INTERVAL is invalid",
        ),
        ({"DISCORD_TOKEN": " ", "TOGETHER_API_KEY": "b"}, "DISCORD_TOKEN is invalid"),
        (
            {"DISCORD_TOKEN": "a", "TOGETHER_API_KEY": "b", "LEASE_SECONDS": "4"},
            "LEASE_SECONDS is invalid",
        ),
        (
            {"DISCORD_TOKEN": "a", "TOGETHER_API_KEY": "b", "LEASE_SECONDS": "601"},
            "LEASE_SECONDS is invalid",
        ),
    ],
)
def test_bad_settings_name_themselves(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_start_without_token_prints_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN is not set" in lines[0]


def test_start_with_a_bad_log_format_prints_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "d",
        "TOGETHER_API_KEY": "t",
        "LOG_FORMAT": "logfmt",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOG_FORMAT is invalid: must be text or json" in lines[0]


def test_start_with_broken_models_file_prints_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "models.json"
    broken.write_text('{"models": [{"id": "acme/x", "name": "X"}]}')
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "d",
        "TOGETHER_API_KEY": "t",
        "MODELS_FILE": str(broken),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"model catalog {broken}: model acme/x: durations: Field required" in lines[0]


def test_unknown_default_model_stops_start_up_in_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "d",
        "TOGETHER_API_KEY": "t",
        "DEFAULT_MODEL": "acme/nothing",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEFAULT_MODEL is invalid: acme/nothing" in lines[0]


def start_bot(cwd: Path, database: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": "d",
        "TOGETHER_API_KEY": "t",
        "DATABASE_PATH": str(database),
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_start_on_a_corrupt_database_prints_one_line(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    database.write_text("this is a text file, not a database\n")
    result = start_bot(tmp_path, database)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"video-bot: DATABASE_PATH {database} cannot be used: ")
    assert "file is not a database" in lines[0]


def test_start_on_a_folder_in_place_of_the_database_prints_one_line(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    database.mkdir()
    for _ in range(3):  # the stray traceback after this line came in about 2 starts of 5
        result = start_bot(tmp_path, database)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"video-bot: DATABASE_PATH {database} cannot be used: unable to open database file"
        ], result.stderr


def test_start_on_a_newer_database_prints_one_line(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    result = start_bot(tmp_path, database)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"DATABASE_PATH {database} cannot be used: its schema version 99 is newer" in lines[0]


def test_metrics_are_off_by_default_and_on_loopback_when_on(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\nMETRICS_PORT=\n")
    off = load_settings(env_file=env)
    assert off.metrics_port is None and off.metrics_host == "127.0.0.1"
    env.write_text("DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\nMETRICS_PORT=9464\n")
    assert load_settings(env_file=env).metrics_port == 9464


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("METRICS_PORT=0", "METRICS_PORT"),
        ("METRICS_PORT=65536", "METRICS_PORT"),
        ("METRICS_PORT=http", "METRICS_PORT"),
        ("METRICS_HOST=http://0.0.0.0", "METRICS_HOST"),
        ("METRICS_HOST= ", "METRICS_HOST"),
    ],
)
def test_a_bad_metrics_setting_is_named(tmp_path: Path, line: str, name: str) -> None:
    env = tmp_path / ".env"
    env.write_text(f"DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\n{line}\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env)
    assert str(caught.value).startswith(f"{name} is invalid")


def test_database_url_is_sqlite_when_blank_and_kept_secret(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\nDATABASE_URL=\n")
    assert load_settings(env_file=env).database_url_text is None
    url = "postgresql://bot:hunter2-secret@db.example:5432/videos"
    env.write_text(f"DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\nDATABASE_URL= {url}\n")
    settings = load_settings(env_file=env)
    assert settings.database_url_text == url
    assert "hunter2-secret" not in repr(settings)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///data/bot.sqlite3",
        "mysql://bot:pw@db/videos",
        "postgresql://bot:pw@db:notaport/videos",
        "postgresql://bot:pw@db:5432",  # no database name
        "db.example:5432/videos",
    ],
)
def test_a_bad_database_url_is_one_line_naming_it(tmp_path: Path, url: str) -> None:
    env = tmp_path / ".env"
    env.write_text(f"DISCORD_TOKEN=a\nTOGETHER_API_KEY=b\nDATABASE_URL={url}\n")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=env)
    message = str(info.value)
    assert message.startswith("DATABASE_URL is invalid: must be a PostgreSQL URL")
    assert "\n" not in message and "pw" not in message


def test_start_with_a_bad_database_url_exits_2_with_one_line(tmp_path: Path) -> None:
    result = start_bot(tmp_path, tmp_path / "bot.sqlite3", DATABASE_URL="mysql://u:pw@h/d")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("video-bot: DATABASE_URL is invalid: must be a PostgreSQL URL")


def test_start_on_an_unreachable_postgresql_prints_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    # A unix socket folder with no server in it: refused at once, no network involved.
    url = f"postgresql://bot:hunter2-secret@/videos?host={tmp_path / 'nothing-here'}"
    result = start_bot(tmp_path, tmp_path / "bot.sqlite3", DATABASE_URL=url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("video-bot: DATABASE_URL postgresql://bot@/videos cannot be used: ")
    assert "hunter2-secret" not in result.stderr
    assert not (tmp_path / "bot.sqlite3").exists(), "no SQLite database made instead"
