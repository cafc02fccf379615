"""Modal submissions (Remix, Extend, Animate image, Edit video) and the two message menus.

Every form's custom id says what it is about (cogs.modals), so this cog answers submissions
that arrive after a restart too. Each submission goes through the one intake like /video:
quotas, budgets, allow-lists, channels, blocks and model rules.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import discord
from discord import app_commands
from discord.ext import commands

from bot.domain.errors import UserFacingError
from bot.domain.options import VideoOptions
from bot.i18n import translate
from bot.outages import log_failure
from cogs.answer import NO_MENTIONS, answer, defer_if_screening, refuse_after_defer, requester
from cogs.attachments import RemoteFile
from cogs.buttons import view_for
from cogs.links import media_link
from cogs.modals import Form, animate_modal, edit_modal, parse_form, submitted
from cogs.progress import video_filename
from cogs.start import start_job
from cogs.text import locale_of
from storage.models import Derivation, Job, MediaLink, PendingFile

if TYPE_CHECKING:
    from bot.client import VideoBot

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime")
# Embedded pictures are read only from Discord's own media hosts (its proxy fetched them).
DISCORD_MEDIA_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})


def _first(message: discord.Message, types: tuple[str, ...]) -> discord.Attachment | None:
    """The message's first attachment Discord says is of one of these types (checked again by
    content once downloaded)."""
    for attachment in message.attachments:
        kind = (attachment.content_type or "").split(";")[0].strip().lower()
        if kind in types:
            return attachment
    return None


def _served_by(url: str, hosts: frozenset[str], api_host: str) -> bool:
    """Over https from Discord's media hosts; plain http only from DISCORD_API_BASE's own host
    (the sandbox)."""
    parts = urlsplit(url)
    return parts.netloc in hosts and (parts.scheme == "https" or parts.netloc == api_host)


async def _tell(interaction: discord.Interaction[Any], key: str) -> None:
    """A private note in the member's language."""
    text = translate(locale_of(interaction), key)
    await _send(interaction, text)


async def _send(interaction: discord.Interaction[Any], text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


class FormsCog(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self._menus = [
            app_commands.ContextMenu(name="Animate image", callback=self.animate_image),
            app_commands.ContextMenu(name="Edit video", callback=self.edit_video),
        ]
        for menu in self._menus:
            menu.guild_only = True

    async def cog_load(self) -> None:
        for menu in self._menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self._menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)

    # -- the menus: the modal is the first response --------------------------------------

    def _picture(self, message: discord.Message) -> tuple[str, int | None, str, int] | None:
        """The message's first attached picture (url, attachment id, name, size), else its
        first embedded one that Discord's media hosts serve."""
        attached = _first(message, IMAGE_TYPES)
        if attached is not None:
            return attached.url, attached.id, attached.filename, attached.size
        api_host = urlsplit(self.bot.settings.discord_api_base).netloc
        hosts = DISCORD_MEDIA_HOSTS | {api_host}
        for embed in message.embeds:
            for media in (embed.image, embed.thumbnail):
                for url in (media.proxy_url, media.url):
                    if url and _served_by(url, hosts, api_host):
                        return url, None, "embedded picture", 0
        return None

    async def _keep(
        self,
        interaction: discord.Interaction[VideoBot],
        message: discord.Message,
        picked: tuple[str, int | None, str, int],
        content_type: str | None,
    ) -> int:
        """Keep the picked file until the form comes back: the menu's interaction is the one
        that shows another member's attachments for sure (without the Message Content intent
        a later fetch of their message leaves them out)."""
        url, attachment_id, filename, size = picked
        assert interaction.guild_id is not None
        return await self.bot.pending_forms.put(
            PendingFile(
                id=0,
                guild_id=interaction.guild_id,
                user_id=interaction.user.id,
                channel_id=message.channel.id,
                message_id=message.id,
                attachment_id=attachment_id,
                url=url,
                filename=filename,
                content_type=content_type,
                size=size,
                created_at=time.time(),
            )
        )

    async def animate_image(
        self, interaction: discord.Interaction[VideoBot], message: discord.Message
    ) -> None:
        await self.bot.intake.check_place(requester(interaction))
        picked = self._picture(message)
        if picked is None:
            await _tell(interaction, "form.no_image")
            return
        form_id = await self._keep(interaction, message, picked, None)
        await interaction.response.send_modal(animate_modal(form_id, locale_of(interaction)))

    async def edit_video(
        self, interaction: discord.Interaction[VideoBot], message: discord.Message
    ) -> None:
        await self.bot.intake.check_place(requester(interaction))
        clip = _first(message, VIDEO_TYPES)
        if clip is None:
            await _tell(interaction, "form.no_video")
            return
        picked = (clip.url, clip.id, clip.filename, clip.size)
        form_id = await self._keep(interaction, message, picked, clip.content_type)
        await interaction.response.send_modal(edit_modal(form_id, locale_of(interaction)))

    # -- submissions ---------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[VideoBot]) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data = cast("dict[str, Any]", interaction.data or {})
        form = parse_form(str(data.get("custom_id", "")))
        if form is None:
            return
        values = submitted(data)
        try:
            async with self.bot.command_slot():
                await self._submit(interaction, form, values)
        except UserFacingError as exc:
            await _send(interaction, exc.text_for(locale_of(interaction)))
        except Exception as exc:
            about = form.id if form.flow in ("remix", "extend") else None  # a job's form
            log_failure(log, f"The {form.flow} form failed", exc, extra={"job_id": about})
            sorry = translate(locale_of(interaction), "error.form_failed")
            if interaction.response.is_done():
                # A "thinking" answer (or a first answer that failed, whose job was abandoned)
                # must not stay up: replace it with the private note.
                with contextlib.suppress(discord.HTTPException):
                    await refuse_after_defer(interaction, sorry)
            else:
                await _tell(interaction, sorry)

    async def _submit(
        self, interaction: discord.Interaction[VideoBot], form: Form, values: dict[str, str]
    ) -> None:
        prompt = values.get("prompt", "")
        if form.flow == "remix":
            await self._remix(interaction, form.id, prompt, values.get("negative_prompt"))
            return
        if form.flow == "extend":
            await self._extend(interaction, form.id, prompt)
            return
        kept = await self.bot.pending_forms.get(form.id)
        if kept is None or kept.guild_id != interaction.guild_id:
            raise UserFacingError("form.expired")
        if kept.user_id != interaction.user.id:
            raise UserFacingError("form.someone_else")
        file = RemoteFile(
            self.bot, kept.url, kept.size, kept.attachment_id, (kept.channel_id, kept.message_id)
        )
        try:
            if form.flow == "animate":
                await self._animate(interaction, file, prompt)
            else:
                await self._edit(interaction, file, prompt)
        finally:
            # Discord closes a form once submitted: it cannot come back, whatever happened.
            await self.bot.pending_forms.forget(form.id)

    async def _remix(
        self,
        interaction: discord.Interaction[VideoBot],
        job_id: int,
        prompt: str,
        negative_prompt: str | None,
    ) -> None:
        job = await self.bot.jobs.get(job_id)
        if job is None or job.guild_id != interaction.guild_id:
            raise UserFacingError("job.unknown")
        if job.user_id != interaction.user.id:
            raise UserFacingError("job.owner_only.remix", owner=f"<@{job.user_id}>")
        await defer_if_screening(interaction, self.bot.intake)
        try:
            remixed = await self.bot.intake.remix(
                job, requester(interaction), prompt, negative_prompt or None
            )
        except UserFacingError as exc:
            if not interaction.response.is_done():
                raise
            await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
            return
        await answer(
            interaction, self.bot.intake, remixed.job, remixed.first_frame, view_for(remixed.job)
        )

    async def _extend(
        self, interaction: discord.Interaction[VideoBot], job_id: int, prompt: str
    ) -> None:
        job = await self.bot.jobs.get(job_id)
        if job is None or job.guild_id != interaction.guild_id:
            raise UserFacingError("job.unknown")
        if job.user_id != interaction.user.id:
            raise UserFacingError("job.owner_only.extend", owner=f"<@{job.user_id}>")
        # Reading the delivered video's message can take a moment: answer first.
        await interaction.response.defer(thinking=True)
        try:
            clip = await self._clip_to_continue(job)
            extended = await self.bot.intake.extend(job, requester(interaction), prompt, clip)
        except UserFacingError as exc:
            await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
            return
        await answer(interaction, self.bot.intake, extended.job, None, view_for(extended.job))

    async def _clip_to_continue(self, job: Job) -> MediaLink | None:
        """The delivered video as a clip to continue, for a model that continues clips of its
        length; None: the next part starts from its last frame instead."""
        spec = self.bot.catalog.get(job.model)
        if spec is None or spec.video_input_field != "frame_videos" or job.message_id is None:
            return None
        limits = spec.video_input
        if not limits.min_seconds <= job.params.seconds <= limits.max_seconds:
            return None
        message = await self._message(job.channel_id, job.message_id)
        name = video_filename(job)
        video = next((a for a in message.attachments if a.filename == name), None)
        if video is None:
            raise UserFacingError("form.clip_gone")
        return media_link("video", video, message)

    async def _animate(
        self, interaction: discord.Interaction[VideoBot], image: RemoteFile, prompt: str
    ) -> None:
        assert interaction.guild_id is not None
        model = await self.bot.intake.flow_model(interaction.guild_id, "animate")
        options = VideoOptions(prompt=prompt, model=model, attachments={"first_frame": image.size})
        await start_job(interaction, options, {"first_frame": image}, derivation=Derivation.ANIMATE)

    async def _edit(
        self, interaction: discord.Interaction[VideoBot], clip: RemoteFile, prompt: str
    ) -> None:
        assert interaction.guild_id is not None
        model = await self.bot.intake.flow_model(interaction.guild_id, "edit")
        options = VideoOptions(prompt=prompt, model=model, attachments={"video": clip.size})
        try:
            await start_job(interaction, options, {"video": clip}, derivation=Derivation.EDIT)
        except UserFacingError as exc:
            # Raised only before any answer; a `model` refusal means no edit model here.
            if exc.key.startswith("model."):
                raise UserFacingError("form.no_edit_model") from None
            raise

    async def _message(self, channel_id: int, message_id: int) -> discord.Message:
        """The message again, from Discord: its attachment links are fresh."""
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise UserFacingError("form.gone")
            return await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden):
            raise UserFacingError("form.gone") from None


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(FormsCog(bot))
