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
from bot.log_context import about_job
from cogs.answer import answer, defer_if_screening, refuse_after_defer, requester
from cogs.modals import extend_modal, remix_modal
from storage.models import FINAL_STATES, Derivation, Job, JobState

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()


async def _tell(interaction: discord.Interaction[Any], text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"video:x:(?P<id>\d+)"):
    """Shared behaviour: load the job, check the presser, turn UserFacingError into a reply."""

    action = ""
    label = ""
    style = discord.ButtonStyle.secondary

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(
            discord.ui.Button(
                label=self.label, style=self.style, custom_id=f"video:{self.action}:{job_id}"
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
            await _tell(interaction, "This video is no longer known to the bot.")
            return
        if not self.may_press(interaction, job):
            await _tell(interaction, f"Only <@{job.user_id}> can {self.action} this video.")
            return
        try:
            with about_job(job):
                await self.act(interaction, bot, job)
        except UserFacingError as exc:
            await _tell(interaction, exc.message)

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        raise NotImplementedError


class CancelButton(JobButton, template=r"video:cancel:(?P<id>\d+)"):
    action, label = "cancel", "Cancel"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        cancelled = await bot.engine.cancel(job.id, "Cancelled before it was sent to Together.")
        if cancelled is None:
            await _tell(
                interaction,
                "Too late to cancel: the video is already being made at Together, which "
                "cannot stop it.",
            )
            return
        log.info("Cancelled by its member")
        await interaction.response.defer()  # the engine's edit shows the cancellation


class RetryButton(JobButton, template=r"video:retry:(?P<id>\d+)"):
    action, label, style = "retry", "Retry", discord.ButtonStyle.primary

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """The same options with a new seed, counted like a new /video."""
        async with bot.command_slot():
            deferred = await defer_if_screening(interaction, bot.intake)
            try:
                retried = await bot.intake.retry(job, requester(interaction))
            except UserFacingError as exc:
                if not deferred:
                    raise
                await refuse_after_defer(interaction, exc.message)
                return
            await answer(
                interaction, bot.intake, retried.job, retried.first_frame, view_for(retried.job)
            )


class RemixButton(JobButton, template=r"video:remix:(?P<id>\d+)"):
    action, label = "remix", "Remix"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """A modal with the words filled in; its submission (cogs.forms) makes the new job."""
        if job.state not in FINAL_STATES:
            raise UserFacingError("The video is still being made; remix it once it is done.")
        await bot.intake.check_place(requester(interaction))
        modal = remix_modal(job.id, job.params.prompt, job.params.negative_prompt)
        await interaction.response.send_modal(modal)


class ExtendButton(JobButton, template=r"video:extend:(?P<id>\d+)"):
    action, label = "extend", "Extend"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """A modal with the prompt filled in; its submission (cogs.forms) makes the next part."""
        await bot.intake.check_place(requester(interaction))
        await interaction.response.send_modal(extend_modal(job.id, job.params.prompt))


class JoinButton(JobButton, template=r"video:join:(?P<id>\d+)"):
    action, label = "join", "Join"

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        """The chain up to this part, stitched by the bot and posted as a new message."""
        async with bot.command_slot():
            joined = await bot.intake.join(job, requester(interaction))
            await answer(interaction, bot.intake, joined, None, view_for(joined))


class DeleteButton(JobButton, template=r"video:delete:(?P<id>\d+)"):
    action, label, style = "delete", "Delete", discord.ButtonStyle.danger

    def may_press(self, interaction: discord.Interaction[Any], job: Job) -> bool:
        moderator = interaction.permissions.manage_messages or interaction.permissions.manage_guild
        return interaction.user.id == job.user_id or moderator

    async def act(self, interaction: discord.Interaction[Any], bot: VideoBot, job: Job) -> None:
        if job.state not in FINAL_STATES:
            raise UserFacingError("The video is still being made; it can be deleted once done.")
        await interaction.response.defer()
        # For a button, the "original response" is the message the button sits on.
        await interaction.delete_original_response()
        log.info("Message deleted by %d at %.0f", interaction.user.id, time.time())


BUTTONS = (CancelButton, RetryButton, RemixButton, ExtendButton, JoinButton, DeleteButton)


def view_for(job: Job, state: JobState | None = None) -> discord.ui.View:
    """The buttons a job's message shows in `state` (default: the job's own)."""
    state = state or job.state
    view = discord.ui.View(timeout=None)
    if state is JobState.QUEUED:
        view.add_item(CancelButton(job.id))
    elif state in FINAL_STATES:
        if state is JobState.DELIVERED and job.derivation is not Derivation.JOIN:
            view.add_item(ExtendButton(job.id))
            if job.derivation is Derivation.EXTEND:
                view.add_item(JoinButton(job.id))
        if job.derivation is not Derivation.JOIN:
            view.add_item(RetryButton(job.id))
            view.add_item(RemixButton(job.id))
        view.add_item(DeleteButton(job.id))
    return view


async def setup(bot: VideoBot) -> None:
    bot.add_dynamic_items(*BUTTONS)
