"""The Discord side of the engine's Notifier: edit a job's message, upload its video.

Edits go through the interaction webhook while its token lives (15 minutes), then through the
channel message endpoint with the bot token; a token Discord reports dead is not used again.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot.engine import Progress
from cogs.buttons import view_for
from cogs.render import job_embed, result_embed
from storage.models import Job, JobState

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 15 * 60.0
# Stop using the token a little early: an edit that starts just before expiry can still fail.
TOKEN_MARGIN = 60.0
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015  # the interaction was never acknowledged
UNKNOWN_MESSAGE = 10008  # not the interaction's message (the bot posted it itself)
NO_MENTIONS = discord.AllowedMentions.none()


def video_filename(job: Job) -> str:
    return f"video-{job.id}.{'webm' if job.output_format == 'WEBM' else 'mp4'}"


class DiscordNotifier:
    def __init__(self, bot: VideoBot) -> None:
        self._bot = bot
        self._dead_tokens: set[int] = set()

    def _model_name(self, job: Job) -> str:
        spec = self._bot.catalog.get(job.model)
        return spec.name if spec else job.model

    def _token_usable(self, job: Job) -> bool:
        if job.interaction_id in self._dead_tokens:
            return False
        created = discord.utils.snowflake_time(job.interaction_id).timestamp()
        return time.time() < created + TOKEN_LIFETIME - TOKEN_MARGIN

    async def show(self, job: Job, progress: Progress) -> int | None:
        embed = job_embed(job, time.time(), self._model_name(job), progress)
        return await self._edit(job, embed=embed, view=view_for(job))

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        if await self._already_delivered(job):
            log.info("Job %d: the video is already in its message; not uploading again", job.id)
            return None
        embed = result_embed(job, self._model_name(job), link_only=video is None)
        view = view_for(job, JobState.DELIVERED)
        posted = await self._edit(job, embed=embed, video=video, view=view)
        if video is not None:
            log.info("Job %d: uploaded %s", job.id, video.name)
        return posted

    async def _already_delivered(self, job: Job) -> bool:
        """A crash between upload and the database write must not post the video twice."""
        if job.message_id is None:
            return False
        try:
            message = await self._fetch(job)
        except discord.HTTPException as exc:
            log.info("Job %d: could not look at its message first (%s)", job.id, exc.status)
            return False
        return any(a.filename == video_filename(job) for a in message.attachments)

    async def _fetch(self, job: Job) -> discord.Message:
        assert job.message_id is not None
        if self._token_usable(job):
            webhook = discord.Webhook.partial(
                job.application_id, job.interaction_token, client=self._bot
            )
            try:
                return await webhook.fetch_message(job.message_id)
            except discord.HTTPException as exc:
                if not self._token_died(job, exc):
                    raise
        channel = self._bot.get_partial_messageable(job.channel_id)
        return await channel.fetch_message(job.message_id)

    def _token_died(self, job: Job, exc: discord.HTTPException) -> bool:
        """Whether the interaction webhook cannot reach this message: use the channel instead.

        Remembered, so a dead token is not tried again (invalid requests earn IP bans).
        """
        expired = exc.status == 401 and exc.code == INVALID_WEBHOOK_TOKEN
        elsewhere = exc.status == 404 and exc.code in (UNKNOWN_WEBHOOK, UNKNOWN_MESSAGE)
        if not (expired or elsewhere):
            return False
        why = "expired" if expired else "cannot reach its message"
        log.info("Job %d: interaction token %s; editing through the channel", job.id, why)
        self._dead_tokens.add(job.interaction_id)
        return True

    async def _edit(
        self,
        job: Job,
        *,
        embed: discord.Embed,
        view: discord.ui.View,
        video: Path | None = None,
    ) -> int | None:
        """Edit the job's message; with `video`, replace its attachments with that file.

        Returns the id of a new message when the job had none to edit.
        """

        def files() -> list[discord.File]:
            # A fresh File per attempt: discord.py closes a file once a request has used it.
            return [discord.File(video, filename=video_filename(job))] if video else []

        if job.message_id is None:
            # The bot stopped between answering and recording the message: post a fresh one.
            channel = self._bot.get_partial_messageable(job.channel_id)
            message = await channel.send(
                embed=embed, files=files(), view=view, allowed_mentions=NO_MENTIONS
            )
            log.info("Job %d: its message was unknown; posted message %d", job.id, message.id)
            return message.id
        if self._token_usable(job):
            webhook = discord.Webhook.partial(
                job.application_id, job.interaction_token, client=self._bot
            )
            try:
                if video is None:
                    await webhook.edit_message(
                        job.message_id, embed=embed, view=view, allowed_mentions=NO_MENTIONS
                    )
                else:
                    await webhook.edit_message(
                        job.message_id,
                        embed=embed,
                        attachments=files(),
                        view=view,
                        allowed_mentions=NO_MENTIONS,
                    )
                return None
            except discord.HTTPException as exc:
                if not self._token_died(job, exc):
                    raise
        own = self._bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        if video is None:
            await own.edit(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
        else:
            await own.edit(
                embed=embed, attachments=files(), view=view, allowed_mentions=NO_MENTIONS
            )
        return None


async def setup(bot: VideoBot) -> None:
    bot.engine.attach(DiscordNotifier(bot))
