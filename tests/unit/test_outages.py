"""How retried failures are logged: a database outage in one line, anything else with its
traceback (bot/outages.py)."""

from __future__ import annotations

import logging

import pytest

from bot.outages import FailureRun, log_failure
from storage.driver import DatabaseUnavailable

log = logging.getLogger("test.outages")
DOWN = DatabaseUnavailable("postgresql://bot@/videos", "cannot connect: No such file or directory")


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, bool]]:
    return [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]


def test_an_outage_is_one_line_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    log_failure(log, "Its next step failed; will try again", DOWN)
    assert lines(caplog) == [
        (
            logging.WARNING,
            "Its next step failed; will try again (database postgresql://bot@/videos unreachable: "
            "cannot connect: No such file or directory)",
            False,
        )
    ]


def test_anything_else_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log_failure(log, "Its next step failed; will try again", ValueError("a bug"))
    assert lines(caplog) == [(logging.ERROR, "Its next step failed; will try again", True)]


def test_a_run_of_outage_failures_is_told_once_then_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    run = FailureRun(log, "Lease heartbeat")
    for _ in range(5):
        run.failed(DOWN)
    run.succeeded()
    run.succeeded()
    assert [(level, text.split(" (")[0]) for level, text, _ in lines(caplog)] == [
        (logging.WARNING, "Lease heartbeat failed"),
        (logging.INFO, "Lease heartbeat works again"),
    ]
    assert not any(traced for _, _, traced in lines(caplog))


def test_unexpected_failures_are_each_logged_with_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    run = FailureRun(log, "Claiming free jobs")
    run.failed(DOWN)
    run.failed(ValueError("a bug"))
    run.failed(ValueError("a bug"))
    assert [(level, traced) for level, _, traced in lines(caplog)] == [
        (logging.WARNING, False),
        (logging.ERROR, True),
        (logging.ERROR, True),
    ]


def test_the_records_fields_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    log_failure(log, "The remix form failed", DOWN, extra={"job_id": 12})
    log_failure(log, "The remix form failed", ValueError("a bug"), extra={"job_id": 12})
    assert [getattr(record, "job_id", None) for record in caplog.records] == [12, 12]


async def test_an_attempt_logs_how_the_work_went_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    run = FailureRun(log, "Sharing the Together request budget")

    async def down() -> None:
        raise DOWN

    async def works() -> int:
        return 1

    await run.attempt(down())
    await run.attempt(works())
    assert [level for level, _, _ in lines(caplog)] == [logging.WARNING, logging.INFO]
