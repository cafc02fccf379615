"""Logging set-up: text for people or JSON for collectors, the job's ids on every line about a
job, and no secret ever in a log line."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal, TextIO

from bot.log_context import current_ids

# Interaction tokens travel in webhook and callback URLs; they are credentials for 15 minutes.
_URL_TOKENS = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]+")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s%(job_label)s: %(message)s"
# The ids JobFields puts on every record (None where the line is about no job or member).
ID_FIELDS = ("job_id", "guild_id", "user_id")

LogFormat = Literal["text", "json"]


class RedactSecrets(logging.Filter):
    """Replace known secrets and URL-borne interaction tokens in every record with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 6]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _URL_TOKENS.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class JobFields(logging.Filter):
    """Copy the ids of the job (server, member) the running code is about onto the record.

    Ids given explicitly (`extra=`) are kept. A filter on the handler runs in the logging
    call's own context, so it sees the task's ids.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_ids()
        for name in ID_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(ids, name))
        return True


class TextFormatter(logging.Formatter):
    """The human format: `<time> <LEVEL> <logger> job=<id>: <message>` (no job: no label)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        job_id = getattr(record, "job_id", None)
        record.job_label = f" job={job_id}" if job_id is not None else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log collectors: time (ISO 8601, UTC), level, logger,
    message, the job's ids where known, and the exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # ASCII only: line breaks, U+2028 and the like are escaped, so a record is one line.
        return json.dumps(entry, ensure_ascii=True, default=str)


def _utc_iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def make_handler(
    log_format: LogFormat, secrets: Iterable[str], stream: TextIO | None = None
) -> logging.Handler:
    """A handler with the format, the job's ids and the redaction (stream: stderr if None)."""
    handler = logging.StreamHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(JobFields())
    handler.addFilter(RedactSecrets(secrets))
    return handler


def configure_logging(level: int, secrets: Iterable[str], log_format: LogFormat = "text") -> None:
    handler = make_handler(log_format, secrets)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py logs whole gateway payloads and request URLs at DEBUG, tokens included;
    # httpx and httpcore log every request. Their DEBUG is noise for a self-hoster anyway.
    for noisy in ("discord", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
