"""Injected failures: the next N requests matching a method and path pattern get an error."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass


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
