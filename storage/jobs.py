"""The jobs repository: SQL in, typed Job models out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from storage.driver import Connection, Database
from storage.models import FINAL_STATES, Job, JobState, MediaLink, NewJob
from storage.rows import JOB_COLUMNS, NEW_JOB_COLUMNS, UNFINISHED, job_from_row, new_job_values

# Columns a transition or update may set; ids, the request and its owner never change.
MUTABLE_COLUMNS = frozenset(
    {
        "message_id",
        "together_id",
        "provider_status",
        "video_url",
        "cost_usd",
        "failure_reason",
        "failure_text",
        "submitted_at",
        "finished_at",
        "delivered_at",
        "delivery",
        "seed",
        "deadline_at",
        "announced",
        # Blanked once a job's end is shown: a live interaction token is a credential.
        "interaction_token",
    }
)

INSERT_JOB = f"""
INSERT INTO jobs (state, updated_at, {", ".join(NEW_JOB_COLUMNS)})
VALUES ('queued', :created_at, {", ".join(":" + c for c in NEW_JOB_COLUMNS)})
RETURNING {", ".join(JOB_COLUMNS)}
"""
SELECT_JOB = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE id = ?"
SELECT_IN_STATES = """
SELECT {columns} FROM jobs WHERE state IN ({marks}) ORDER BY id
"""
INSERT_MEDIA = "INSERT INTO job_media (job_id, kind, data) VALUES (?, ?, ?)"
SELECT_MEDIA = "SELECT kind, data FROM job_media WHERE job_id = ? ORDER BY kind"
SELECT_DURATIONS = """
SELECT model, finished_at - submitted_at FROM jobs
WHERE state IN ('delivering', 'delivered') AND submitted_at IS NOT NULL
  AND finished_at > submitted_at
ORDER BY id DESC LIMIT ?
"""
SELECT_UNFINISHED = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND {UNFINISHED}
ORDER BY id
"""
# Unfinished jobs by state, of every server or of one (jobs_by_state).
COUNT_UNFINISHED = f"SELECT state, COUNT(*) FROM jobs WHERE {UNFINISHED} GROUP BY state"
COUNT_UNFINISHED_IN_GUILD = (
    f"SELECT state, COUNT(*) FROM jobs WHERE guild_id = ? AND {UNFINISHED} GROUP BY state"
)
# A server's failed and timed-out jobs that ended since a time, latest first.
SELECT_RECENT_FAILURES = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND state IN ('failed', 'timed_out')
  AND COALESCE(finished_at, updated_at) >= ?
ORDER BY COALESCE(finished_at, updated_at) DESC, id DESC LIMIT ?
"""

# Finished jobs past retention that still have images; a bounded batch per transaction.
MARK_MEDIA_PRUNED = """
UPDATE jobs SET media_pruned_at = :now
WHERE id IN (
    -- From job_media (small: only unpruned jobs with images; its key covers job_id).
    SELECT DISTINCT jobs.id FROM job_media JOIN jobs ON jobs.id = job_media.job_id
    WHERE jobs.state IN ({final}) AND jobs.updated_at < :before
    ORDER BY jobs.id LIMIT :batch
)
RETURNING id
"""
DELETE_MEDIA = "DELETE FROM job_media WHERE job_id = ?"
LINK_FIELDS = ("kind", "url", "expires_at", "channel_id", "message_id", "attachment_id")
INSERT_LINK = f"""
INSERT INTO job_links (job_id, {", ".join(LINK_FIELDS)})
VALUES (?, {", ".join("?" for _ in LINK_FIELDS)})
"""
SELECT_LINKS = f"SELECT {', '.join(LINK_FIELDS)} FROM job_links WHERE job_id = ? ORDER BY kind"
SET_MESSAGE_ID = "UPDATE jobs SET message_id = ? WHERE id = ? AND message_id IS NULL RETURNING id"
REPLACE_MESSAGE_ID = "UPDATE jobs SET message_id = ? WHERE id = ? AND message_id = ? RETURNING id"
SELECT_UNANNOUNCED = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs WHERE announced = 0 ORDER BY id"
SELECT_CHAIN = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE chain_id = ? OR id = ?
ORDER BY COALESCE(chain_part, 1), id
"""
SELECT_BY_MEMBER = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND user_id = ?
ORDER BY id DESC LIMIT ?
"""
SELECT_MEMBER_OLDER = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND user_id = ? AND id < ?
ORDER BY id DESC LIMIT ?
"""
SELECT_MEMBER_NEWER = f"""
SELECT {", ".join(JOB_COLUMNS)} FROM jobs
WHERE guild_id = ? AND user_id = ? AND id > ?
ORDER BY id LIMIT ?
"""
COUNT_MEMBER = "SELECT COUNT(*) FROM jobs WHERE guild_id = ? AND user_id = ? AND id > ?"
# A chain's parts: its first job (whose own chain_id may be empty) and every job naming it,
# joins left out (they stitch the parts, they are not one); a part made twice counts once.
COUNT_CHAIN_PARTS = """
SELECT COUNT(DISTINCT COALESCE(chain_part, 1)) FROM jobs
WHERE (id = :chain OR chain_id = :chain) AND (derivation IS NULL OR derivation <> 'join')
"""


def _assignments(changes: Mapping[str, object]) -> str:
    unknown = set(changes) - MUTABLE_COLUMNS
    if unknown:
        raise ValueError(f"cannot set {', '.join(sorted(unknown))} on a job")
    return "".join(f", {column} = :{column}" for column in changes)


def transition_statement(changes: Mapping[str, object], condition: str = "") -> str:
    """The compare-and-set UPDATE of `JobRepository.transition`, with an extra `condition`
    (storage.leases adds the lease's); raises ValueError for a column not in MUTABLE_COLUMNS."""
    return (
        f"UPDATE jobs SET state = :new_state, updated_at = :now{_assignments(changes)} "
        f"WHERE id = :id AND state = :expected{condition} RETURNING {', '.join(JOB_COLUMNS)}"
    )


def transition_params(
    job_id: int, expected: JobState, new_state: JobState, now: float, changes: Mapping[str, object]
) -> dict[str, object]:
    params = {**changes, "new_state": new_state.value, "now": now}
    return params | {"id": job_id, "expected": expected.value}


async def insert_job(
    conn: Connection,
    new_job: NewJob,
    media: Mapping[str, bytes] | None,
    links: Sequence[MediaLink] = (),
) -> Job:
    """Insert a queued job, its images and its links inside the caller's transaction.

    Atomic only with the transaction the caller holds (JobRepository.create opens one; the
    quota reservation in storage.reservations runs it in the transaction that read the usage).
    """
    row = await conn.fetch_one(INSERT_JOB, new_job_values(new_job))
    assert row is not None
    job = job_from_row(row)
    if media:
        await conn.execute_many(
            INSERT_MEDIA, [(job.id, kind, data) for kind, data in media.items()]
        )
    if links:
        rows = [(job.id, *(getattr(link, name) for name in LINK_FIELDS)) for link in links]
        await conn.execute_many(INSERT_LINK, rows)
    return job


class JobRepository:
    """Jobs in the database. Every state change is a compare-and-set on (id, state).

    Each method is one statement or one transaction of its own, so it is atomic; a method that
    can lose a race to another writer says what it returns when it does. None of them raises
    for a missing job: it reads as "nothing there" or "someone else won".
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        new_job: NewJob,
        media: Mapping[str, bytes] | None = None,
        links: Sequence[MediaLink] = (),
    ) -> Job:
        """Store a new queued job, its images and links in one transaction; returns the job.

        The job and its media are stored together or not at all. It does not check any quota:
        /video stores its jobs through storage.reservations instead.
        """
        async with self._db.transaction() as conn:
            return await insert_job(conn, new_job, media, links)

    async def get(self, job_id: int) -> Job | None:
        """The job as stored now, or None when no job has that id."""
        row = await self._db.fetch_one(SELECT_JOB, (job_id,))
        return job_from_row(row) if row else None

    async def transition(
        self,
        job_id: int,
        expected: JobState,
        new_state: JobState,
        now: float,
        **changes: object,
    ) -> Job | None:
        """Move the job from `expected` to `new_state`, setting `changes` in the same statement.

        Returns the updated job, or None when the job was not in `expected` (someone else won,
        or there is no such job); nothing is written then. Raises ValueError, before writing
        anything, when `changes` names a column outside MUTABLE_COLUMNS.
        """
        # One statement in autocommit mode is its own transaction: the compare-and-set and the
        # read of its result are atomic (one trip to SQLite's thread; on PostgreSQL a second
        # writer waits for the row and re-checks the state, so it loses).
        sql = transition_statement(changes)
        row = await self._db.fetch_one(
            sql, transition_params(job_id, expected, new_state, now, changes)
        )
        return job_from_row(row) if row else None

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        """Set fields without changing state, only while the job is still in `expected`.

        The same compare-and-set as `transition`: None (and nothing written) when the job has
        left `expected`.
        """
        return await self.transition(job_id, expected, expected, now, **changes)

    async def media(self, job_id: int) -> dict[str, bytes]:
        """The job's images by kind ('first_frame', 'last_frame', 'reference').

        Empty when the job had none, or they were pruned (see Job.media_pruned_at).
        """
        rows = await self._db.fetch_all(SELECT_MEDIA, (job_id,))
        return {str(kind): bytes(data) for kind, data in rows}

    async def add_media(self, job_id: int, kind: str, data: bytes) -> None:
        """Store an image made for a job after it was accepted (Extend's last frame).

        Replaces an image of the same kind, so a preparation repeated after a restart is safe.
        """
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM job_media WHERE job_id = ? AND kind = ?", (job_id, kind)
            )
            await conn.execute(INSERT_MEDIA, (job_id, kind, data))

    async def chain(self, chain_id: int) -> list[Job]:
        """Every job of a chain, in part order: its first part (id `chain_id`, which may carry
        no chain_id of its own) and every job whose chain_id is `chain_id`, Joins included."""
        rows = await self._db.fetch_all(SELECT_CHAIN, (chain_id, chain_id))
        return [job_from_row(row) for row in rows]

    async def links(self, job_id: int) -> list[MediaLink]:
        """The job's video and soundtrack links (kinds 'soundtrack', 'video'); empty if none."""
        rows = await self._db.fetch_all(SELECT_LINKS, (job_id,))
        return [MediaLink(*row) for row in rows]

    async def prune_media(self, before: float, now: float, batch: int = 200) -> int:
        """Delete the images of jobs that ended before `before`; returns how many jobs.

        Each job is marked in the same transaction, so its Retry can say why it cannot run.
        Batches of `batch` jobs are separate transactions: an interruption keeps the batches
        already done, and each of those jobs is both marked and emptied.
        """
        final = ", ".join(f"'{state.value}'" for state in FINAL_STATES)
        sql = MARK_MEDIA_PRUNED.format(final=final)
        pruned = 0
        while True:
            async with self._db.transaction() as conn:
                rows = await conn.fetch_all(sql, {"now": now, "before": before, "batch": batch})
                await conn.execute_many(DELETE_MEDIA, rows)
            pruned += len(rows)
            if len(rows) < batch:
                return pruned

    async def in_states(self, states: Iterable[JobState]) -> list[Job]:
        """Every job in one of `states`, oldest first (one read)."""
        wanted = [state.value for state in states]
        sql = SELECT_IN_STATES.format(
            columns=", ".join(JOB_COLUMNS), marks=", ".join("?" for _ in wanted)
        )
        rows = await self._db.fetch_all(sql, wanted)
        return [job_from_row(row) for row in rows]

    async def set_message_id(self, job_id: int, message_id: int) -> bool:
        """Record the job's message if none is recorded yet, whatever state the job is in.

        A compare-and-set on an empty message_id: False (and nothing written) when the job
        already has a message, recorded by another writer first, or there is no such job.
        """
        row = await self._db.fetch_one(SET_MESSAGE_ID, (message_id, job_id))
        return row is not None

    async def replace_message_id(self, job_id: int, old_id: int, new_id: int) -> bool:
        """Point the job at ``new_id`` where its message was ``old_id`` (deleted by someone).

        False when the job's message is no longer ``old_id``: another writer moved it first
        (or there is no such job). Nothing is written then.
        """
        row = await self._db.fetch_one(REPLACE_MESSAGE_ID, (new_id, job_id, old_id))
        return row is not None

    async def unannounced(self) -> list[Job]:
        """Finished jobs whose final state has not reached their message yet."""
        rows = await self._db.fetch_all(SELECT_UNANNOUNCED)
        return [job_from_row(row) for row in rows]

    async def recent_durations(self, limit: int = 2000) -> dict[str, list[float]]:
        """Seconds from submission to completion of recent finished jobs, by model, oldest first."""
        rows = await self._db.fetch_all(SELECT_DURATIONS, (limit,))
        durations: dict[str, list[float]] = {}
        for model, seconds in reversed(list(rows)):
            durations.setdefault(str(model), []).append(float(seconds))
        return durations

    async def recent_for_member(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        """The member's latest `limit` jobs on the server, newest first, whatever their state."""
        rows = await self._db.fetch_all(SELECT_BY_MEMBER, (guild_id, user_id, limit))
        return [job_from_row(row) for row in rows]

    async def member_page(
        self, guild_id: int, user_id: int, before_id: int | None, limit: int
    ) -> list[Job]:
        """The member's jobs on the server with an id below `before_id` (None: all), newest
        first: at most `limit` + 1, so the caller can tell whether older ones follow.

        Ids only grow, so a page anchored on `before_id` keeps its jobs when new ones arrive.
        """
        before = before_id if before_id is not None else 2**63 - 1
        rows = await self._db.fetch_all(SELECT_MEMBER_OLDER, (guild_id, user_id, before, limit + 1))
        return [job_from_row(row) for row in rows]

    async def member_page_newer(
        self, guild_id: int, user_id: int, after_id: int, limit: int
    ) -> list[Job]:
        """The member's jobs on the server with an id above `after_id`, oldest first (the
        nearest first): at most `limit` + 1, so the caller can tell whether newer ones follow."""
        rows = await self._db.fetch_all(
            SELECT_MEMBER_NEWER, (guild_id, user_id, after_id, limit + 1)
        )
        return [job_from_row(row) for row in rows]

    async def member_count(self, guild_id: int, user_id: int, after_id: int = 0) -> int:
        """How many of the member's jobs on the server have an id above `after_id` (0: all)."""
        row = await self._db.fetch_one(COUNT_MEMBER, (guild_id, user_id, after_id))
        return int(row[0]) if row else 0

    async def chain_size(self, chain_id: int) -> int:
        """How many parts the chain started by job `chain_id` has: that job and the parts
        naming it (Extend), counted by part number, without the joins; 0 when no job has
        that id and none names it."""
        row = await self._db.fetch_one(COUNT_CHAIN_PARTS, {"chain": chain_id})
        return int(row[0]) if row else 0

    async def unfinished_in_guild(self, guild_id: int) -> list[Job]:
        """The server's jobs still in progress (queued to delivering), oldest first."""
        rows = await self._db.fetch_all(SELECT_UNFINISHED, (guild_id,))
        return [job_from_row(row) for row in rows]

    async def unfinished_counts(self, guild_id: int | None = None) -> dict[JobState, int]:
        """Unfinished jobs by state (every unfinished state, 0 included, in life order), of
        every server or of `guild_id`: whichever process works them (for /videoadmin status)."""
        counts = {state: 0 for state in JobState if not state.is_final}
        if guild_id is None:
            rows = await self._db.fetch_all(COUNT_UNFINISHED)
        else:
            rows = await self._db.fetch_all(COUNT_UNFINISHED_IN_GUILD, (guild_id,))
        for state, count in rows:
            counts[JobState(str(state))] = int(count)
        return counts

    async def recent_failures(self, guild_id: int, since: float, limit: int = 5) -> list[Job]:
        """The server's jobs that failed or timed out at or after `since` (Unix time), the
        latest end first, at most `limit` (for /videoadmin status). A job without an end time
        (failed before it had one) counts from its last update.
        """
        rows = await self._db.fetch_all(SELECT_RECENT_FAILURES, (guild_id, since, limit))
        return [job_from_row(row) for row in rows]
