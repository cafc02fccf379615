"""Settings read from the environment and a .env file (pydantic-settings).

Built once in main(), never at import, so tests and tools can import the package freely.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_DATABASE_PATH = Path("data/bot.sqlite3")
LOG_FORMATS = ("text", "json")


class Settings(BaseSettings):
    """Every setting the bot reads; names match the environment variables in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    discord_token: SecretStr
    together_api_key: SecretStr
    database_path: Path = DEFAULT_DATABASE_PATH
    # Where videos are downloaded before upload; None: a "downloads" folder beside the database.
    download_dir: Path | None = None
    together_base_url: str = "https://api.together.ai"
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    default_model: str = "minimax/hailuo-02"
    # The models Animate image (an image-to-video model) and Edit video use where a server
    # has not chosen its own (/videoadmin models animate|edit).
    animate_model: str = "Wan-AI/wan2.7-i2v"
    edit_model: str = "Wan-AI/wan2.7-videoedit"
    # Limits for servers whose moderators have not set their own (/videoadmin quota).
    default_user_daily: int = Field(default=5, ge=0, le=100_000)
    default_guild_daily: int = Field(default=50, ge=0, le=100_000)
    default_user_concurrent: int = Field(default=2, ge=0, le=1000)
    default_monthly_budget_usd: float = Field(default=20.0, ge=0, le=1_000_000)
    models_file: Path | None = None
    progress_edit_interval: float = Field(default=10.0, ge=1.0, le=600.0)
    poll_interval: float = Field(default=5.0, ge=0.05, le=300.0)
    poll_strategy: Literal["adaptive", "fixed"] = "adaptive"
    # The ceiling: the bot learns the account's real limit below it, from this start rate.
    together_requests_per_second: float = Field(default=5.0, ge=0, le=1000)
    together_start_requests_per_second: float = Field(default=1.0, ge=0, le=1000)
    max_active_jobs: int = Field(default=20, ge=1, le=1000)
    max_active_jobs_per_server: int = Field(default=10, ge=1, le=1000)
    keyframe_retention_days: int = Field(default=14, ge=0, le=36_500)
    log_level: str = "INFO"
    # Prometheus /metrics (bot/metrics.py): off unless a port is given; loopback by default.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # The moderation model for prompt screening (/videoadmin safety screening); empty: the
    # screening is off on this bot. SAFETY_TIMEOUT_SECONDS bounds one check.
    safety_model: str = "meta-llama/Llama-Guard-4-12B"
    safety_timeout_seconds: float = Field(default=3.0, ge=0.2, le=10.0)
    # text: for people (today's lines); json: one object per line, for log collectors.
    log_format: Literal["text", "json"] = "text"

    @field_validator("discord_token", "together_api_key")
    @classmethod
    def _stripped_not_blank(cls, value: SecretStr) -> SecretStr:
        # A Windows .env's \r or a pasted trailing space would be sent with the token, and
        # the log redaction would look for the padded value, not the token itself.
        secret = value.get_secret_value().strip()
        if not secret:
            raise ValueError("must not be empty")
        return SecretStr(secret)

    @field_validator("safety_model")
    @classmethod
    def _model_id(cls, value: str) -> str:
        value = value.strip()
        if value and (any(c.isspace() for c in value) or len(value) > 200):
            raise ValueError("must be a Together model id such as meta-llama/Llama-Guard-4-12B")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_format(cls, value: object) -> object:
        form = value.strip().lower() if isinstance(value, str) else value
        if form not in LOG_FORMATS:
            raise ValueError(f"must be {' or '.join(LOG_FORMATS)}")
        return form

    @field_validator("together_base_url", "discord_api_base", "discord_gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            raise ValueError("must be a URL such as https://host/path")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c in value for c in " /"):  # not a URL: a host name or address
            raise ValueError("must be an address to listen on, such as 127.0.0.1 or 0.0.0.0")
        return value

    @field_validator("models_file", "download_dir", "metrics_port", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def download_dir_path(self) -> Path:
        """DOWNLOAD_DIR, or the default: a "downloads" folder beside the database."""
        return self.download_dir or self.database_path.parent / "downloads"

    @property
    def log_level_number(self) -> int:
        return int(logging.getLevelName(self.log_level))


class DatabaseSettings(BaseSettings):
    """DATABASE_PATH alone, read like Settings: all that `video-bot health` and `backup` need."""

    model_config = Settings.model_config
    database_path: Path = DEFAULT_DATABASE_PATH


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it in one line."""


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read the settings, turning pydantic's report into one line that names the setting."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]).upper() if error["loc"] else "settings"
    if error["type"] == "missing":
        return f"{name} is not set: add it to .env or the environment (see .env.example)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name} is invalid: {message} (see .env.example)"


def load_database_settings(env_file: str | Path | None = ".env") -> DatabaseSettings:
    """DATABASE_PATH without the tokens (a health check must not need them)."""
    try:
        return DatabaseSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
