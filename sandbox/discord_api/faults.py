"""Injected failures: the next N requests matching a method and path pattern get an error;
and, opt-in, random server errors on a fraction of message writes (``RandomFaults``)."""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterable
from dataclasses import dataclass

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
