"""Which gateway shards this process runs, and whether it syncs the application commands.

Pure functions (no discord): the settings parse SHARD_IDS with them, the client asks
`syncs_commands` once at start.
"""

from __future__ import annotations

from typing import Literal

SyncCommands = Literal["auto", "on", "off"]
SYNC_CHOICES: tuple[SyncCommands, ...] = ("auto", "on", "off")
SHARD_IDS_EXAMPLE = "a list such as 0-3, 0,2 or 5"
SHOWN_RUNS = 6


def parse_shard_ids(text: str, shard_count: int | None) -> tuple[int, ...] | None:
    """ "0-3", "0,2", "5", "0-1,4" -> sorted ids; blank -> None (every shard of SHARD_COUNT).

    Raises ValueError, with words for the self-hoster, for a bad list, a repeated id, an id
    not below `shard_count`, or any list without a shard count.
    """
    text = text.strip()
    if not text:
        return None
    if shard_count is None:
        raise ValueError("needs SHARD_COUNT (the total number of shards over every process)")
    ids: list[int] = []
    for part in text.split(","):
        ids.extend(_shard_range(part.strip()))
    if len(set(ids)) != len(ids):
        raise ValueError(f"names a shard twice: {text!r}")
    too_high = [shard for shard in ids if shard >= shard_count]
    if too_high:
        raise ValueError(
            f"shard {too_high[0]} does not exist: ids run from 0 to {shard_count - 1} "
            f"with SHARD_COUNT={shard_count}"
        )
    return tuple(sorted(ids))


def _shard_range(part: str) -> range:
    first, dash, last = part.partition("-")
    if not _is_number(first) or (dash and not _is_number(last)):
        raise ValueError(f"must be {SHARD_IDS_EXAMPLE}, not {part!r}")
    start = int(first)
    end = int(last) if dash else start
    if end < start:
        raise ValueError(f"{part!r} runs backwards: write the lower id first")
    return range(start, end + 1)


def describe_shards(shard_ids: tuple[int, ...] | None, shard_count: int | None) -> str | None:
    """This process's shards as "0-3, 5" (runs of ids joined), for people; None: not sharded.

    At most SHOWN_RUNS runs, then "…": SHARD_IDS=0,2,4,... would not fit a message otherwise.
    """
    if shard_count is None:
        return None
    ids = list(shard_ids) if shard_ids is not None else list(range(shard_count))
    runs: list[str] = []
    start = previous = ids[0]
    for shard in [*ids[1:], None]:
        if shard is not None and shard == previous + 1:
            previous = shard
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if shard is not None:
            start = previous = shard
    if len(runs) > SHOWN_RUNS:
        runs = [*runs[:SHOWN_RUNS], "…"]
    return ", ".join(runs)


def _is_number(text: str) -> bool:
    # isdecimal, not int(): no signs, spaces or underscores inside an id.
    return text.isascii() and text.isdecimal()


def syncs_commands(setting: SyncCommands, shard_ids: tuple[int, ...] | None) -> bool:
    """Whether this process PUTs the application commands to Discord at start.

    Commands are global: one sync covers every shard, and N processes syncing at once would
    only spend the (small) rate limit of the endpoint N times. "auto" picks one process: the
    one running shard 0, or the only one when SHARD_IDS is unset (it runs every shard).
    """
    if setting == "on":
        return True
    if setting == "off":
        return False
    return shard_ids is None or 0 in shard_ids
