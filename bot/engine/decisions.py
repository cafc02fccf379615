"""Pure decisions: a job and what Together said in, a move or a wait out.

No I/O and no clock of their own, so each is tested as a table (tests/unit/test_decisions.py).
The engine's collaborators carry the decisions out through the one state writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.i18n import Text, text
from bot.together.errors import TogetherError
from bot.together.models import VideoJob
from storage.models import Job, JobState

NO_VIDEO_LINK = text("reason.no_video_link")


def why(reason: str | Text) -> dict[str, object]:
    """The failure columns for a reason: the English words, and for the bot's own reasons the
    key that shows them in the job's language."""
    if isinstance(reason, str):
        return {"failure_reason": reason}
    return {"failure_reason": reason.render(None), "failure_text": reason.to_json()}


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
                    **why(NO_VIDEO_LINK),
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
                **why(
                    text("reason.cancelled_at_together_said", message=status.error_message)
                    if status.error_message
                    else text("reason.cancelled_at_together")
                ),
                "provider_status": status.status,
                "cost_usd": status.cost,
                "finished_at": now,
            },
        )
    if status.is_failed:
        # Together's own words stay as they are; only the bot's are translated.
        reason = status.error_message or text("reason.reported_as", status=status.status)
        return Finish(
            JobState.FAILED,
            {
                **why(reason),
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
    key = "reason.refused" if error.request_not_created else "reason.unconfirmed"
    return Finish(JobState.FAILED, {**why(text(key, message=error.message)), "finished_at": now})


def timed_out(job: Job, now: float) -> Finish:
    """The job ran out of its model's time at Together."""
    minutes = round((job.deadline_at - (job.submitted_at or job.created_at)) / 60)
    return Finish(
        JobState.TIMED_OUT,
        {
            **why(text("reason.timed_out", minutes=minutes)),
            "finished_at": now,
        },
    )


def interrupted(now: float, restarted: bool) -> Finish:
    """A submission that may have reached Together, cut off: failed, never sent again."""
    key = "reason.interrupted_by_restart" if restarted else "reason.interrupted_by_error"
    return Finish(
        JobState.FAILED,
        {
            **why(text(key)),
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
            **why(text(f"reason.{what}_gone")),
            "finished_at": now,
        },
    )


def cannot_extend(reason: str, now: float) -> Finish:
    """An Extend whose previous part cannot be read: failed before anything was sent."""
    return Finish(
        JobState.FAILED,
        {
            **why(text("reason.cannot_extend", reason=reason)),
            "finished_at": now,
        },
    )
