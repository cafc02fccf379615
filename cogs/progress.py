"""The Discord side of the engine's Notifier: edit a job's message, upload its video.

Edits go through the interaction webhook while its token lives (15 minutes), then through the
channel message endpoint with the bot token; a token Discord reports dead is not used again.

Errors are sorted for the engine: a deleted message is replaced by a new one in the channel; a
deleted channel or lost access is ``MessageUnreachable`` (final); a file Discord will not take
is ``FileRefused`` (the link goes instead); anything else (5xx, 429, timeouts, no connection)
is passed on as is and retried by the engine.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import discord

from bot.engine import FileRefused, MessageUnreachable, Progress
from bot.media.files import DownloadedVideo
from cogs.buttons import view_for
from cogs.links import fresh_link
from cogs.render import job_embed, result_embed
from storage.models import Job, JobState, MediaLink

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 15 * 60.0
# Stop using the token a little early: an edit that starts just before expiry can still fail.
TOKEN_MARGIN = 60.0
INVALID_WEBHOOK_TOKEN = 50027
UNKNOWN_WEBHOOK = 10015  # the interaction was never acknowledged
UNKNOWN_MESSAGE = 10008  # not the interaction's message (the bot posted it itself), or deleted
UNKNOWN_CHANNEL = 10003
FILE_TOO_LARGE = 40005
NO_MENTIONS = discord.AllowedMentions.none()


def video_filename(job: Job) -> str:
    return f"video-{job.id}.{'webm' if job.params.output_format == 'WEBM' else 'mp4'}"


class DiscordNotifier:
    def __init__(self, bot: VideoBot) -> None:
        self._bot = bot
        # Interactions whose token failed; each is dropped once its token has expired anyway.
        self._dead_tokens: set[int] = set()

    def _model_name(self, job: Job) -> str:
        spec = self._bot.catalog.get(job.model)
        return spec.name if spec else job.model

    def _token_usable(self, job: Job) -> bool:
        if not job.interaction_token or job.interaction_id in self._dead_tokens:
            return False
        return time.time() < _token_expiry(job.interaction_id) - TOKEN_MARGIN

    def _forget_expired_tokens(self) -> None:
        now = time.time()
        self._dead_tokens = {i for i in self._dead_tokens if _token_expiry(i) > now}

    async def show(self, job: Job, progress: Progress) -> int | None:
        embed = job_embed(job, time.time(), self._model_name(job), progress)
        return await self._edit(job, embed=embed, view=view_for(job))

    async def deliver(self, job: Job, video: Path | None) -> int | None:
        if await self._already_delivered(job):
            log.info("The video is already in its message; not uploading again")
            return None
        embed = result_embed(job, self._model_name(job), link_only=video is None)
        view = view_for(job, JobState.DELIVERED)
        posted = await self._edit(job, embed=embed, video=video, view=view)
        if video is not None:
            log.info("Uploaded %s", video.name)
        return posted

    async def fresh_link(self, link: MediaLink) -> MediaLink | None:
        return await fresh_link(self._bot, link)

    async def fetch_delivered(self, job: Job, folder: Path) -> DownloadedVideo | None:
        if job.message_id is None:
            return None
        try:
            data = await self._bot.http.get_message(job.channel_id, job.message_id)
        except (discord.NotFound, discord.Forbidden):
            return None
        name = video_filename(job)
        for attachment in data.get("attachments", []):
            if attachment.get("filename") == name:
                file = discord.Attachment(data=attachment, state=self._bot._connection)
                try:
                    body = await file.read()
                except discord.NotFound:
                    return None
                path = folder / name
                path.write_bytes(body)
                return DownloadedVideo(path, len(body), file.content_type)
        return None

    async def _already_delivered(self, job: Job) -> bool:
        """A crash between upload and the database write must not post the video twice."""
        if job.message_id is None:
            return False
        try:
            message = await self._fetch(job)
        except discord.HTTPException as exc:
            log.info("Could not look at its message first (%s)", exc.status)
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
        log.info("Interaction token %s; editing through the channel", why)
        self._forget_expired_tokens()
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
            log.info("Its message is unknown; posting a new one")
            return await self._post(job, embed, view, files())
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
                    _raise_sorted(exc)
        own = self._bot.get_partial_messageable(job.channel_id).get_partial_message(job.message_id)
        try:
            if video is None:
                await own.edit(embed=embed, view=view, allowed_mentions=NO_MENTIONS)
            else:
                await own.edit(
                    embed=embed, attachments=files(), view=view, allowed_mentions=NO_MENTIONS
                )
        except discord.HTTPException as exc:
            if exc.status == 404 and exc.code == UNKNOWN_MESSAGE:
                log.info("Message %d was deleted; posting a new one", own.id)
                return await self._post(job, embed, view, files())
            _raise_sorted(exc)
        return None

    async def _post(
        self, job: Job, embed: discord.Embed, view: discord.ui.View, files: list[discord.File]
    ) -> int:
        channel = self._bot.get_partial_messageable(job.channel_id)
        try:
            message = await channel.send(
                embed=embed, files=files, view=view, allowed_mentions=NO_MENTIONS
            )
        except discord.HTTPException as exc:
            _raise_sorted(exc)
        log.info("Posted message %d", message.id)
        return message.id


def _token_expiry(interaction_id: int) -> float:
    return discord.utils.snowflake_time(interaction_id).timestamp() + TOKEN_LIFETIME


def _raise_sorted(exc: discord.HTTPException) -> NoReturn:
    """Raise the engine's reading of a Discord error: final, file refused, or passing (as is)."""
    if exc.status == 404 and exc.code == UNKNOWN_CHANNEL:
        raise MessageUnreachable("the channel was deleted") from exc
    if exc.status == 403:
        reason = f"the bot may not post in this channel (Discord code {exc.code})"
        raise MessageUnreachable(reason) from exc
    if exc.status == 413 or exc.code == FILE_TOO_LARGE:
        raise FileRefused(f"Discord refused the file as too large (HTTP {exc.status})") from exc
    raise exc


async def setup(bot: VideoBot) -> None:
    bot.engine.attach(DiscordNotifier(bot))
