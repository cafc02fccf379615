"""Per-bucket rate limits, reported in ``X-RateLimit-*`` headers and enforced with 429s.

The defaults are generous so tests run fast; ``set_limit`` tightens a route (for example
message edits at 5 per 5 s) to watch discord.py pace itself from the headers.
"""

from __future__ import annotations

import fnmatch
import hashlib
import time
from dataclasses import dataclass


@dataclass
class _Rule:
    method: str
    pattern: str
    limit: int
    window: float


@dataclass
class _Window:
    resets_at: float  # time.monotonic()
    used: int = 0


@dataclass
class Verdict:
    allowed: bool
    headers: dict[str, str]
    bucket: str
    retry_after: float


class RateLimiter:
    def __init__(self, limit: int = 50, window: float = 1.0) -> None:
        self.default = _Rule("*", "*", limit, window)
        self._rules: list[_Rule] = []
        self._windows: dict[str, _Window] = {}

    def set_limit(self, method: str, route_pattern: str, limit: int, window: float) -> None:
        """Routes whose method and templated path match get ``limit`` requests per ``window``."""
        self._rules.insert(0, _Rule(method.upper(), route_pattern, limit, window))

    def take(self, method: str, route_path: str, major: str) -> Verdict:
        rule = self._rule_for(method, route_path)
        bucket = hashlib.sha1(f"{method} {route_path}".encode()).hexdigest()[:16]
        now = time.monotonic()
        window = self._windows.get(f"{bucket}:{major}")
        if window is None or now >= window.resets_at:
            window = self._windows[f"{bucket}:{major}"] = _Window(now + rule.window)
        reset_after = max(window.resets_at - now, 0.0)
        allowed = window.used < rule.limit
        if allowed:
            window.used += 1
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Remaining": str(max(rule.limit - window.used, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        return Verdict(allowed, headers, bucket, reset_after)

    def _rule_for(self, method: str, route_path: str) -> _Rule:
        for rule in self._rules:
            if rule.method in ("*", method) and fnmatch.fnmatchcase(route_path, rule.pattern):
                return rule
        return self.default
