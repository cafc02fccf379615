"""Log lines: no secret in either format, the job's ids on every line about a job, and JSON
that a collector can read one line at a time."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest

from bot.log_context import LogIds, about, about_job, about_member, current_ids, task_context
from bot.logs import LogFormat, RedactSecrets, make_handler
from tests.unit.fakes import make_job

SECRETS = ["bot-token-123", "together-key-456"]


def format_with_filter(message: str, *args: object, exc: BaseException | None = None) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    RedactSecrets(SECRETS).filter(record)
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


def test_stacks_are_redacted() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "where", None, None)
    record.stack_info = 'Stack (most recent call last):\n  login("bot-token-123")'
    RedactSecrets(SECRETS).filter(record)
    assert record.stack_info == 'Stack (most recent call last):\n  login("***")'


def test_tracebacks_are_redacted() -> None:
    try:
        raise RuntimeError("failed with bot-token-123")
    except RuntimeError as exc:
        line = format_with_filter("oops", exc=exc)
    assert "bot-token-123" not in line and "RuntimeError" in line


# -- both formats, through the handler the bot logs with ------------------------------------


class Captured:
    """A logger whose records go through the bot's handler into a string."""

    def __init__(self, log_format: LogFormat) -> None:
        self.stream = io.StringIO()
        self.handler = make_handler(log_format, SECRETS, self.stream)
        self.log = logging.getLogger(f"test.logs.{log_format}")
        self.log.propagate = False
        self.log.setLevel(logging.DEBUG)
        self.log.handlers[:] = [self.handler]

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def objects(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def text() -> Iterator[Captured]:
    captured = Captured("text")
    yield captured
    captured.log.handlers.clear()


@pytest.fixture
def as_json() -> Iterator[Captured]:
    captured = Captured("json")
    yield captured
    captured.log.handlers.clear()


JOB = make_job(12, 0.0, guild_id=345, user_id=678)


def test_text_keeps_its_format_and_shows_the_job(text: Captured) -> None:
    text.log.info("no job here")
    with about_job(JOB):
        text.log.warning("Accepted by Together as %s", "vid_1")
    first, second = text.text.splitlines()
    assert first.endswith(" INFO    test.logs.text: no job here")
    assert second.endswith(" WARNING test.logs.text job=12: Accepted by Together as vid_1")
    datetime.strptime(second[:23], "%Y-%m-%d %H:%M:%S,%f")  # asctime, as before


def test_json_has_the_fields_and_the_job_ids(as_json: Captured) -> None:
    with about_job(JOB):
        as_json.log.warning("Could not read its status (%s); next try in %.0f s", "502", 5.0)
    as_json.log.info("no job here")
    about_the_job, no_job = as_json.objects()
    assert about_the_job == {
        "time": about_the_job["time"],
        "level": "WARNING",
        "logger": "test.logs.json",
        "message": "Could not read its status (502); next try in 5 s",
        "job_id": 12,
        "guild_id": 345,
        "user_id": 678,
    }
    stamp = str(about_the_job["time"])
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp).utcoffset() is not None  # ISO 8601, in UTC
    assert no_job.keys() == {"time", "level", "logger", "message"}


def test_json_is_one_line_per_record_even_for_multi_line_text(as_json: Captured) -> None:
    as_json.log.info("first line\nsecond line\r\nthird\u2028fourth\u0085fifth")
    try:
        raise ValueError("broken\nin two")
    except ValueError:
        as_json.log.exception("it failed")
    lines = as_json.text.splitlines()  # also splits on U+2028 and NEL, as some readers do
    assert len(lines) == 2
    message, failure = (json.loads(line) for line in lines)
    assert message["message"] == "first line\nsecond line\r\nthird\u2028fourth\u0085fifth"
    assert failure["message"] == "it failed"
    exception = str(failure["exception"])
    assert exception.startswith("Traceback") and "ValueError: broken\nin two" in exception


def test_json_has_no_exception_field_without_one(as_json: Captured) -> None:
    as_json.log.error("plain error")
    (entry,) = as_json.objects()
    assert "exception" not in entry


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_redacted_in_both_formats(log_format: LogFormat) -> None:
    captured = Captured(log_format)
    try:
        captured.log.info("auth %s", "Bearer together-key-456")
        captured.log.info("PATCH /webhooks/1/aW50ZXJhY3Rpb24/messages/2")
        try:
            raise RuntimeError("failed with bot-token-123")
        except RuntimeError:
            captured.log.exception("oops %s", "bot-token-123")
    finally:
        captured.log.handlers.clear()
    output = captured.text
    for secret in ("bot-token-123", "together-key-456", "aW50ZXJhY3Rpb24"):
        assert secret not in output
    unescaped = output.replace("\\n", "\n")  # JSON escapes the traceback's line breaks
    assert "Bearer ***" in output and "RuntimeError: failed with ***" in unescaped
    if log_format == "json":
        assert all(json.loads(line) for line in output.splitlines())


def test_ids_given_with_the_call_win_over_the_context(as_json: Captured) -> None:
    with about_job(JOB):
        as_json.log.info("the form of job 7 failed", extra={"job_id": 7})
    (entry,) = as_json.objects()
    assert entry["job_id"] == 7 and entry["guild_id"] == 345


def test_a_member_without_a_job(as_json: Captured, text: Captured) -> None:
    with about_member(345, 678):
        as_json.log.info("soundtrack refused")
        text.log.info("soundtrack refused")
    (entry,) = as_json.objects()
    assert entry["guild_id"] == 345 and entry["user_id"] == 678 and "job_id" not in entry
    assert "job=" not in text.text


# -- the context -------------------------------------------------------------------------------


def test_the_ids_are_restored_after_the_block() -> None:
    outer = LogIds(job_id=1)
    with about(outer):
        with about_job(JOB):
            assert current_ids().job_id == 12
        assert current_ids() == outer
    assert current_ids() == LogIds()


async def test_a_task_is_about_the_job_it_was_made_for_not_its_creators() -> None:
    """One job's task often starts another job's work: the new task gets its own job's ids."""
    other = make_job(99, 0.0, guild_id=1, user_id=2)
    seen: list[LogIds] = []

    async def work() -> None:
        seen.append(current_ids())

    with about_job(JOB):
        await asyncio.create_task(work(), context=task_context(other))
        await asyncio.create_task(work(), context=task_context(None))
        await asyncio.create_task(work())  # a plain task inherits its creator's
    assert seen == [LogIds(99, 1, 2), LogIds(), LogIds(12, 345, 678)]
