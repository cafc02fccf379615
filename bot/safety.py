"""The safety controls on every way of starting a job: where (age-restricted channels), which
words (the server's blocked list) and what the moderation model says of the prompt.

Every refusal is written to the server's audit log (the member as actor, the rule and what it
matched as detail) before the member is told; the member's answer never names a blocked word.
No discord, aiosqlite or httpx here: the store and the screen are handed in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.domain.errors import NotAllowedError
from bot.domain.safety import (
    Outcome,
    PromptScreen,
    ScreenUnavailable,
    Verdict,
    first_blocked,
    judge,
    parse_guard_answer,
)
from bot.i18n import Text, text
from storage.models import SafetyRules, ServerRules

log = logging.getLogger(__name__)

REFUSED = "refused"  # the audit log's action for every safety refusal
# What members read, by catalog key (the audit entry, in English, says the rest for moderators;
# no member's text names the blocked word).
AGE_RESTRICTED_ONLY = "safety.age_restricted_only"
BLOCKED_WORDS = "safety.blocked_words"
FLAGGED = "safety.flagged"  # {categories}: the hazard categories, named in the member's language
SCREEN_DOWN = "safety.screen_down"


class SafetyRefused(NotAllowedError):
    """A safety control refused the job; it is in the audit log already."""


class SafetyStore(Protocol):
    """What the guard needs of storage.server_settings.GuildSettingsRepository."""

    async def rules(self, guild_id: int) -> ServerRules: ...

    async def record_refusal(
        self, guild_id: int, user_id: int, rule: str, detail: str, now: float
    ) -> None: ...


class SafetyGuard:
    """Checks a request against its server's safety controls; raises SafetyRefused.

    `screen` is None when screening is switched off bot-wide (SAFETY_MODEL empty): servers
    that turned it on are then not screened. `timeout` bounds one screening call in all.
    """

    def __init__(
        self,
        store: SafetyStore,
        screen: PromptScreen | None,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._screen = screen
        self._timeout = timeout
        self._clock = clock

    async def screens(self, guild_id: int) -> bool:
        """True when a prompt on this server goes to the moderation model (slow: defer first)."""
        return self._screen is not None and (await self._rules(guild_id)).screening

    async def check_place(self, guild_id: int, channel_id: int, user_id: int, nsfw: bool) -> None:
        """Refuse outside age-restricted channels where the server asks for them."""
        rules = await self._rules(guild_id)
        if rules.age_restricted_only and not nsfw:
            detail = f"not an age-restricted channel (<#{channel_id}>)"
            await self._refuse(guild_id, user_id, detail, text(AGE_RESTRICTED_ONLY))

    async def check(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        nsfw: bool,
        prompt: str,
        negative_prompt: str | None,
    ) -> None:
        """Place, blocked words (prompt and negative prompt), then the screen (prompt)."""
        await self.check_place(guild_id, channel_id, user_id, nsfw)
        rules = await self._rules(guild_id)
        matched = first_blocked((prompt, negative_prompt), rules.blocked_words)
        if matched is not None:
            await self._refuse(guild_id, user_id, f"blocked word: {matched}", text(BLOCKED_WORDS))
        if self._screen is not None and rules.screening:
            await self._screened(guild_id, user_id, prompt, rules)

    async def _screened(self, guild_id: int, user_id: int, prompt: str, rules: SafetyRules) -> None:
        verdict, reason = await self._ask(prompt)
        outcome = judge(verdict, rules.screen_unavailable)
        if outcome is Outcome.FLAGGED:
            assert verdict is not None
            categories = verdict.describe()
            log.info(
                "Prompt screen flagged member %d in server %d: %s", user_id, guild_id, categories
            )
            said = text(FLAGGED, categories=verdict.categories_text())
            await self._refuse(guild_id, user_id, f"screen flagged: {categories}", said)
        elif outcome is Outcome.UNAVAILABLE_REFUSED:
            log.warning("Prompt screen unavailable (%s): refused, server %d", reason, guild_id)
            detail = f"screen unavailable: {reason}"
            await self._refuse(guild_id, user_id, detail, text(SCREEN_DOWN))
        elif outcome is Outcome.UNAVAILABLE_ALLOWED:
            log.warning("Prompt screen unavailable (%s): let through, server %d", reason, guild_id)

    async def _ask(self, prompt: str) -> tuple[Verdict | None, str]:
        """The verdict, or None and why there is none. One attempt, bounded by the timeout."""
        assert self._screen is not None
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._screen.screen(prompt)
        except TimeoutError:
            return None, "timeout"
        except ScreenUnavailable as exc:
            return None, exc.reason
        verdict = parse_guard_answer(answer)
        return (verdict, "ok") if verdict is not None else (None, "unreadable answer")

    async def _rules(self, guild_id: int) -> SafetyRules:
        return (await self._store.rules(guild_id)).safety

    async def _refuse(self, guild_id: int, user_id: int, detail: str, said: Text) -> None:
        """Audit (the member as actor, the rule and what it matched), then refuse."""
        await self._store.record_refusal(guild_id, user_id, REFUSED, detail, self._clock())
        raise SafetyRefused(said)
