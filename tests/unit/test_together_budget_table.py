"""The account's shared Together budget row (storage.together_budget), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from storage.driver import Database
from storage.models import SharedRate
from storage.together_budget import TogetherBudgetTable
from tests.databases import reopen

NOW = 1_700_000_000.0


async def test_no_row_until_a_process_starts(any_db: Database) -> None:
    table = TogetherBudgetTable(any_db)
    assert await table.read() is None
    assert await table.lower(1.0, NOW, NOW) is None
    assert await table.raise_from(0, 2.0, NOW) is None


async def test_a_process_alone_starts_again_at_the_start_rate_keeping_a_running_pause(
    any_db: Database,
) -> None:
    table = TogetherBudgetTable(any_db)
    first = await table.start(1.0, NOW, alone=True)
    assert first == SharedRate(1.0, 0.0, 0)
    learned = await table.raise_from(first.version, 3.0, NOW + 1)
    paused = await table.lower(2.5, NOW + 60, NOW + 2)
    assert learned is not None and paused == SharedRate(2.5, NOW + 60, 2)
    # A restart with nobody else alive: the start rate, a new version, the pause kept.
    assert await table.start(1.0, NOW + 3, alone=True) == SharedRate(1.0, NOW + 60, 3)


async def test_a_process_joining_others_takes_their_rate(any_db: Database) -> None:
    table = TogetherBudgetTable(any_db)
    await table.start(1.0, NOW, alone=True)
    await table.raise_from(0, 4.0, NOW + 1)
    assert await table.start(1.0, NOW + 2, alone=False) == SharedRate(4.0, 0.0, 1)


async def test_a_cut_only_lowers_and_a_pause_only_lengthens(any_db: Database) -> None:
    table = TogetherBudgetTable(any_db)
    await table.start(10.0, NOW, alone=True)
    assert await table.lower(7.0, NOW + 30, NOW) == SharedRate(7.0, NOW + 30, 1)
    # A process that has not yet seen the first cut cuts from the old rate: nothing lower.
    assert await table.lower(7.0, NOW + 10, NOW) == SharedRate(7.0, NOW + 30, 2)
    assert await table.lower(9.0, NOW + 40, NOW) == SharedRate(7.0, NOW + 40, 3)
    assert await table.lower(4.9, 0.0, NOW) == SharedRate(4.9, NOW + 40, 4)


async def test_a_rise_needs_the_version_it_was_read_at(any_db: Database) -> None:
    table = TogetherBudgetTable(any_db)
    seen = await table.start(10.0, NOW, alone=True)
    assert await table.raise_from(seen.version, 11.0, NOW) == SharedRate(11.0, 0.0, 1)
    # A second process raising from the same reading loses: the rate climbs one step.
    assert await table.raise_from(seen.version, 11.0, NOW) is None
    assert await table.read() == SharedRate(11.0, 0.0, 1)
    # A cut in between also makes a reading stale.
    await table.lower(8.0, 0.0, NOW)
    assert await table.raise_from(1, 12.0, NOW) is None
    assert await table.read() == SharedRate(8.0, 0.0, 2)


async def test_rises_raced_from_two_connections_have_one_winner(any_db: Database) -> None:
    other = await reopen(any_db)
    try:
        table, rival = TogetherBudgetTable(any_db), TogetherBudgetTable(other)
        seen = await table.start(10.0, NOW, alone=True)
        for round_ in range(10):
            rate = 10.0 + round_ + 1
            results = await asyncio.gather(
                table.raise_from(seen.version, rate, NOW), rival.raise_from(seen.version, rate, NOW)
            )
            winners = [r for r in results if r is not None]
            assert len(winners) == 1
            seen = winners[0]
        assert await table.read() == SharedRate(20.0, 0.0, 10)
    finally:
        await other.close()
