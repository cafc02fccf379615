"""The quota reservation: read a member's usage, decide, and store the job, atomically.

It joins the two halves that must share a transaction: the usage SQL (storage.usage) and the
job insert (storage.jobs). Neither of those imports the other; this module imports both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from storage.driver import Database
from storage.jobs import insert_job
from storage.models import EffectiveLimits, Job, MediaLink, MemberUsage, NewJob
from storage.usage import insert_within_limits, read_member_usage

_R = TypeVar("_R")

# The server's quota: every limit (member's and server's) is within one server.
QUOTA_SCOPE = "quota"


class Reservations:
    """Stores a job only while the member's quota leaves room for it."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_within_quota(
        self,
        new_job: NewJob,
        decide: Callable[[MemberUsage], _R | None],
        media: Mapping[str, bytes] | None = None,
        limits: EffectiveLimits | None = None,
        links: Sequence[MediaLink] = (),
    ) -> Job | _R:
        """Store the job only if `decide` accepts the member's usage; else return its refusal.

        The usage read, the decision and the insert share one transaction serialized per
        server (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock on the server's id, taken
        before the read), so concurrent requests (from this connection, another, or another
        process) run one after another and can never overshoot a limit together. `decide` is
        plain sync code: no awaiting under the lock.

        On SQLite, with `limits` (the ones `decide` applies) and no images, one statement tries
        first: it inserts the job if the usage leaves room, in one trip to SQLite's thread
        instead of four. Under a burst every command waits for the reservations before its
        own, so their length is what members feel. A refusal, and any job with images or
        links, takes the full path (and every job does on PostgreSQL, where one statement is
        not serialized against another connection's).

        Returns the stored job, or what `decide` returned when it refused (nothing is stored
        then). If `decide` raises, the transaction rolls back, nothing is stored, and the
        exception propagates.
        """
        if limits is not None and not media and not links and self._db.dialect == "sqlite":
            async with self._db.access() as conn:
                accepted = await insert_within_limits(conn, new_job, limits)
            if accepted is not None:
                return accepted
        async with self._db.transaction() as conn:
            # Before the read: under READ COMMITTED the read then sees every job that the
            # previous holder committed (a REPEATABLE READ snapshot would predate the wait).
            await conn.serialize(QUOTA_SCOPE, new_job.guild_id)
            usage = await read_member_usage(
                conn, new_job.guild_id, new_job.user_id, new_job.created_at
            )
            refusal = decide(usage)
            if refusal is not None:
                return refusal
            return await insert_job(conn, new_job, media, links)
