"""Injected failures: the next N requests matching a method and path pattern get an error;
opt-in, random server errors on a fraction of message writes (``RandomFaults``); and outages,
during which every REST request fails (``Outage``)."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# Routes (method, templated path) that random faults may hit: message creates and edits, by
# bot token or interaction webhook. Never the interaction callback: a failed first response is
# a different scenario (the member would see "the application did not respond").
RANDOM_FAULT_ROUTES = frozenset(
    {
        ("POST", "/channels/{channel}/messages"),
        ("PATCH", "/channels/{channel}/messages/{message}"),
        ("POST", "/webhooks/{app}/{token}"),
        ("PATCH", "/webhooks/{app}/{token}/messages/{message}"),
    }
)
RANDOM_FAULT_STATUSES = (500, 502)


@dataclass
class Fault:
    method: str
    pattern: str
    status: int
    code: int | None
    remaining: int
    retry_after: float


class FaultPlan:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        code: int | None = None,
        times: int = 1,
        retry_after: float = 0.2,
    ) -> None:
        self._faults.append(Fault(method.upper(), pattern, status, code, times, retry_after))

    def take(self, method: str, paths: Iterable[str]) -> Fault | None:
        """The first armed fault matching ``method`` and any of ``paths``; uses one of its shots.

        ``paths`` holds both the templated route ("/webhooks/{app}/{token}") and the real path,
        so patterns like "/webhooks/*" or "/channels/123/*" both work.
        """
        candidates = list(paths)
        for fault in self._faults:
            if fault.method not in ("*", method):
                continue
            if not any(fnmatch.fnmatchcase(path, fault.pattern) for path in candidates):
                continue
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return fault
        return None

    def pending(self) -> int:
        return sum(fault.remaining for fault in self._faults)

    def clear(self) -> None:
        self._faults.clear()


class RandomFaults:
    """A fraction ``rate`` (0..1) of requests to ``RANDOM_FAULT_ROUTES`` get a 500 or 502.

    Off by default. The choices come from ``rng``: seed it to replay a run's draws.
    """

    def __init__(self, rate: float = 0.0, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.injected = 0
        self._rate = 0.0
        self.rate = rate

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        self._rate = value

    def roll(self, method: str, template: str) -> int | None:
        """The status to answer this request with, or None to serve it normally."""
        if self._rate <= 0 or (method, template) not in RANDOM_FAULT_ROUTES:
            return None
        if self.rng.random() >= self._rate:
            return None
        self.injected += 1
        return self.rng.choice(RANDOM_FAULT_STATUSES)


# What an outage answers with: a 5xx status, or "timeout" (hold the request, then 504).
OutageStatus = int | Literal["timeout"]


class Outage:
    """While on, every REST request (anything under /api/v10) is refused before routing,
    rate limits, injected faults and handlers: no effect, recorded with its error status.

    The gateway websocket and the CDN stay up, as in Discord's partial outages (the bot keeps
    receiving interactions it cannot answer). In "timeout" mode a request is held open until
    the outage ends or ``hold`` seconds pass, then answered 504, so clients can time out first.
    """

    def __init__(self) -> None:
        self.status: OutageStatus = 503
        self.hold = 30.0
        self.refused = 0  # requests that arrived during an outage (held ones included)
        self._ended = asyncio.Event()
        self._ended.set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return not self._ended.is_set()

    def start(self, status: OutageStatus = 503, *, hold: float = 30.0) -> None:
        """Starts an outage (or changes the running one's answer); it lasts until ``end``."""
        if status != "timeout" and not (isinstance(status, int) and 500 <= status <= 599):
            raise ValueError('outage_status must be a 5xx status or "timeout"')
        if hold < 0:
            raise ValueError("hold must not be negative")
        self._cancel_timer()
        self.status, self.hold = status, hold
        self._ended.clear()

    def end_after(self, seconds: float) -> None:
        """Ends the outage ``seconds`` from now, on the running loop."""
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(seconds, self.end)

    def end(self) -> None:
        """Ends the outage now (releasing held requests); does nothing if none is on."""
        self._cancel_timer()
        self._ended.set()

    async def refusal_status(self) -> int:
        """Counts a refused request and gives its status, after holding it in "timeout" mode."""
        self.refused += 1
        if self.status != "timeout":
            return self.status
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), self.hold)
        return 504

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
