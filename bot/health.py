"""`video-bot health`: is a bot running on DATABASE_PATH, connected and working? One line says.

Needs nothing but DATABASE_PATH (no tokens, no port): it asks the database's lock whether a
process holds it (storage.lock.find_lock_holder), reads the heartbeat that process writes
beside the database (bot.heartbeat), and judges it with `judge`, a pure function of the
heartbeat and the time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.heartbeat import Heartbeat, heartbeat_path_for
from storage.lock import find_lock_holder, lock_path_for

# A gateway away for less than this is a reconnect in progress, not a fault.
GATEWAY_GRACE = 60.0
# The engine's loop runs at least once a second; the heartbeat sees it once an interval.
ENGINE_LIMIT = 60.0
# The heartbeat probes the database every interval, giving up on one query after 5 s.
DATABASE_LIMIT = 30.0
# A heartbeat older than this many intervals (and at least STALE_FLOOR): the loop is stuck.
STALE_INTERVALS = 3
STALE_FLOOR = 30.0


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    line: str


def judge(heartbeat: Heartbeat, now: float) -> Verdict:
    """The heartbeat's verdict at `now`: healthy, or the first reason it is not."""
    hb = heartbeat

    def age(moment: float) -> float:
        return max(0.0, now - moment)

    stale_after = max(STALE_FLOOR, STALE_INTERVALS * hb.interval)
    if age(hb.written_at) > stale_after:
        return _unhealthy(
            f"the bot (pid {hb.pid}) has not written its heartbeat for "
            f"{duration(age(hb.written_at))}: its event loop may be stuck"
        )
    answered = hb.database_answered_at
    if answered is None or age(answered) > DATABASE_LIMIT:
        error = f" ({hb.database_error})" if hb.database_error else ""
        if answered is None:
            return _unhealthy(f"the database has not answered since the bot started{error}")
        return _unhealthy(f"the database did not answer for {duration(age(answered))}{error}")
    if not hb.gateway_connected:
        down_since = hb.gateway_down_since if hb.gateway_down_since is not None else hb.started_at
        away = age(down_since)
        if not hb.gateway_ever_connected:
            return _unhealthy(
                f"the bot has not connected to the gateway yet (started {duration(away)} ago)"
            )
        if away > GATEWAY_GRACE:
            return _unhealthy(f"the gateway has been disconnected for {duration(away)}")
    if hb.engine_ticked_at is None:
        return _unhealthy(
            f"the engine has not started yet (the bot started {duration(age(hb.started_at))} ago)"
        )
    if age(hb.engine_ticked_at) > ENGINE_LIMIT:
        return _unhealthy(f"the engine has not ticked for {duration(age(hb.engine_ticked_at))}")
    return Verdict(True, _healthy_line(hb, now))


def _healthy_line(hb: Heartbeat, now: float) -> str:
    if hb.gateway_connected:
        gateway = "gateway connected"
    else:
        down = hb.gateway_down_since if hb.gateway_down_since is not None else hb.started_at
        gateway = f"gateway reconnecting for {duration(max(0.0, now - down))}"
    assert hb.engine_ticked_at is not None and hb.database_answered_at is not None
    return (
        f"healthy: pid {hb.pid}, {gateway}, engine ticked "
        f"{duration(max(0.0, now - hb.engine_ticked_at))} ago, database answered "
        f"{duration(max(0.0, now - hb.database_answered_at))} ago"
    )


def _unhealthy(line: str) -> Verdict:
    return Verdict(False, line)


def duration(seconds: float) -> str:
    """95 s, 3 min, 2 h: whole units, rounded down."""
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 2 * 3600:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h"


def check_health(database_path: Path, now: float | None = None) -> Verdict:
    """The lock, then the heartbeat of the process holding it, then `judge`."""
    database = database_path.resolve()
    try:
        holder = find_lock_holder(database)
    except OSError as exc:
        return _unhealthy(
            f"cannot tell whether a bot runs on DATABASE_PATH {database}: "
            f"{lock_path_for(database)}: {exc.strerror or exc}"
        )
    if holder is None:
        return _unhealthy(f"no bot is running on DATABASE_PATH {database}")
    holder_name = f"the bot (pid {holder.pid})" if holder.pid is not None else "the bot"
    path = heartbeat_path_for(database)
    try:
        heartbeat = Heartbeat.from_json(path.read_bytes())
    except FileNotFoundError:
        return _unhealthy(f"{holder_name} on DATABASE_PATH {database} has written no heartbeat")
    except OSError as exc:
        return _unhealthy(f"cannot read the heartbeat {path}: {exc.strerror or exc}")
    except ValidationError:
        return _unhealthy(f"the heartbeat {path} is not a heartbeat this release can read")
    if holder.pid is not None and heartbeat.pid != holder.pid:
        return _unhealthy(
            f"{holder_name} on DATABASE_PATH {database} has written no heartbeat yet "
            f"({path} is from pid {heartbeat.pid})"
        )
    return judge(heartbeat, time.time() if now is None else now)
