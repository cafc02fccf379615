"""/videoadmin: quotas, models, channels, blocking, safety, usage, jobs and the audit log.

Visible by default to members with Manage Server, and checked again when run: server admins
can re-map command permissions, so the check that counts is ours. Every reply is private.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.errors import InvalidOptionError
from bot.i18n import option_name, translate
from cogs import status as status_report
from cogs.models import model_label
from cogs.safety import SafetyChange, run_safety
from cogs.text import job_line, limits_text, locale_of
from cogs.usage import CHART_FILENAME, usage_answer
from storage.models import Flow, ModelRule

if TYPE_CHECKING:
    from bot.client import VideoBot

NO_MENTIONS = discord.AllowedMentions.none()
MAX_LIMIT = 100_000


def _check_count(name: str, value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_LIMIT:
        raise InvalidOptionError(
            "admin.count_range", name=option_name(name), limit=MAX_LIMIT, value=value
        )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(commands.GroupCog, group_name="videoadmin"):
    """Moderator controls for the video bot."""

    models = app_commands.Group(name="models", description="Which models this server may use")

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.CheckFailure(
                translate(locale_of(interaction), "admin.need_manage_server")
            )
        return True

    async def _say(
        self, interaction: discord.Interaction[VideoBot], key: str, **params: object
    ) -> None:
        """A private reply in the moderator's language."""
        await self._reply(interaction, translate(locale_of(interaction), key, **params))

    async def _reply(self, interaction: discord.Interaction[VideoBot], text: str) -> None:
        await interaction.response.send_message(
            text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    def _guild(self, interaction: discord.Interaction[VideoBot]) -> int:
        assert interaction.guild_id is not None
        return interaction.guild_id

    async def _limits_report(self, guild_id: int, locale: str) -> str:
        limits = await self.bot.server_settings.limits(guild_id)
        roles = await self.bot.server_settings.role_quotas(guild_id)
        return limits_text(limits, self.bot.gatekeeper.defaults, roles, locale)

    @app_commands.command(
        name="quota", description="Change this server's limits (only those given)"
    )
    @app_commands.describe(
        user_daily="Videos per member per rolling 24 hours",
        guild_daily="Videos in the whole server per rolling 24 hours",
        user_concurrent="Unfinished videos a member may have at once",
        monthly_budget_usd="Spend per rolling 30 days, in US dollars",
        max_seconds="Longest clip a member may ask for, in seconds",
    )
    async def quota(
        self,
        interaction: discord.Interaction[VideoBot],
        user_daily: int | None = None,
        guild_daily: int | None = None,
        user_concurrent: int | None = None,
        monthly_budget_usd: float | None = None,
        max_seconds: int | None = None,
    ) -> None:
        counts = {
            "user_daily": user_daily,
            "guild_daily": guild_daily,
            "user_concurrent": user_concurrent,
            "max_seconds": max_seconds,
        }
        for name, value in counts.items():
            _check_count(name, value)
        if monthly_budget_usd is not None and not (
            0 <= monthly_budget_usd <= 1_000_000 and monthly_budget_usd == monthly_budget_usd
        ):
            raise InvalidOptionError("admin.budget_range", name=option_name("monthly_budget_usd"))
        changes: dict[str, int | float] = {k: v for k, v in counts.items() if v is not None}
        if monthly_budget_usd is not None:
            changes["monthly_budget_usd"] = round(monthly_budget_usd, 2)
        guild_id = self._guild(interaction)
        if changes:
            await self.bot.server_settings.set_limits(
                guild_id, interaction.user.id, time.time(), **changes
            )
        locale = locale_of(interaction)
        heading = translate(locale, "admin.updated" if changes else "admin.nothing_given")
        await self._reply(interaction, f"{heading}\n{await self._limits_report(guild_id, locale)}")

    @app_commands.command(name="role_quota", description="Give a role its own daily limit")
    @app_commands.describe(
        role="The role",
        user_daily="Videos per member of this role per 24 hours; leave out to remove the override",
    )
    async def role_quota(
        self,
        interaction: discord.Interaction[VideoBot],
        role: discord.Role,
        user_daily: int | None = None,
    ) -> None:
        _check_count("user_daily", user_daily)
        guild_id = self._guild(interaction)
        await self.bot.server_settings.set_role_quota(
            guild_id, role.id, user_daily, interaction.user.id, time.time()
        )
        locale = locale_of(interaction)
        done = (
            translate(locale, "admin.role_set", role=role.mention, count=user_daily)
            if user_daily is not None
            else translate(locale, "admin.role_removed", role=role.mention)
        )
        await self._reply(interaction, f"{done}\n{await self._limits_report(guild_id, locale)}")

    async def _set_model(
        self, interaction: discord.Interaction[VideoBot], model: str, rule: ModelRule
    ) -> None:
        spec = self.bot.catalog.get(model)
        if spec is None:
            raise InvalidOptionError(
                "admin.unknown_model", option=option_name("model"), name=model[:100]
            )
        if rule == "allow" and not spec.enabled:
            raise InvalidOptionError(
                "admin.model_off", option=option_name("model"), model=spec.name
            )
        guild_id = self._guild(interaction)
        await self.bot.server_settings.set_model_rule(
            guild_id, spec.id, rule, interaction.user.id, time.time()
        )
        allowed = await self.bot.gatekeeper.allowed_models(guild_id)
        names = ", ".join(m.name for m in allowed) or translate(
            locale_of(interaction), "value.none"
        )
        key = "admin.model_allowed" if rule == "allow" else "admin.model_denied"
        await self._say(interaction, key, model=spec.name, models=names)

    @models.command(
        name="allow",
        description="Allow a model here (once any model is allowed, only allowed ones are)",
    )
    @app_commands.describe(model="The model")
    async def models_allow(self, interaction: discord.Interaction[VideoBot], model: str) -> None:
        await self._set_model(interaction, model, "allow")

    @models.command(name="deny", description="Stop members here from using a model")
    @app_commands.describe(model="The model")
    async def models_deny(self, interaction: discord.Interaction[VideoBot], model: str) -> None:
        await self._set_model(interaction, model, "deny")

    async def _set_flow_model(
        self, interaction: discord.Interaction[VideoBot], flow: Flow, model: str | None
    ) -> None:
        needs = {
            "animate": ("first_frame", "admin.flow_needs_image"),
            "edit": ("source_video", "admin.flow_needs_clip"),
        }
        field, refusal = needs[flow]
        spec = self.bot.catalog.get(model) if model else None
        if model and (spec is None or not spec.enabled):
            raise InvalidOptionError(
                "admin.unknown_model", option=option_name("model"), name=model[:100]
            )
        if spec is not None and field not in spec.inputs:
            raise InvalidOptionError(refusal, option=option_name("model"), model=spec.name)
        guild_id = self._guild(interaction)
        await self.bot.server_settings.set_flow_model(
            guild_id, flow, spec.id if spec else None, interaction.user.id, time.time()
        )
        chosen = await self.bot.intake.flow_model(guild_id, flow)
        await self._say(interaction, f"admin.flow_{flow}", model=self.bot.model_name(chosen))

    @models.command(name="animate", description="The model Animate image uses here")
    @app_commands.describe(model="An image-to-video model (leave out for the bot's default)")
    async def models_animate(
        self, interaction: discord.Interaction[VideoBot], model: str | None = None
    ) -> None:
        await self._set_flow_model(interaction, "animate", model)

    @models.command(name="edit", description="The model Edit video uses here")
    @app_commands.describe(model="A video-edit model (leave out for the bot's default)")
    async def models_edit(
        self, interaction: discord.Interaction[VideoBot], model: str | None = None
    ) -> None:
        await self._set_flow_model(interaction, "edit", model)

    @models_allow.autocomplete("model")
    @models_deny.autocomplete("model")
    @models_animate.autocomplete("model")
    @models_edit.autocomplete("model")
    async def _any_model(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[app_commands.Choice[str]]:
        locale = locale_of(interaction)
        return [
            app_commands.Choice(name=model_label(m, locale), value=m.id)
            for m in self.bot.catalog.search(current, limit=25)
        ]

    @app_commands.command(
        name="channels", description="Limit /video to chosen channels (none given: all)"
    )
    async def channels(
        self,
        interaction: discord.Interaction[VideoBot],
        channel: discord.TextChannel | None = None,
        channel_2: discord.TextChannel | None = None,
        channel_3: discord.TextChannel | None = None,
        channel_4: discord.TextChannel | None = None,
        channel_5: discord.TextChannel | None = None,
    ) -> None:
        chosen = [c for c in (channel, channel_2, channel_3, channel_4, channel_5) if c]
        guild_id = self._guild(interaction)
        await self.bot.server_settings.set_channels(
            guild_id, [c.id for c in chosen], interaction.user.id, time.time()
        )
        if chosen:
            listed = ", ".join(c.mention for c in chosen)
            await self._say(interaction, "admin.channels_some", channels=listed)
        else:
            await self._say(interaction, "admin.channels_all")

    @app_commands.command(name="block", description="Stop a member from using /video here")
    async def block(self, interaction: discord.Interaction[VideoBot], user: discord.Member) -> None:
        await self.bot.server_settings.set_blocked(
            self._guild(interaction), user.id, True, interaction.user.id, time.time()
        )
        await self._say(interaction, "admin.blocked", user=user.mention)

    @app_commands.command(name="unblock", description="Let a blocked member use /video again")
    async def unblock(
        self, interaction: discord.Interaction[VideoBot], user: discord.Member
    ) -> None:
        await self.bot.server_settings.set_blocked(
            self._guild(interaction), user.id, False, interaction.user.id, time.time()
        )
        await self._say(interaction, "admin.unblocked", user=user.mention)

    @app_commands.command(
        name="safety",
        description="Age-restricted channels, blocked words, prompt screening (none given: show)",
    )
    @app_commands.describe(
        age_restricted_only="Start videos only in age-restricted (NSFW) channels and their threads",
        block="A word or phrase to refuse in prompts (case, accents and spacing ignored)",
        unblock="A blocked word or phrase to allow again",
        screening="Check prompts with a moderation model before accepting them",
        if_screen_down="When the moderation model cannot answer",
    )
    @app_commands.choices(
        if_screen_down=[
            app_commands.Choice(name="Refuse the video", value="refuse"),
            app_commands.Choice(name="Let the video through", value="allow"),
        ]
    )
    async def safety(
        self,
        interaction: discord.Interaction[VideoBot],
        age_restricted_only: bool | None = None,
        block: app_commands.Range[str, 1, 200] | None = None,
        unblock: app_commands.Range[str, 1, 200] | None = None,
        screening: bool | None = None,
        if_screen_down: str | None = None,
    ) -> None:
        change = SafetyChange(age_restricted_only, screening, if_screen_down, block, unblock)
        await run_safety(self.bot, interaction, change)

    @app_commands.command(
        name="usage", description="Videos and spend in the last 24 hours and 30 days, with a chart"
    )
    @app_commands.describe(user="Only this member")
    async def usage(
        self, interaction: discord.Interaction[VideoBot], user: discord.Member | None = None
    ) -> None:
        who = user.id if user else None
        answer = await usage_answer(self.bot, self._guild(interaction), who, locale_of(interaction))
        await interaction.response.send_message(
            answer.text[:2000],
            file=discord.File(io.BytesIO(answer.chart_png), filename=CHART_FILENAME),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="jobs", description="The unfinished videos in this server")
    async def jobs(self, interaction: discord.Interaction[VideoBot]) -> None:
        jobs = await self.bot.jobs.unfinished_in_guild(self._guild(interaction))
        if not jobs:
            await self._say(interaction, "admin.no_jobs")
            return
        locale = locale_of(interaction)
        lines = [translate(locale, "admin.unfinished", count=len(jobs))]
        lines += [
            f"<@{job.user_id}> {job_line(job, self.bot.model_name(job.model), locale)}"
            for job in jobs[:25]
        ]
        if len(jobs) > 25:
            lines.append(translate(locale, "admin.more", count=len(jobs) - 25))
        await self._reply(interaction, "\n".join(lines))

    @app_commands.command(
        name="status", description="Version, uptime, queue, Together's budget, recent failures"
    )
    async def status(self, interaction: discord.Interaction[VideoBot]) -> None:
        facts = await status_report.gather(
            self.bot, self._guild(interaction), time.time(), time.monotonic()
        )
        reply = status_report.status_text(facts, locale_of(interaction))
        await self._reply(interaction, reply)

    @app_commands.command(name="audit", description="The last changes made with /videoadmin")
    async def audit(self, interaction: discord.Interaction[VideoBot]) -> None:
        entries = await self.bot.server_settings.audit(self._guild(interaction), limit=15)
        if not entries:
            await self._say(interaction, "admin.no_audit")
            return
        lines = [translate(locale_of(interaction), "admin.recent")]
        lines += [
            f"<t:{int(e.created_at)}:f> <@{e.actor_id}> {e.action}: {e.detail}" for e in entries
        ]
        await self._reply(interaction, "\n".join(lines))


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(AdminCog(bot))
