"""The buttons on a job's message: Cancel, Extend, Join, Retry, Remix and Delete.

They are DynamicItems whose custom id carries the job id (`video:<action>:<job_id>`), so they
keep working after a restart; everything else they need is read from SQLite. Each checks who
pressed it and answers anyone else privately.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.domain.errors import UserFacingError
from bot.i18n import text, translate
from bot.log_context import about_job
from cogs.answer import answer, defer_if_screening, refuse_after_defer, requester
from cogs.modals import extend_modal, remix_modal
from cogs.text import locale_of
from storage.models import FINAL_STATES, Derivation, Job, JobState

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


async def _tell(interaction: discord.Interaction[Any], key: str, **params: object) -> None:
    """A private answer in the presser's language."""
    text = translate(locale_of(interaction), key, **params)
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"video:x:(?P<id>\d+)"):
    """Shared behaviour: load the job, check the presser, turn UserFacingError into a reply."""

    action = ""  # its label is the catalog's `button.<action>`
    style = discord.ButtonStyle.secondary

    def __init__(self, job_id: int, locale: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(
                label=translate(locale, f"button.{self.action}"),
                style=self.style,
                custom_id=f"video:{self.action}:{job_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        return cls(int(match["id"]))

    def may_press(self, interaction: discord.Interaction[Any], job: Job) -> bool:
        return interaction.user.id == job.user_id

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("VideoBot", interaction.client)
        job = await bot.jobs.get(self.job_id)
        if job is None or job.guild_id != interaction.guild_id:
            await _tell(interaction, "job.unknown")
            return
        if not self.may_press(interaction, job):
            await _tell(interaction, f"job.owner_only.{self.action}", owner=f"<@{job.user_id}>")
            return
        try:
            with about_job(job):
                await self.act(interaction, bot, job)
        except UserFacingError as exc:
            text = exc.text_for(locale_of(interaction))
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=NO_MENTIONS
            )

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        raise NotImplementedError


class CancelButton(JobButton, template=r"video:cancel:(?P<id>\d+)"):
    action = "cancel"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        cancelled = await bot.engine.cancel(job.id, text("reason.cancelled_by_member"))
        if cancelled is None:
            await _tell(interaction, "job.too_late_to_cancel")
            return
        log.info("Cancelled by its member")
        await interaction.response.defer()  # the engine's edit shows the cancellation


class RetryButton(JobButton, template=r"video:retry:(?P<id>\d+)"):
    action, style = "retry", discord.ButtonStyle.primary

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """The same options with a new seed, counted like a new /video."""
        async with bot.command_slot():
            deferred = await defer_if_screening(interaction, bot.intake)
            try:
                retried = await bot.intake.retry(job, requester(interaction))
            except UserFacingError as exc:
                if not deferred:
                    raise
                await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
                return
            await answer(
                interaction, bot.intake, retried.job, retried.first_frame, view_for(retried.job)
            )


class RemixButton(JobButton, template=r"video:remix:(?P<id>\d+)"):
    action = "remix"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """A modal with the words filled in; its submission (cogs.forms) makes the new job."""
        if job.state not in FINAL_STATES:
            raise UserFacingError("job.remix_unfinished")
        await bot.intake.check_place(requester(interaction))
        modal = remix_modal(
            job.id, job.params.prompt, job.params.negative_prompt, locale_of(interaction)
        )
        await interaction.response.send_modal(modal)


class ExtendButton(JobButton, template=r"video:extend:(?P<id>\d+)"):
    action = "extend"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """A modal with the prompt filled in; its submission (cogs.forms) makes the next part."""
        await bot.intake.check_place(requester(interaction))
        modal = extend_modal(job.id, job.params.prompt, locale_of(interaction))
        await interaction.response.send_modal(modal)


class JoinButton(JobButton, template=r"video:join:(?P<id>\d+)"):
    action = "join"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """The chain up to this part, stitched by the bot and posted as a new message."""
        async with bot.command_slot():
            joined = await bot.intake.join(job, requester(interaction))
            await answer(interaction, bot.intake, joined, None, view_for(joined))


class DeleteButton(JobButton, template=r"video:delete:(?P<id>\d+)"):
    action, style = "delete", discord.ButtonStyle.danger

    def may_press(self, interaction: discord.Interaction[Any], job: Job) -> bool:
        moderator = interaction.permissions.manage_messages or interaction.permissions.manage_guild
        return interaction.user.id == job.user_id or moderator

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        if job.state not in FINAL_STATES:
            raise UserFacingError("job.delete_unfinished")
        await interaction.response.defer()
        # For a button, the "original response" is the message the button sits on.
        await interaction.delete_original_response()
        log.info("Message deleted by %d at %.0f", interaction.user.id, time.time())


BUTTONS = (CancelButton, RetryButton, RemixButton, ExtendButton, JoinButton, DeleteButton)


def view_for(job: Job, state: JobState | None = None) -> discord.ui.View:
    """The buttons a job's message shows in `state` (default: the job's own), labelled in the
    job's language."""
    state = state or job.state
    view = discord.ui.View(timeout=None)
    buttons: list[type[JobButton]] = []
    if state is JobState.QUEUED:
        buttons.append(CancelButton)
    elif state in FINAL_STATES:
        if state is JobState.DELIVERED and job.derivation is not Derivation.JOIN:
            buttons.append(ExtendButton)
            if job.derivation is Derivation.EXTEND:
                buttons.append(JoinButton)
        if job.derivation is not Derivation.JOIN:
            buttons += [RetryButton, RemixButton]
        buttons.append(DeleteButton)
    for button in buttons:
        view.add_item(button(job.id, job.locale))
    return view


async def setup(bot: VideoBot) -> None:
    bot.add_dynamic_items(*BUTTONS)
