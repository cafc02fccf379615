"""SAFETY_MODEL and SAFETY_TIMEOUT_SECONDS: defaults, empty switches screening off, bad values
name themselves in one line."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "d-token")
    monkeypatch.setenv("TOGETHER_API_KEY", "t-key")
    monkeypatch.delenv("SAFETY_MODEL", raising=False)
    monkeypatch.delenv("SAFETY_TIMEOUT_SECONDS", raising=False)


def test_defaults() -> None:
    settings = load_settings(env_file=None)
    assert settings.safety_model == "meta-llama/Llama-Guard-4-12B"
    assert settings.safety_timeout_seconds == 3.0


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_model_switches_screening_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SAFETY_MODEL", value)
    assert load_settings(env_file=None).safety_model == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SAFETY_MODEL", "meta-llama/Llama Guard"),
        ("SAFETY_TIMEOUT_SECONDS", "0"),
        ("SAFETY_TIMEOUT_SECONDS", "60"),
    ],
)
def test_bad_values_name_themselves(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert str(info.value).startswith(f"{name} is invalid")
    assert "\n" not in str(info.value)
