"""Job leases: which process works which unfinished job, and until when.

A process claims the jobs it works (`lease_owner` = its id, `lease_until` = now + LEASE_SECONDS)
and renews them all from its heartbeat; a job whose lease is empty or expired is free for any
process to claim. The engine's own state writes also require the lease (JobLeases.transition:
JobRepository's compare-and-set plus the lease), so a process that lost a job cannot write it.

Portable SQL only (`:name` placeholders, standard UPDATE ... RETURNING): the same statements run
on PostgreSQL, where the claim's inner SELECT also takes `FOR UPDATE SKIP LOCKED` (see
CLAIM_FREE).
"""

from __future__ import annotations

from storage.db import Database
from storage.driver import Dialect
from storage.jobs import transition_params, transition_statement
from storage.models import Job, JobState
from storage.rows import JOB_COLUMNS, UNFINISHED, job_from_row

_RETURNING = ", ".join(JOB_COLUMNS)
# The jobs columns this module owns: who holds a job and until when (not part of Job).
LEASE_COLUMNS = frozenset({"lease_owner", "lease_until"})

# Free: the lease expired, or nobody ever held it and its creator had a lease's time to claim
# it (a job is stored before the member's first answer and only then handed to the engine;
# taken earlier by another process, it could be sent though the answer failed and the intake
# cancels it).
_FREE = "(lease_until < :now OR (lease_owner IS NULL AND created_at < :unclaimed_before))"

# The oldest free unfinished jobs, at most :limit, in one statement. The outer condition repeats
# the inner one, so a row another process claimed in between is left alone.
# PostgreSQL: the inner SELECT also takes "FOR UPDATE SKIP LOCKED" (after LIMIT), so concurrent
# claimers skip each other's rows instead of waiting; that is the only difference. SQLite needs
# none: a write statement holds the database's one write lock.
CLAIM_FREE_INNER = f"SELECT id FROM jobs WHERE {UNFINISHED} AND {_FREE} ORDER BY id LIMIT :limit"


def _claim_free(inner: str) -> str:
    return f"""
UPDATE jobs SET lease_owner = :owner, lease_until = :until
WHERE id IN ({inner})
  AND {_FREE}
RETURNING {_RETURNING}
"""


CLAIM_FREE: dict[Dialect, str] = {
    "sqlite": _claim_free(CLAIM_FREE_INNER),
    "postgresql": _claim_free(CLAIM_FREE_INNER + " FOR UPDATE SKIP LOCKED"),
}
# Every unfinished job, whoever held it: only for a start that proves no other process lives.
CLAIM_ALL = f"""
UPDATE jobs SET lease_owner = :owner, lease_until = :until
WHERE {UNFINISHED}
RETURNING {_RETURNING}
"""
# A job this process just stored and answered: free unless another process holds a live lease.
CLAIM_NEW = f"""
UPDATE jobs SET lease_owner = :owner, lease_until = :until
WHERE id = :id AND {UNFINISHED}
  AND (lease_owner IS NULL OR lease_owner = :owner OR lease_until < :now)
RETURNING id
"""
# Renewal: still ours (expired or not: nobody else claimed it) -> extended.
RENEW_ALL = f"""
UPDATE jobs SET lease_until = :until
WHERE lease_owner = :owner AND {UNFINISHED}
RETURNING id
"""
RENEW_ONE = f"""
UPDATE jobs SET lease_until = :until
WHERE id = :id AND lease_owner = :owner AND {UNFINISHED}
RETURNING id
"""
# Released: no owner, expired now (so free at once, unlike a job nobody ever claimed).
RELEASE_ALL = "UPDATE jobs SET lease_owner = NULL, lease_until = :now WHERE lease_owner = :owner"
SELECT_HOLDER = "SELECT lease_owner FROM jobs WHERE id = :id"
# The engine's compare-and-set writes also require the lease (JobRepository.transition's, plus
# this); a member's cancel and the intake's writes use the plain one.
LEASE_HELD = " AND lease_owner = :owner"


class JobLeases:
    """The leases of the process `owner`. Times are Unix seconds, given by the caller's clock."""

    def __init__(self, db: Database, owner: str) -> None:
        self._db = db
        self.owner = owner

    async def transition(
        self, job_id: int, expected: JobState, new_state: JobState, now: float, **changes: object
    ) -> Job | None:
        """JobRepository.transition, only while this process holds the job's lease (expired
        or not: nobody else claimed it). None, and nothing written, when either check fails."""
        sql = transition_statement(changes, LEASE_HELD)
        params = transition_params(job_id, expected, new_state, now, changes)
        row = await self._db.fetch_one(sql, params | {"owner": self.owner})
        return job_from_row(row) if row else None

    async def update(
        self, job_id: int, expected: JobState, now: float, **changes: object
    ) -> Job | None:
        """JobRepository.update, only while this process holds the job's lease."""
        return await self.transition(job_id, expected, expected, now, **changes)

    async def claim_free(
        self, now: float, until: float, unclaimed_before: float, limit: int
    ) -> list[Job]:
        """Claim up to `limit` free unfinished jobs, oldest first; returns them as claimed.

        Free: lease expired (`lease_until < now`), or never claimed and created before
        `unclaimed_before`.
        """
        params = {
            "owner": self.owner,
            "now": now,
            "until": until,
            "unclaimed_before": unclaimed_before,
            "limit": limit,
        }
        rows = await self._db.fetch_all(CLAIM_FREE[self._db.dialect], params)
        return sorted((job_from_row(row) for row in rows), key=lambda job: job.id)

    async def claim_all(self, until: float) -> list[Job]:
        """Claim every unfinished job, live leases included, oldest first.

        Only for a process that knows it is the only one (SQLite's lock file).
        """
        rows = await self._db.fetch_all(CLAIM_ALL, {"owner": self.owner, "until": until})
        return sorted((job_from_row(row) for row in rows), key=lambda job: job.id)

    async def claim_new(self, job_id: int, now: float, until: float) -> bool:
        """Claim one job; False when it is finished or another process holds a live lease."""
        params = {"owner": self.owner, "id": job_id, "now": now, "until": until}
        return await self._db.fetch_one(CLAIM_NEW, params) is not None

    async def renew(self, until: float) -> set[int]:
        """Extend every unfinished job this process holds, in one statement; their ids."""
        rows = await self._db.fetch_all(RENEW_ALL, {"owner": self.owner, "until": until})
        return {int(row[0]) for row in rows}

    async def renew_one(self, job_id: int, until: float) -> bool:
        """Extend one job's lease; False when this process no longer holds it."""
        params = {"owner": self.owner, "id": job_id, "until": until}
        return await self._db.fetch_one(RENEW_ONE, params) is not None

    async def release_all(self, now: float) -> None:
        """Give up every lease (clean shutdown): other processes may claim them at once."""
        await self._db.fetch_one(RELEASE_ALL, {"owner": self.owner, "now": now})

    async def holder(self, job_id: int) -> str | None:
        """Which process holds the job's lease (expired or not); None: nobody, or no job."""
        row = await self._db.fetch_one(SELECT_HOLDER, {"id": job_id})
        return None if row is None or row[0] is None else str(row[0])
