"""/videos: a member's jobs page by page and what they have left, or one job in full; privately.

The page buttons are DynamicItems whose custom id carries the member and an anchor job id
(`videos:older:<user_id>:<job_id>`: the jobs older than that one; `videos:newer:...`: the
jobs newer than it), so they keep working after a restart and a page does not shift when new
jobs arrive. Only that member may turn the pages.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.allowance import Allowance, allowance, cheapest_video_usd
from bot.i18n import translate
from cogs.render import (
    HISTORY_PAGE,
    HistoryPage,
    history_embed,
    job_detail_embed,
    lineage_text,
)
from cogs.text import locale_of
from storage.models import Derivation, Job

if TYPE_CHECKING:
    import re

    from bot.client import VideoBot

NO_MENTIONS = discord.AllowedMentions.none()
Way = Literal["older", "newer"]


async def _allowance(bot: VideoBot, interaction: discord.Interaction[Any]) -> Allowance:
    """What the member has left, from the limits and usage /video's check would read."""
    assert interaction.guild_id is not None
    role_ids = [role.id for role in getattr(interaction.user, "roles", [])]
    limits = await bot.gatekeeper.limits_for(interaction.guild_id, role_ids)
    models = await bot.gatekeeper.allowed_models(interaction.guild_id)
    now = time.time()
    usage = await bot.usage.member_usage(interaction.guild_id, interaction.user.id, now)
    return allowance(limits, usage, now, cheapest_video_usd(models, limits.max_seconds))


async def history_page(
    bot: VideoBot, guild_id: int, user_id: int, way: Way | None = None, anchor: int = 0
) -> HistoryPage:
    """The page of the member's jobs older than job `anchor` (`older`), the page just newer
    than it (`newer`), or the newest page (None, or when the anchor's page is gone)."""
    jobs: list[Job] = []
    has_older = False
    if way == "newer":
        newer = await bot.jobs.member_page_newer(guild_id, user_id, anchor, HISTORY_PAGE)
        if len(newer) > HISTORY_PAGE:  # a full page with more above it; else the newest page
            jobs = list(reversed(newer[:HISTORY_PAGE]))
            has_older = bool(await bot.jobs.member_page(guild_id, user_id, jobs[-1].id, 0))
    if not jobs:
        before = anchor if way == "older" else None
        found = await bot.jobs.member_page(guild_id, user_id, before, HISTORY_PAGE)
        if not found and before is not None:
            found = await bot.jobs.member_page(guild_id, user_id, None, HISTORY_PAGE)
        jobs, has_older = found[:HISTORY_PAGE], len(found) > HISTORY_PAGE
    total = await bot.jobs.member_count(guild_id, user_id)
    above = await bot.jobs.member_count(guild_id, user_id, jobs[0].id) if jobs else 0
    return HistoryPage(
        jobs=jobs, position=above + 1, total=total, has_newer=above > 0, has_older=has_older
    )


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"videos:(?P<way>older|newer):(?P<owner>\d+):(?P<anchor>\d+)",
):
    """Previous (`newer`) or Next (`older`) under a /videos page; only its member may press."""

    def __init__(
        self,
        way: Way,
        owner_id: int,
        anchor: int,
        *,
        disabled: bool = False,
        locale: str | None = None,
    ) -> None:
        self.way, self.owner_id, self.anchor = way, owner_id, anchor
        super().__init__(
            discord.ui.Button(
                label=translate(locale, "button.next" if way == "older" else "button.previous"),
                style=discord.ButtonStyle.secondary,
                custom_id=f"videos:{way}:{owner_id}:{anchor}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PageButton:
        return cls(cast("Way", match["way"]), int(match["owner"]), int(match["anchor"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.user.id != self.owner_id or interaction.guild_id is None:
            await interaction.response.send_message(
                translate(locale_of(interaction), "history.not_yours", owner=f"<@{self.owner_id}>"),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        bot = cast("VideoBot", interaction.client)
        locale = locale_of(interaction)
        page = await history_page(bot, interaction.guild_id, self.owner_id, self.way, self.anchor)
        embed = history_embed(page, await _allowance(bot, interaction), bot.model_name, locale)
        await interaction.response.edit_message(
            embed=embed, view=pages_view(page, self.owner_id, locale), allowed_mentions=NO_MENTIONS
        )


def pages_view(page: HistoryPage, owner_id: int, locale: str | None = None) -> discord.ui.View:
    """Previous and Next, each disabled where there is nothing that way (none without jobs)."""
    view = discord.ui.View(timeout=None)
    if page.jobs:
        newest, oldest = page.jobs[0].id, page.jobs[-1].id
        for way, anchor, disabled in (
            ("newer", newest, not page.has_newer),
            ("older", oldest, not page.has_older),
        ):
            view.add_item(
                PageButton(cast("Way", way), owner_id, anchor, disabled=disabled, locale=locale)
            )
    return view


class AccountCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="videos", description="Your videos page by page and what you have left, or one in full"
    )
    @app_commands.describe(job="A video's number (#12) to see everything about it")
    @app_commands.guild_only()
    async def videos(
        self,
        interaction: discord.Interaction[VideoBot],
        job: app_commands.Range[int, 1, 2**53] | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        if job is not None:
            await self._one(interaction, job)
            return
        locale = locale_of(interaction)
        page = await history_page(self.bot, interaction.guild_id, interaction.user.id)
        allowance = await _allowance(self.bot, interaction)
        embed = history_embed(page, allowance, self.bot.model_name, locale)
        await interaction.response.send_message(
            embed=embed,
            view=pages_view(page, interaction.user.id, locale),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    async def _one(self, interaction: discord.Interaction[VideoBot], job_id: int) -> None:
        """The job in full for its member or a moderator; for anyone else, and for a job that
        does not exist here, the same refusal: it never tells whether the job exists."""
        job = await self.bot.jobs.get(job_id)
        allowed = job is not None and job.guild_id == interaction.guild_id
        if job is not None and allowed and job.user_id != interaction.user.id:
            allowed = interaction.permissions.manage_guild
        if job is None or not allowed:
            await interaction.response.send_message(
                translate(locale_of(interaction), "history.no_job", job=job_id),
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        locale = locale_of(interaction)
        lineage = await self._lineage(job, locale)
        embed = job_detail_embed(job, self.bot.model_name(job.model), lineage, locale)
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def _lineage(self, job: Job, locale: str) -> str | None:
        parent_number = None
        if job.parent_id is not None:
            parent = await self.bot.jobs.get(job.parent_id)
            if parent is not None and parent.guild_id == job.guild_id:
                parent_number = parent.id
        chain_size = 0
        if job.derivation is None or job.derivation is Derivation.EXTEND:
            chain_size = await self.bot.jobs.chain_size(job.chain_id or job.id)
        return lineage_text(job, parent_number, chain_size, locale)


async def setup(bot: VideoBot) -> None:
    bot.add_dynamic_items(PageButton)
    await bot.add_cog(AccountCog(bot))
