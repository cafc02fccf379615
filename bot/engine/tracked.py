"""The engine's working copy of one unfinished job, and the sub-state of its submission."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from enum import Enum

from bot.together.models import CreateVideoRequest, VideoJob
from storage.models import Job, JobState

# States that hold one of the bot's active slots (a request to Together is or was in flight).
ACTIVE_STATES = frozenset({JobState.SUBMITTING, JobState.RUNNING, JobState.DELIVERING})
# States whose message shows a clock that should keep moving between state changes.
TICKING_STATES = frozenset({JobState.QUEUED, JobState.RUNNING})


class Submission(Enum):
    """Where this process's submission of a job stands; kept in memory only.

    A job found in "submitting" after a restart has none: its POST may have reached Together,
    so it is failed, never sent again.
    """

    # Picked from the queue; being stored as "submitting" and its body built.
    PREPARING = "preparing"
    # Stored and built; waiting for room in the request budget. Never sent: a shutdown puts
    # it back in the queue.
    READY = "ready"
    # The POST is under way (or answered, not yet stored): it may have reached Together.
    SENDING = "sending"


@dataclass
class Tracked:
    """One unfinished job as the engine sees it: the stored job plus what is in flight."""

    job: Job
    due_at: float = 0.0  # when its next step (submission, poll, delivery try) may start
    busy: bool = False  # a task is working on it: the scheduler leaves it alone
    attempts: int = 0  # submissions tried that failed for another reason than a 429
    rate_limited: int = 0  # submissions Together answered with 429 (never counted as attempts)
    poll_failures: int = 0
    # Progress edits: one at a time per job, coalesced, never reordered.
    last_edit_at: float = -math.inf
    edit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    edit_pending: bool = False
    edit_failures: int = 0
    # A message posted because the job had none; kept across transitions that race its write.
    posted_message_id: int | None = None
    submission: Submission | None = None
    request: CreateVideoRequest | None = None  # built, while READY
    accepted: VideoJob | None = None  # Together's answer, until it is stored
    # Its lease is stored as this process's (always, without leases); False while a new job's
    # claim is being written, so a renewal in between does not count it as lost.
    leased: bool = True

    @property
    def holds_slot(self) -> bool:
        # A queued job whose submission is under way holds a slot before its state says so.
        return self.job.state in ACTIVE_STATES or self.submission is not None
