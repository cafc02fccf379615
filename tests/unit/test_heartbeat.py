"""The heartbeat the running bot writes beside its database: gateway watch and writer."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from bot.heartbeat import GatewayWatch, Heartbeat, HeartbeatWriter, heartbeat_path_for

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Engine:
    def __init__(self) -> None:
        self.ticks = 0


class Database:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.hang = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if self.hang:
            await asyncio.Event().wait()
        if self.error is not None:
            raise self.error


def make_writer(
    tmp_path: Path, clock: Clock, engine: Engine, database: Database, gateway: GatewayWatch
) -> HeartbeatWriter:
    return HeartbeatWriter(
        heartbeat_path_for(tmp_path / "bot.sqlite3"),
        gateway=gateway,
        engine_ticks=lambda: engine.ticks,
        ping=database.ping,
        interval=10.0,
        probe_timeout=0.05,
        now=clock,
    )


# -- GatewayWatch --------------------------------------------------------------------------------


def test_gateway_watch_follows_each_shard_and_reports_changes_once() -> None:
    clock = Clock()
    watch = GatewayWatch(now=clock)
    changes: list[bool] = []
    watch.on_change = lambda: changes.append(watch.is_connected)
    assert (watch.is_connected, watch.ever_connected, watch.down_since) == (False, False, START)

    clock.now += 5
    watch.connected(0)
    watch.connected(1)
    assert (watch.is_connected, watch.down_since) == (True, None)

    clock.now += 100
    watch.disconnected(1)
    clock.now += 7
    watch.disconnected(1)  # a failed reconnect attempt: still away since the first drop
    assert (watch.is_connected, watch.ever_connected, watch.down_since) == (
        False,
        True,
        START + 105,
    )
    watch.connected(1)
    watch.connected(1)  # READY then RESUMED for the same shard: one change
    assert (watch.is_connected, watch.down_since) == (True, None)
    assert changes == [True, True, False, True]


# -- HeartbeatWriter -----------------------------------------------------------------------------


async def test_a_beat_writes_what_the_bot_knows_atomically(tmp_path: Path) -> None:
    clock, engine, database = Clock(), Engine(), Database()
    gateway = GatewayWatch(now=clock)
    writer = make_writer(tmp_path, clock, engine, database, gateway)
    path = tmp_path / "bot.sqlite3.health"
    assert writer.path == path

    first = await writer.beat()
    assert first == Heartbeat(
        pid=os.getpid(),
        started_at=START,
        written_at=START,
        interval=10.0,
        gateway_connected=False,
        gateway_ever_connected=False,
        gateway_down_since=START,
        engine_ticked_at=None,  # the engine has not run a pass yet
        database_answered_at=START,
        database_error=None,
    )
    assert Heartbeat.from_json(path.read_text()) == first
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left"

    clock.now += 10
    gateway.connected(0)
    engine.ticks = 7
    second = await writer.beat()
    assert (second.gateway_connected, second.engine_ticked_at) == (True, START + 10)

    clock.now += 10  # the engine's counter did not move: its last tick stays where it was
    third = await writer.beat()
    assert (third.engine_ticked_at, third.written_at) == (START + 10, START + 20)
    assert json.loads(path.read_text())["written_at"] == START + 20


async def test_a_database_that_fails_or_hangs_keeps_its_last_answer_and_says_why(
    tmp_path: Path,
) -> None:
    clock, engine, database = Clock(), Engine(), Database()
    writer = make_writer(tmp_path, clock, engine, database, GatewayWatch(now=clock))
    await writer.beat()

    clock.now += 10
    database.error = RuntimeError("disk I/O\nerror")
    failed = await writer.beat()
    assert (failed.database_answered_at, failed.database_error) == (START, "disk I/O error")

    clock.now += 10
    database.error, database.hang = None, True
    hung = await writer.beat()  # the probe gives up; the heartbeat is still written
    assert (hung.database_answered_at, hung.database_error) == (START, "no answer within 0.05 s")
    assert hung.written_at == START + 20

    clock.now += 10
    database.hang = False
    back = await writer.beat()
    assert (back.database_answered_at, back.database_error) == (START + 30, None)


async def test_the_task_writes_at_once_on_a_gateway_change_and_removes_the_file_on_exit(
    tmp_path: Path,
) -> None:
    clock, engine, database = Clock(), Engine(), Database()
    gateway = GatewayWatch(now=clock)
    writer = make_writer(tmp_path, clock, engine, database, gateway)

    async def written(check: str) -> None:
        for _ in range(500):
            if writer.path.exists() and check in writer.path.read_text():
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"no heartbeat with {check}")

    async with writer:
        await written('"gateway_connected":false')
        gateway.connected(0)  # the 10 s interval is not waited for
        await written('"gateway_connected":true')
    assert not writer.path.exists()


async def test_a_heartbeat_that_cannot_be_written_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, engine, database = Clock(), Engine(), Database()
    writer = make_writer(tmp_path / "gone", clock, engine, database, GatewayWatch(now=clock))
    await writer.beat()
    await writer.beat()
    assert [r.getMessage() for r in caplog.records].count(
        f"Cannot write the health heartbeat {writer.path}: [Errno 2] No such file or directory: "
        f"'{writer.path.with_name('.' + writer.path.name + f'.{os.getpid()}.tmp')}'"
    ) == 1
    (tmp_path / "gone").mkdir()
    await writer.beat()
    assert writer.path.exists()
