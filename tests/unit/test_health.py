"""`video-bot health`: the verdict on a heartbeat (a table), and the lock and file checks."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from bot.health import Verdict, check_health, duration, judge
from bot.heartbeat import Heartbeat, heartbeat_path_for, write_heartbeat
from storage.lock import acquire_database_lock

NOW = 1_800_000_000.0

# A bot started 10 min ago, connected, whose engine and database answered 3 s ago.
WELL = Heartbeat(
    pid=4242,
    started_at=NOW - 600,
    written_at=NOW - 3,
    interval=10.0,
    gateway_connected=True,
    gateway_ever_connected=True,
    gateway_down_since=None,
    engine_ticked_at=NOW - 3,
    database_answered_at=NOW - 3,
    database_error=None,
)
AWAY = {"gateway_connected": False, "gateway_ever_connected": True}


@pytest.mark.parametrize(
    ("changes", "healthy", "line"),
    [
        (
            {},
            True,
            "healthy: pid 4242, gateway connected, engine ticked 3 s ago, "
            "database answered 3 s ago",
        ),
        # The gateway: away for less than a minute is a reconnect; longer is a fault.
        (
            {**AWAY, "gateway_down_since": NOW - 20},
            True,
            "healthy: pid 4242, gateway reconnecting for 20 s, engine ticked 3 s ago, "
            "database answered 3 s ago",
        ),
        ({**AWAY, "gateway_down_since": NOW - 60}, True, None),
        (
            {**AWAY, "gateway_down_since": NOW - 61},
            False,
            "the gateway has been disconnected for 61 s",
        ),
        (
            {**AWAY, "gateway_down_since": NOW - 180},
            False,
            "the gateway has been disconnected for 3 min",
        ),
        (
            {"gateway_connected": False, "gateway_ever_connected": False},
            False,
            "the bot has not connected to the gateway yet (started 10 min ago)",
        ),
        (
            {
                "gateway_connected": False,
                "gateway_ever_connected": False,
                "started_at": NOW - 5,
                "gateway_down_since": NOW - 5,
            },
            False,
            "the bot has not connected to the gateway yet (started 5 s ago)",
        ),
        # The engine.
        ({"engine_ticked_at": NOW - 60}, True, None),
        ({"engine_ticked_at": NOW - 95}, False, "the engine has not ticked for 95 s"),
        (
            {"engine_ticked_at": None},
            False,
            "the engine has not started yet (the bot started 10 min ago)",
        ),
        # The database: one slow probe is tolerated, 30 s without an answer is not.
        ({"database_answered_at": NOW - 25, "database_error": "database is locked"}, True, None),
        (
            {"database_answered_at": NOW - 40, "database_error": "no answer within 5 s"},
            False,
            "the database did not answer for 40 s (no answer within 5 s)",
        ),
        (
            {"database_answered_at": None, "database_error": "disk I/O error"},
            False,
            "the database has not answered since the bot started (disk I/O error)",
        ),
        # The heartbeat itself: stale means the bot's event loop is not running its tasks.
        ({"written_at": NOW - 30}, True, None),
        (
            {"written_at": NOW - 45, "engine_ticked_at": NOW - 45},
            False,
            "the bot (pid 4242) has not written its heartbeat for 45 s: its event loop may be "
            "stuck",
        ),
        (
            {"written_at": NOW - 100, "interval": 60.0},
            True,
            None,
        ),
        # Several faults: the stale heartbeat first, then the database, gateway, engine.
        (
            {**AWAY, "gateway_down_since": NOW - 300, "engine_ticked_at": NOW - 300},
            False,
            "the gateway has been disconnected for 5 min",
        ),
        (
            {"database_answered_at": NOW - 300, "engine_ticked_at": NOW - 300},
            False,
            "the database did not answer for 5 min",
        ),
        # A clock that stepped back: nothing is "in the future" by a negative age.
        ({"written_at": NOW + 5, "engine_ticked_at": NOW + 5}, True, None),
    ],
)
def test_verdict(changes: dict[str, object], healthy: bool, line: str | None) -> None:
    verdict = judge(replace(WELL, **changes), NOW)  # type: ignore[arg-type]
    assert verdict.healthy is healthy
    if line is not None:
        assert verdict.line == line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (95.9, "95 s"), (119, "119 s"), (120, "2 min"), (7199, "119 min"), (7200, "2 h")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_heartbeat_round_trips_through_json() -> None:
    assert Heartbeat.from_json(WELL.to_json()) == WELL


# -- check_health: the lock, then the file -------------------------------------------------------


def test_no_bot_when_nothing_holds_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    assert check_health(database, NOW) == Verdict(
        False, f"no bot is running on DATABASE_PATH {database}"
    )
    with acquire_database_lock(database):
        pass  # a bot that stopped: the lock file is there, free
    write_heartbeat(heartbeat_path_for(database), WELL)  # and a killed bot's heartbeat
    assert check_health(database, NOW).line == f"no bot is running on DATABASE_PATH {database}"
    with acquire_database_lock(database):
        pass  # the probe took nothing that a new bot would miss


def test_the_holders_heartbeat_is_judged(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    with acquire_database_lock(database):
        write_heartbeat(heartbeat_path_for(database), replace(WELL, pid=os.getpid()))
        assert check_health(database, NOW).healthy
        assert check_health(database, NOW + 200) == Verdict(
            False,
            f"the bot (pid {os.getpid()}) has not written its heartbeat for 3 min: its event "
            "loop may be stuck",
        )


def test_a_holder_without_a_heartbeat_or_with_another_process_heartbeat(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    path = heartbeat_path_for(database)
    with acquire_database_lock(database):
        assert check_health(database, NOW).line == (
            f"the bot (pid {os.getpid()}) on DATABASE_PATH {database} has written no heartbeat"
        )
        write_heartbeat(path, WELL)  # pid 4242: a previous bot's
        assert check_health(database, NOW).line == (
            f"the bot (pid {os.getpid()}) on DATABASE_PATH {database} has written no heartbeat "
            f"yet ({path} is from pid 4242)"
        )
        path.write_text('{"pid": "not a heartbeat"}')
        assert check_health(database, NOW).line == (
            f"the heartbeat {path} is not a heartbeat this release can read"
        )
