"""Together's dynamic request limit, as the stand-in applies it (opt-in).

Together (2026): an account created after 2026-01-26 may send about 60 requests a minute to
begin with, and later about twice its past hour's successful rate; above that it answers 429
with the code ``dynamic_request_limited``. Here: a sliding window of `window` seconds of the
stand-in's clock holds at most `limit(now)` requests, where the limit is the larger of `base`
and `factor` times the successful requests of the past `history` seconds, scaled to one
window. Refused requests do not count. Every request to /v2/videos counts, POST and GET.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from aiohttp import web

DYNAMIC_LIMIT_CODE = "dynamic_request_limited"


@dataclass
class DynamicLimit:
    base: int = 60  # requests per window with no history
    window: float = 60.0  # seconds of the stand-in's clock
    history: float = 3600.0  # "the past hour"
    factor: float = 2.0
    refused: int = 0  # 429s answered so far
    _sent: deque[float] = field(default_factory=deque, repr=False)  # accepted, in the window
    _succeeded: deque[float] = field(default_factory=deque, repr=False)  # within history

    def __post_init__(self) -> None:
        if self.base < 1 or self.window <= 0 or self.history <= 0 or self.factor <= 0:
            raise ValueError("base, window, history and factor must be positive")

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        while self._succeeded and self._succeeded[0] <= now - self.history:
            self._succeeded.popleft()

    def limit(self, now: float) -> int:
        """Requests allowed in any one window now."""
        self._expire(now)
        earned = self.factor * len(self._succeeded) * self.window / self.history
        return max(self.base, math.floor(earned))

    def admit(self, now: float) -> bool:
        """Count a request if the limit has room for it; False: answer it with `refusal`."""
        limit = self.limit(now)  # first: it forgets what left the window
        if len(self._sent) >= limit:
            self.refused += 1
            return False
        self._sent.append(now)
        return True

    def succeeded(self, now: float) -> None:
        """An admitted request was answered with success: it raises the limit."""
        self._succeeded.append(now)

    def headers(self, now: float) -> dict[str, str]:
        """``x-ratelimit-*`` as Together documents them: the limit and what remains are per
        second (the window's counts spread over it), the reset in seconds."""
        limit = self.limit(now)  # first: it forgets what left the window
        reset = self._sent[0] + self.window - now if len(self._sent) >= limit else 0.0
        return {
            "x-ratelimit-limit": f"{limit / self.window:.4g}",
            "x-ratelimit-remaining": f"{max(0, limit - len(self._sent)) / self.window:.4g}",
            "x-ratelimit-reset": f"{max(0.0, reset):.3f}",
        }

    def refusal(self, now: float) -> web.Response:
        """The 429 for a request over the limit, with retry-after (whole seconds, as HTTP
        has it, and exact in retry-after-ms) until the window has room again."""
        headers = self.headers(now)
        wait = float(headers["x-ratelimit-reset"])
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        body = {
            "error": {
                "message": "Request rate above your dynamic limit. Please slow down.",
                "type": "rate_limit",
                "param": None,
                "code": DYNAMIC_LIMIT_CODE,
            }
        }
        return web.json_response(body, status=429, headers=headers)
