"""The engine's pure decisions, as tables: a job and an answer in, a move or a wait out."""

from __future__ import annotations

import pytest

from bot.engine.decisions import (
    Finish,
    KeepPolling,
    RetrySubmission,
    after_status,
    after_submit_error,
    backoff,
    interrupted,
    timed_out,
)
from bot.i18n import Text
from bot.together.errors import (
    TogetherBadRequest,
    TogetherConnectionError,
    TogetherError,
    TogetherRateLimited,
    TogetherServerError,
)
from bot.together.models import VideoJob
from storage.models import JobState
from tests.unit.fakes import make_job, status

NOW = 1_700_000_000.0


def key_of(key: str, **params: object) -> str:
    """A failure_text as stored: the bot's own reasons carry their catalog key."""
    return Text(key, params).to_json()


RUNNING = make_job(1, NOW - 60, state=JobState.RUNNING, provider_status="in_progress", seed=5)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (status("in_progress"), KeepPolling(None)),
        (status("queued"), KeepPolling("queued")),
        (status(None), KeepPolling(None)),  # type: ignore[arg-type]
        (
            status("completed", video_url="https://x/v.mp4", cost=0.28, completed_at=NOW - 5),
            Finish(
                JobState.DELIVERING,
                {
                    "provider_status": "completed",
                    "video_url": "https://x/v.mp4",
                    "cost_usd": 0.28,
                    "seed": 5,  # Together sent none: the job's own is kept
                    "finished_at": NOW - 5,
                },
            ),
        ),
        (
            status("completed", video_url="https://x/v.mp4", seed=9),
            Finish(
                JobState.DELIVERING,
                {
                    "provider_status": "completed",
                    "video_url": "https://x/v.mp4",
                    "cost_usd": None,
                    "seed": 9,
                    "finished_at": NOW,
                },
            ),
        ),
        (
            status("completed", cost=0.28),
            Finish(
                JobState.FAILED,
                {
                    "failure_reason": "Together finished the job but sent no video link.",
                    "failure_text": key_of("reason.no_video_link"),
                    "provider_status": "completed",
                    "cost_usd": 0.28,
                    "finished_at": NOW,
                },
            ),
        ),
        (
            status("failed", error_message="flagged"),
            Finish(
                JobState.FAILED,
                {
                    "failure_reason": "flagged",
                    "provider_status": "failed",
                    "cost_usd": None,
                    "finished_at": NOW,
                },
            ),
        ),
        (
            status("expired"),
            Finish(
                JobState.FAILED,
                {
                    "failure_reason": "Together reported the job as expired.",
                    "failure_text": key_of("reason.reported_as", status="expired"),
                    "provider_status": "expired",
                    "cost_usd": None,
                    "finished_at": NOW,
                },
            ),
        ),
        (
            # Cancelled at Together ends cancelled: the quota is given back.
            status("cancelled"),
            Finish(
                JobState.CANCELLED,
                {
                    "failure_reason": "Together cancelled the job. It does not count against "
                    "your limits.",
                    "failure_text": key_of("reason.cancelled_at_together"),
                    "provider_status": "cancelled",
                    "cost_usd": None,
                    "finished_at": NOW,
                },
            ),
        ),
        # An unknown status is Together still working: keep polling, and show it.
        (status("paused"), KeepPolling("paused")),
    ],
    ids=[
        "same",
        "new-status",
        "no-status",
        "done",
        "done-new-seed",
        "no-link",
        "failed",
        "other",
        "cancelled",
        "unknown",
    ],
)
def test_after_status(answer: VideoJob, expected: Finish | KeepPolling) -> None:
    assert after_status(RUNNING, answer, NOW) == expected


UNCONFIRMED = "not sent again, so you are not charged twice"


@pytest.mark.parametrize(
    ("error", "attempts", "expected"),
    [
        # Never connected, or rate-limited: certain nothing was created, so retried.
        (TogetherConnectionError("refused", kind="connect"), 1, RetrySubmission(10.0)),
        (TogetherRateLimited("slow", status=429, retry_after=30.0), 1, RetrySubmission(30.0)),
        (TogetherRateLimited("slow", status=429, retry_after=1.0), 2, RetrySubmission(10.0)),
        # A 429 is the account's budget: retried however many tries there were.
        (TogetherRateLimited("slow", status=429), 9, RetrySubmission(10.0)),
        # Out of attempts.
        (TogetherConnectionError("refused", kind="connect"), 3, "refused the request: refused"),
        # Refused outright: nothing to retry.
        (TogetherBadRequest("bad steps", status=400), 1, "refused the request: bad steps"),
        # Unclear: the job may exist and bill; never sent again.
        (TogetherServerError("upstream", status=503), 1, UNCONFIRMED),
        (TogetherConnectionError("read timed out", kind="read_timeout"), 1, UNCONFIRMED),
    ],
    ids=[
        "connect",
        "429-after",
        "429-backoff",
        "429-never-exhausted",
        "exhausted",
        "400",
        "503",
        "read-timeout",
    ],
)
def test_after_submit_error(
    error: TogetherError, attempts: int, expected: RetrySubmission | str
) -> None:
    decision = after_submit_error(error, attempts, 3, backoff_delay=10.0, now=NOW)
    if isinstance(expected, RetrySubmission):
        assert decision == expected
    else:
        assert isinstance(decision, Finish) and decision.state is JobState.FAILED
        assert expected in str(decision.changes["failure_reason"])
        assert decision.changes["finished_at"] == NOW


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 5.0), (1, 5.0), (2, 10.0), (3, 20.0), (5, 60.0), (40, 60.0), (10_000, 60.0)],
)
def test_backoff_doubles_up_to_its_cap(attempt: int, expected: float) -> None:
    assert backoff(attempt, base=5.0, cap=60.0) == expected


def test_timed_out_names_the_minutes_from_submission() -> None:
    job = make_job(1, NOW, submitted_at=NOW + 120, deadline_at=NOW + 120 + 1800)
    decision = timed_out(job, NOW + 2000)
    assert decision.state is JobState.TIMED_OUT
    assert "after 30 minutes" in str(decision.changes["failure_reason"])


@pytest.mark.parametrize(("restarted", "words"), [(True, "restarted"), (False, "went wrong")])
def test_an_interrupted_submission_fails_and_says_why(restarted: bool, words: str) -> None:
    decision = interrupted(NOW, restarted)
    assert decision.state is JobState.FAILED
    assert words in str(decision.changes["failure_reason"])
    assert "not charged twice" in str(decision.changes["failure_reason"])
