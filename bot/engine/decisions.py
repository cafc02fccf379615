"""Pure decisions: a job and what Together said in, a move or a wait out.

No I/O and no clock of their own, so each is tested as a table (tests/unit/test_decisions.py).
The engine's collaborators carry the decisions out through the one state writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.together.errors import TogetherError
from bot.together.models import VideoJob
from storage.models import Job, JobState

NO_VIDEO_LINK = "Together finished the job but sent no video link."


@dataclass(frozen=True)
class Finish:
    """Move the job to ``state``, setting ``changes`` in the same write."""

    state: JobState
    changes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class KeepPolling:
    """Still running; ``provider_status`` is a new status to record, or None if unchanged."""

    provider_status: str | None = None


@dataclass(frozen=True)
class RetrySubmission:
    """Certain that no job was created: back in the queue, submitted again after ``wait``."""

    wait: float


def after_status(job: Job, status: VideoJob, now: float) -> Finish | KeepPolling:
    """What a status read from Together means for a running job."""
    if status.is_completed:
        if not status.video_url:
            return Finish(
                JobState.FAILED,
                {
                    "failure_reason": NO_VIDEO_LINK,
                    "provider_status": status.status,
                    "cost_usd": status.cost,
                    "finished_at": now,
                },
            )
        return Finish(
            JobState.DELIVERING,
            {
                "provider_status": status.status,
                "video_url": status.video_url,
                "cost_usd": status.cost,
                "seed": status.seed if status.seed is not None else job.params.seed,
                "finished_at": status.completed_at or now,
            },
        )
    if status.is_cancelled:
        # Not the member's doing, and nothing made: the quota is given back (a cancelled job
        # does not count), and the message says so.
        return Finish(
            JobState.CANCELLED,
            {
                "failure_reason": f"{status.error_message or 'Together cancelled the job.'} "
                "It does not count against your limits.",
                "provider_status": status.status,
                "cost_usd": status.cost,
                "finished_at": now,
            },
        )
    if status.is_failed:
        reason = status.error_message or f"Together reported the job as {status.status}."
        return Finish(
            JobState.FAILED,
            {
                "failure_reason": reason,
                "provider_status": status.status,
                "cost_usd": status.cost,
                "finished_at": now,
            },
        )
    changed = status.status if status.status and status.status != job.provider_status else None
    return KeepPolling(changed)


def after_submit_error(
    error: TogetherError, attempts: int, max_attempts: int, backoff_delay: float, now: float
) -> RetrySubmission | Finish:
    """What a failed POST means, after ``attempts`` tries (this one included).

    Only a POST certain to have created nothing (never connected, or rate-limited) is tried
    again: any other failure may hide a created, billed job. A 429 is the account's request
    budget, not the job: it is always tried again (the budget has already slowed down), and
    ``attempts`` counts the other failures only.
    """
    if error.status == 429 and error.request_not_created:
        return RetrySubmission(max(error.retry_after or 0.0, backoff_delay))
    retryable = error.request_not_created and error.status is None
    if retryable and attempts < max_attempts:
        return RetrySubmission(max(error.retry_after or 0.0, backoff_delay))
    if error.request_not_created:
        reason = f"Together refused the request: {error.message}"
    else:
        reason = (
            f"Together did not confirm the job ({error.message}). It was not sent again, "
            "so you are not charged twice."
        )
    return Finish(JobState.FAILED, {"failure_reason": reason, "finished_at": now})


def timed_out(job: Job, now: float) -> Finish:
    """The job ran out of its model's time at Together."""
    minutes = round((job.deadline_at - (job.submitted_at or job.created_at)) / 60)
    return Finish(
        JobState.TIMED_OUT,
        {
            "failure_reason": f"Together had not finished after {minutes} minutes, so the job "
            "was stopped.",
            "finished_at": now,
        },
    )


def interrupted(now: float, restarted: bool) -> Finish:
    """A submission that may have reached Together, cut off: failed, never sent again."""
    when = "The bot restarted" if restarted else "Something went wrong in the bot"
    return Finish(
        JobState.FAILED,
        {
            "failure_reason": (
                f"{when} while this job was being sent to Together. It was stopped "
                "rather than sent again, so you are not charged twice. Please try again."
            ),
            "finished_at": now,
        },
    )


def backoff(attempt: int, base: float, cap: float) -> float:
    """``base`` doubled for each attempt after the first, at most ``cap``."""
    return float(min(cap, base * 2 ** min(max(0, attempt - 1), 32)))


def input_gone(kind: str, now: float) -> Finish:
    """A video or soundtrack link expired before the POST and no fresh one could be had."""
    what = "soundtrack" if kind == "soundtrack" else "video"
    return Finish(
        JobState.FAILED,
        {
            "failure_reason": (
                f"The {what} attached to this job is no longer available on Discord (its link "
                "expired before the job could be sent), so it was not sent and you were not "
                f"charged. Attach the {what} again."
            ),
            "finished_at": now,
        },
    )


def cannot_extend(reason: str, now: float) -> Finish:
    """An Extend whose previous part cannot be read: failed before anything was sent."""
    return Finish(
        JobState.FAILED,
        {
            "failure_reason": f"The clip could not be continued: {reason}. Nothing was sent to "
            "Together, so you were not charged.",
            "finished_at": now,
        },
    )
