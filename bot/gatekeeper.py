"""Who may start a video where, and the atomic quota reservation that accepts it.

The checks that can refuse without touching Discord's data (blocked, channel, model, quota)
run before the first response; the reservation checks the quota in the same SQLite statement
or transaction as the insert, so simultaneous commands cannot overshoot a limit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from bot.domain.catalog import Catalog, ModelSpec
from bot.domain.errors import InvalidOptionError, NotAllowedError, UserFacingError
from bot.domain.quota import (
    QuotaDefaults,
    Refusal,
    check,
    effective_limits,
    model_allowed,
)
from bot.i18n import option_name, text
from storage.models import EffectiveLimits, Flow, Job, MediaLink, MemberUsage, NewJob
from storage.reservations import Reservations
from storage.server_settings import GuildSettingsRepository
from storage.usage import UsageRepository


class QuotaExceeded(UserFacingError):
    """A limit refuses the video; the message says which, the usage, and when a slot frees."""


class Gatekeeper:
    def __init__(
        self,
        server_settings: GuildSettingsRepository,
        usage: UsageRepository,
        reservations: Reservations,
        catalog: Catalog,
        defaults: QuotaDefaults,
    ) -> None:
        self._settings = server_settings
        self._usage = usage
        self._reservations = reservations
        self._catalog = catalog
        self.defaults = defaults

    async def allowed_models(self, guild_id: int) -> list[ModelSpec]:
        rules = (await self._settings.rules(guild_id)).model_rules
        return [model for model in self._catalog if model_allowed(rules, model.id)]

    async def admit(self, guild_id: int, channel_id: int, user_id: int) -> None:
        """Refuse blocked members and channels the moderators have not opened to /video."""
        rules = await self._settings.rules(guild_id)
        if user_id in rules.blocked:
            raise NotAllowedError("refusal.blocked")
        channels = rules.channels
        if channels and channel_id not in channels:
            listed = ", ".join(f"<#{c}>" for c in sorted(channels))
            raise NotAllowedError("refusal.channels", channels=listed)

    async def flow_model(self, guild_id: int, flow: Flow) -> str | None:
        """The server's own model for a flow ("animate", "edit"), or None for the default."""
        return (await self._settings.rules(guild_id)).flow_models.get(flow)

    async def check_model(self, guild_id: int, model: ModelSpec) -> None:
        rules = (await self._settings.rules(guild_id)).model_rules
        if model.enabled and model_allowed(rules, model.id):
            return
        allowed = [m.name for m in self._catalog if model_allowed(rules, m.id)]
        offer = text("model.offer", models=", ".join(allowed)) if allowed else ""
        key = "model.not_here" if model.enabled else "model.not_on_bot"
        raise InvalidOptionError(key, option=option_name("model"), model=model.name, offer=offer)

    async def server_limits(self, guild_id: int) -> EffectiveLimits:
        return effective_limits(self.defaults, await self._settings.limits(guild_id), {}, [])

    async def limits_for(self, guild_id: int, role_ids: Iterable[int]) -> EffectiveLimits:
        rules = await self._settings.rules(guild_id)
        return effective_limits(self.defaults, rules.limits, rules.role_quotas, role_ids)

    async def precheck(
        self, guild_id: int, user_id: int, limits: EffectiveLimits, *, cost: float, seconds: int
    ) -> None:
        """A quick refusal before anything slow (the reservation checks again, atomically)."""
        now = time.time()
        usage = await self._usage.member_usage(guild_id, user_id, now)
        refusal = check(limits, usage, now, estimated_cost_usd=cost, seconds=seconds)
        if refusal is not None:
            raise QuotaExceeded(refusal.text)

    async def reserve(
        self,
        new_job: NewJob,
        limits: EffectiveLimits,
        media: Mapping[str, bytes] | None = None,
        links: Sequence[MediaLink] = (),
    ) -> Job:
        """Store the job if the quota allows it, in one transaction with the usage it read."""

        def decide(usage: MemberUsage) -> Refusal | None:
            return check(
                limits,
                usage,
                new_job.created_at,
                estimated_cost_usd=new_job.estimated_cost_usd,
                seconds=new_job.params.seconds,
            )

        result = await self._reservations.create_within_quota(new_job, decide, media, limits, links)
        if isinstance(result, Refusal):
            raise QuotaExceeded(result.text)
        return result
