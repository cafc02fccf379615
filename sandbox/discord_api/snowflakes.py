"""Discord snowflake ids, generated at the current time.

discord.py derives ``created_at`` and interaction expiry from an id's timestamp bits, so ids
must be real snowflakes rather than counters.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

DISCORD_EPOCH_MS = 1420070400000


class SnowflakeFactory:
    """Makes unique, increasing snowflakes: ms since the Discord epoch << 22 | worker | counter."""

    def __init__(self, worker_id: int = 1, process_id: int = 0) -> None:
        self._prefix = ((worker_id & 0x1F) << 17) | ((process_id & 0x1F) << 12)
        self._counter = itertools.count()
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
            candidate = stamp | self._prefix | (next(self._counter) & 0xFFF)
            # Keep ids strictly increasing even if the 12-bit counter wraps within a millisecond.
            self._last = max(candidate, self._last + 1)
            return self._last

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """A new id whose server would be on that shard: (id >> 22) % shard_count == shard_id.

        The shard comes from the timestamp bits, so the id is stamped up to shard_count - 1 ms
        ahead of now (still increasing and unique).
        """
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"no shard {shard_id} among {shard_count}")
        with self._lock:
            now_ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            stamp = max(now_ms, (self._last >> 22) + 1)
            stamp += (shard_id - stamp) % shard_count
            self._last = (stamp << 22) | self._prefix | (next(self._counter) & 0xFFF)
            return self._last


def snowflake_time(snowflake: int) -> dt.datetime:
    """The UTC creation time encoded in a snowflake."""
    millis = (snowflake >> 22) + DISCORD_EPOCH_MS
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)


def iso_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 with an explicit +00:00 offset, as Discord sends it."""
    return moment.astimezone(dt.UTC).isoformat()


def now_iso() -> str:
    return iso_timestamp(dt.datetime.now(dt.UTC))
