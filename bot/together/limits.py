"""Together's rate-limit headers, parsed (no I/O, no HTTP client).

Together documents ``x-ratelimit-limit`` and ``x-ratelimit-remaining`` as requests per second
and ``x-ratelimit-reset`` as the time until the limit resets; each answer, 429 or not, may
carry them. Anything unreadable is left out rather than guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

# A reset above this many seconds is taken as a Unix time (a day is longer than any window).
_EPOCH_THRESHOLD = 86_400.0
_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
    r"(?:(\d+(?:\.\d+)?)ms)?$"
)


@dataclass(frozen=True)
class RateLimitHeaders:
    limit: float | None = None  # requests per second allowed now
    remaining: float | None = None  # left before the limit is reached
    reset: float | None = None  # seconds until it resets


def parse_rate_limit_headers(
    headers: Mapping[str, str], wall_now: float
) -> RateLimitHeaders | None:
    """The ``x-ratelimit-*`` values in `headers` (keys in any case); None if there are none.

    `wall_now` (Unix time) turns a reset given as a Unix time into seconds from now.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    limit = _number(lowered.get("x-ratelimit-limit"))
    remaining = _number(lowered.get("x-ratelimit-remaining"))
    reset = _duration(lowered.get("x-ratelimit-reset"))
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = max(0.0, reset - wall_now)
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitHeaders(
        limit=limit if limit is not None and limit > 0 else None,
        remaining=remaining,
        reset=reset,
    )


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _duration(value: str | None) -> float | None:
    """Seconds as a number, or a Go-style duration (``1m30s``, ``250ms``)."""
    number = _number(value)
    if number is not None or value is None:
        return number
    match = _DURATION.match(value.strip().lower())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000
