"""No secret reaches a log line."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactSecrets


@pytest.fixture
def records() -> list[str]:
    return []


def format_with_filter(message: str, *args: object, exc: BaseException | None = None) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactSecrets(["bot-token-123", "together-key-456"]).filter(record)
    return logging.Formatter().format(record)


def test_known_secrets_are_redacted() -> None:
    line = format_with_filter("auth %s and %s", "bot-token-123", "Bearer together-key-456")
    assert "bot-token-123" not in line and "together-key-456" not in line
    assert line == "auth *** and Bearer ***"


def test_interaction_tokens_in_urls_are_redacted() -> None:
    line = format_with_filter(
        "PATCH https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb24.abc-def/messages/9 -> 200"
    )
    assert "aW50ZXJhY3Rpb24" not in line
    assert "/webhooks/123/***/messages/9" in line
    assert "/interactions/5/***/callback" in format_with_filter("/interactions/5/tok_en/callback")


def test_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError("failed with bot-token-123")
    except RuntimeError as exc:
        line = format_with_filter("oops", exc=exc)
    assert "bot-token-123" not in line and "RuntimeError" in line
