"""The engine's request budget: tokens for Together requests, in priority order, and what
each of Together's answers teaches it (bot.domain.budget holds the rules)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.domain.budget import AdaptiveBudget, Claim, Lane, Priorities, RateChange
from bot.engine.config import EngineConfig
from bot.engine.ports import NoRecorder, Recorder, TogetherOutcome
from bot.engine.tracked import Tracked
from bot.together.errors import TogetherError, TogetherRateLimited
from bot.together.limits import RateLimitHeaders
from bot.together.models import VideoJob

log = logging.getLogger("bot.engine")

# Together counts requests as they arrive, and requests that left a window apart can arrive
# inside one (the bench saw 11 in a second from a budget of 10): 5 % of slack.
MARGIN = 0.05


class RequestBudget:
    """One budget for every request to Together (POSTs and GETs alike)."""

    def __init__(self, config: EngineConfig, recorder: Recorder | None = None) -> None:
        self._recorder = recorder or NoRecorder()
        self.rates = AdaptiveBudget(
            config.requests_per_second, config.start_requests_per_second, margin=MARGIN
        )
        self.priorities = Priorities()
        # Told of every change this process learned (True: a cut or a pause, False: a rise),
        # for the account's shared row (bot/engine/shared_budget.py); None: nobody shares.
        self.on_learned: Callable[[bool], None] | None = None
        if self.rates.learning:
            log.info(
                "Together request budget starts at %.2f/s (ceiling %.2f/s)",
                self.rates.rate,
                self.rates.ceiling,
            )

    @property
    def unlimited(self) -> bool:
        return self.rates.unlimited

    @property
    def capacity(self) -> int:
        return self.rates.capacity

    def next_free(self, now: float) -> float:
        return self.rates.next_free(now)

    def grant(self, now: float, claims: Sequence[Claim[Tracked]]) -> list[Claim[Tracked]]:
        """The claims that get a token now, in the order they should start."""
        left, granted = list(claims), list[Claim[Tracked]]()
        while left:
            claim = self.priorities.choose(left)
            if claim is None or not self.rates.try_take(now):
                break
            left.remove(claim)
            self.priorities.granted()
            granted.append(claim)
        return granted

    # -- learning ------------------------------------------------------------------------

    def answered(self, now: float, sent_at: float, answer: VideoJob) -> None:
        self._recorder.together_answered("ok")
        before = self.rates.rate, self.rates.paused_until
        self._learned(before, self.rates.succeeded(now, sent_at, **_hints(answer.limits)))

    def failed(self, now: float, sent_at: float, error: TogetherError) -> None:
        self._recorder.together_answered(outcome_of(error))
        before = self.rates.rate, self.rates.paused_until
        hints = _hints(error.limits)
        if isinstance(error, TogetherRateLimited):
            reason = " ".join(["429", error.code or error.type or ""]).strip()
            change = self.rates.throttled(
                now, sent_at, reason=reason, retry_after=error.retry_after, **hints
            )
        elif hints:
            # Answered, just not with a job: the headers still count, the answer does not.
            change = self.rates.stated(now, **hints)
        else:
            change = None
        self._learned(before, change)

    def _learned(self, before: tuple[float, float], change: RateChange | None) -> None:
        self.log(change)
        if change is None or self.on_learned is None:
            return
        rate, paused_until = before
        if self.rates.rate < rate or self.rates.paused_until > paused_until:
            self.on_learned(True)
        elif self.rates.rate > rate:
            self.on_learned(False)

    def log(self, change: RateChange | None) -> None:
        """One line for a change of rate, share or pause."""
        if change is None:
            return
        if self.rates.processes > 1:
            change = RateChange(
                change.rate,
                f"{change.reason}; {self.rates.share:.2f}/s here, "
                f"shared by {self.rates.processes} processes",
                change.paused_for,
            )
        if change.paused_for:
            log.info(
                "Together request budget now %.2f/s, no requests for %.3g s (%s)",
                change.rate,
                change.paused_for,
                change.reason,
            )
        else:
            log.info("Together request budget now %.2f/s (%s)", change.rate, change.reason)


def outcome_of(error: TogetherError) -> TogetherOutcome:
    """A failed request's outcome, as the metrics count it."""
    status = error.status
    if status is None:
        return "network"  # no answer: refused, reset or timed out
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error" if status >= 400 else "bad_answer"


def _hints(limits: RateLimitHeaders | None) -> dict[str, float | None]:
    if limits is None:
        return {}
    return {"limit": limits.limit, "remaining": limits.remaining, "reset": limits.reset}


__all__ = ["Lane", "RequestBudget", "outcome_of"]
