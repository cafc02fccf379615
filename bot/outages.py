"""How an expected failure is logged: one line for a database outage, else a traceback.

A PostgreSQL restart cuts every connection, and each background task (lease heartbeat, claim
pass, budget sync, pruning) and each job's next step fails until the server is back. Those
failures are expected and retried (storage.driver.DatabaseUnavailable); a traceback per retry
(17 of them, 900 lines, in a 14 s outage) buried what happened. Anything else is unexpected
and keeps its traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping

from storage.driver import DatabaseUnavailable


def log_failure(
    logger: logging.Logger,
    what: str,
    exc: BaseException,
    extra: Mapping[str, object] | None = None,
) -> None:
    """Log that `what` failed, and what follows (`what` says it: "...; will try again").
    `extra`: the record's fields, such as the job id (bot/logs.py)."""
    if isinstance(exc, DatabaseUnavailable):
        logger.warning("%s (%s)", what, exc, extra=extra)
    else:
        logger.error("%s", what, exc_info=exc, extra=extra)


class FailureRun:
    """The log of a periodic task's failures: an outage once per run of failures, then a line
    when the task works again; an unexpected error every time, with its traceback."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._log = logger
        self._what = what  # e.g. "Lease heartbeat"
        self._failing = False

    async def attempt(self, work: Awaitable[object]) -> None:
        """Await one run of the task's work, logging how it went; never raises an Exception."""
        try:
            await work
        except Exception as exc:
            self.failed(exc)
        else:
            self.succeeded()

    def failed(self, exc: BaseException) -> None:
        if not isinstance(exc, DatabaseUnavailable):
            self._log.error("%s failed; trying again", self._what, exc_info=exc)
        elif not self._failing:
            self._log.warning(
                "%s failed (%s); trying again, quietly until it works", self._what, exc
            )
        self._failing = True

    def succeeded(self) -> None:
        if self._failing:
            self._log.info("%s works again", self._what)
            self._failing = False
