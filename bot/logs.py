"""Logging set-up: one format, and no secret ever reaches a log line."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Interaction tokens travel in webhook and callback URLs; they are credentials for 15 minutes.
_URL_TOKENS = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]+")
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


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
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: int, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # discord.py logs whole gateway payloads and request URLs at DEBUG, tokens included;
    # httpx and httpcore log every request. Their DEBUG is noise for a self-hoster anyway.
    for noisy in ("discord", "httpx", "httpcore", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
