"""CPU time and peak RSS of a process, from /proc (Linux only; psutil is not a dependency)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

SAMPLE_EVERY = 0.5  # seconds


@dataclass(frozen=True)
class ProcStats:
    cpu_seconds: float  # user + system time of the process itself (not its children)
    peak_rss_bytes: int  # VmHWM: the resident set's high-water mark


def read_stats(pid: int) -> ProcStats:
    """Raises OSError once the process is gone (or off Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its ")" are plain numbers.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
    peak_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
    return ProcStats(ticks / os.sysconf("SC_CLK_TCK"), peak_kb * 1024)


class Sampler:
    """Reads a process's figures every half second, so the last ones survive its exit."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: ProcStats | None = None
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> ProcStats | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            self.last = read_stats(self.pid)
        return self.last

    def start(self) -> None:
        self.sample()
        self._task = asyncio.create_task(self._run(), name=f"procstats-{self.pid}")

    async def stop(self) -> ProcStats | None:
        """Take a last reading (call it while the process still runs) and stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.sample()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_EVERY)
            self.sample()
