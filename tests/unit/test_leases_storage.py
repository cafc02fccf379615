"""Job leases and the processes table on a real SQLite file (storage.leases, storage.processes)."""

from __future__ import annotations

import asyncio

import pytest

from storage.db import Database
from storage.jobs import JobRepository
from storage.leases import JobLeases
from storage.models import JobState
from storage.processes import Processes
from tests.databases import reopen
from tests.unit.fakes import new_job

NOW = 1_700_000_000.0
LEASE = 30.0


@pytest.fixture
def db(any_db: Database) -> Database:
    """Each test on SQLite and on PostgreSQL (whose claim adds FOR UPDATE SKIP LOCKED)."""
    return any_db


async def make_jobs(db: Database, count: int, created_at: float = NOW - 100) -> list[int]:
    repo = JobRepository(db)
    return [(await repo.create(new_job(created_at))).id for _ in range(count)]


async def lease_row(db: Database, job_id: int) -> tuple[str | None, float | None]:
    row = await db.fetch_one("SELECT lease_owner, lease_until FROM jobs WHERE id = ?", (job_id,))
    return row[0], row[1]


async def test_claim_takes_the_oldest_free_jobs_up_to_the_limit(db: Database) -> None:
    ids = await make_jobs(db, 5)
    a = JobLeases(db, "A")
    claimed = await a.claim_free(NOW, NOW + LEASE, NOW - LEASE, limit=3)
    assert [job.id for job in claimed] == ids[:3]
    assert await lease_row(db, ids[0]) == ("A", NOW + LEASE)
    # Another process gets only the rest: A's leases are live.
    rest = await JobLeases(db, "B").claim_free(NOW, NOW + LEASE, NOW - LEASE, limit=10)
    assert [job.id for job in rest] == ids[3:]


async def test_expired_lease_is_free_live_one_is_not(db: Database) -> None:
    [job_id] = await make_jobs(db, 1)
    a, b = JobLeases(db, "A"), JobLeases(db, "B")
    await a.claim_free(NOW, NOW + LEASE, NOW - LEASE, limit=1)
    assert await b.claim_free(NOW + LEASE - 1, NOW + 2 * LEASE, NOW, limit=1) == []
    taken = await b.claim_free(NOW + LEASE + 1, NOW + 2 * LEASE + 1, NOW + 1, limit=1)
    assert [job.id for job in taken] == [job_id]
    assert await a.holder(job_id) == "B"


async def test_new_unclaimed_job_is_left_to_its_creator_for_a_lease(db: Database) -> None:
    [job_id] = await make_jobs(db, 1, created_at=NOW)
    b = JobLeases(db, "B")
    # Stored a moment ago, nobody's lease yet: its creator is about to claim it.
    assert await b.claim_free(NOW + 1, NOW + 1 + LEASE, NOW + 1 - LEASE, limit=1) == []
    # A lease later its creator evidently never did (it died before): free.
    later = NOW + LEASE + 1
    assert [j.id for j in await b.claim_free(later, later + LEASE, NOW + 1, limit=1)] == [job_id]


async def test_finished_jobs_are_never_claimed(db: Database) -> None:
    [job_id] = await make_jobs(db, 1)
    await JobRepository(db).transition(job_id, JobState.QUEUED, JobState.CANCELLED, NOW)
    a = JobLeases(db, "A")
    assert await a.claim_free(NOW, NOW + LEASE, NOW, limit=5) == []
    assert await a.claim_all(NOW + LEASE) == []
    assert not await a.claim_new(job_id, NOW, NOW + LEASE)


async def test_claim_new_respects_a_live_lease_only(db: Database) -> None:
    [job_id] = await make_jobs(db, 1, created_at=NOW)
    a, b = JobLeases(db, "A"), JobLeases(db, "B")
    assert await a.claim_new(job_id, NOW, NOW + LEASE)
    assert await a.claim_new(job_id, NOW + 1, NOW + 1 + LEASE), "its own: renewed"
    assert not await b.claim_new(job_id, NOW + 2, NOW + 2 + LEASE)
    assert await b.claim_new(job_id, NOW + 2 + LEASE, NOW + 2 + 2 * LEASE), "expired: free"
    assert await a.holder(job_id) == "B"


async def test_claim_all_takes_live_leases_too(db: Database) -> None:
    ids = await make_jobs(db, 3)
    await JobLeases(db, "old").claim_free(NOW, NOW + 600, NOW, limit=2)
    taken = await JobLeases(db, "new").claim_all(NOW + LEASE)
    assert [job.id for job in taken] == ids
    assert {(await lease_row(db, i))[0] for i in ids} == {"new"}


async def test_renew_extends_every_held_unfinished_lease_in_one_statement(db: Database) -> None:
    ids = await make_jobs(db, 4)
    a, b = JobLeases(db, "A"), JobLeases(db, "B")
    await a.claim_free(NOW, NOW + LEASE, NOW, limit=3)
    await JobRepository(db).transition(ids[0], JobState.QUEUED, JobState.CANCELLED, NOW)
    # ids[1]'s lease expired and B took it: A's renewal no longer includes it.
    await b.claim_new(ids[1], NOW + LEASE + 1, NOW + 2 * LEASE)
    renewed = await a.renew(NOW + 100)
    assert renewed == {ids[2]}
    assert await lease_row(db, ids[2]) == ("A", NOW + 100)
    assert await lease_row(db, ids[1]) == ("B", NOW + 2 * LEASE)
    assert await lease_row(db, ids[3]) == (None, None)
    assert await a.renew_one(ids[2], NOW + 200)
    assert not await a.renew_one(ids[1], NOW + 200)


async def test_leased_write_needs_the_lease_plain_write_does_not(db: Database) -> None:
    [job_id] = await make_jobs(db, 1)
    a, b = JobLeases(db, "A"), JobLeases(db, "B")
    await a.claim_free(NOW, NOW + LEASE, NOW, limit=1)
    assert await b.transition(job_id, JobState.QUEUED, JobState.SUBMITTING, NOW) is None
    assert await b.update(job_id, JobState.QUEUED, NOW, message_id=5) is None
    moved = await a.transition(job_id, JobState.QUEUED, JobState.SUBMITTING, NOW)
    assert moved is not None and moved.state is JobState.SUBMITTING
    assert (await a.update(job_id, JobState.SUBMITTING, NOW, message_id=6)) is not None
    # Taken over by B: A's writes are refused, and nothing is written.
    await b.claim_new(job_id, NOW + LEASE + 1, NOW + 2 * LEASE)
    assert await a.transition(job_id, JobState.SUBMITTING, JobState.FAILED, NOW) is None
    job = await JobRepository(db).get(job_id)
    assert job is not None and job.state is JobState.SUBMITTING and job.message_id == 6
    # A member's cancel (the plain compare-and-set) counts whoever holds the lease.
    [queued] = await make_jobs(db, 1)
    await b.claim_new(queued, NOW, NOW + LEASE)
    repo = JobRepository(db)
    assert await repo.transition(queued, JobState.QUEUED, JobState.CANCELLED, NOW) is not None


async def test_release_all_frees_the_jobs_at_once(db: Database) -> None:
    ids = await make_jobs(db, 2, created_at=NOW)  # new: unclaimed, they would wait a lease
    a = JobLeases(db, "A")
    for job_id in ids:
        assert await a.claim_new(job_id, NOW, NOW + LEASE)
    await a.release_all(NOW)
    assert await lease_row(db, ids[0]) == (None, NOW)
    taken = await JobLeases(db, "B").claim_free(NOW + 1, NOW + LEASE, NOW, limit=5)
    assert [job.id for job in taken] == ids


async def test_two_connections_claiming_at_once_split_the_jobs(db: Database) -> None:
    first, second = db, await reopen(db)  # two processes: two connections, or two pools
    try:
        ids = await make_jobs(first, 40)
        a, b = JobLeases(first, "A"), JobLeases(second, "B")
        rounds = [
            claimer.claim_free(NOW, NOW + LEASE, NOW - LEASE, limit=7)
            for _ in range(4)
            for claimer in (a, b)
        ]
        results = await asyncio.gather(*rounds)
        claimed = [job.id for jobs in results for job in jobs]
        assert sorted(claimed) == ids, "8 claims of 7 for 40 jobs: each claimed exactly once"
        owners = {job.id: (await a.holder(job.id)) for jobs in results for job in jobs}
        assert set(owners.values()) == {"A", "B"}
    finally:
        await second.close()


async def test_processes_register_beat_live_remove(db: Database) -> None:
    a, b = Processes(db, "A"), Processes(db, "B")
    await a.register(NOW)
    await b.register(NOW)
    await a.beat(NOW + 20)
    live = await a.live(NOW + 40, LEASE)
    assert [row.id for row in live] == ["A"], "B's heartbeat is 40 s old"
    assert live[0].pid > 0 and live[0].host and live[0].started_at == NOW
    await a.remove()
    assert [row.id for row in await b.live(NOW, LEASE)] == ["B"]
    # A removed row comes back with the next heartbeat.
    await a.beat(NOW + 50)
    assert [row.id for row in await a.live(NOW + 50, LEASE)] == ["A"]
    await a.forget_others()
    rows = await db.fetch_all("SELECT id FROM processes")
    assert [row[0] for row in rows] == ["A"]
