"""Starting a job from checked options and attached files: /video, Animate image, Edit video.

The intake checks; this module does the Discord part in Discord's time: a refusal before any
answer is raised (the caller answers privately); anything slow (downloading and checking files)
happens after a public deferral, and a refusal then replaces it with a private note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import discord

from bot.domain.errors import UserFacingError
from bot.domain.options import VideoOptions
from cogs.answer import NO_MENTIONS, answer, requester
from cogs.attachments import RemoteFile, prepare_attachments
from cogs.buttons import view_for
from cogs.text import locale_of
from storage.models import Derivation, MediaLink

if TYPE_CHECKING:
    from bot.client import VideoBot


async def start_job(
    interaction: discord.Interaction[VideoBot],
    options: VideoOptions,
    attached: Mapping[str, discord.Attachment | RemoteFile],
    *,
    message: discord.Message | None = None,
    derivation: Derivation | None = None,
) -> None:
    """Check, reserve and answer. `message` is the message the files are on, if any.

    Raises UserFacingError only while nothing has been answered yet.
    """
    intake = interaction.client.intake
    admission = await intake.check(requester(interaction), options)
    media: dict[str, bytes] = {}
    links: list[MediaLink] = []
    if attached:
        # Refuse before the slow part; without files the reservation alone decides.
        await intake.precheck(admission)
        # Downloading and checking files can take longer than Discord's 3 seconds.
        await interaction.response.defer(thinking=True)
        try:
            media, links = await prepare_attachments(attached, admission.request, message)
        except UserFacingError as exc:
            await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
            return
    try:
        job = await intake.reserve(admission, media, links, derivation)
    except UserFacingError as exc:
        if not interaction.response.is_done():
            raise
        await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
        return
    await answer(interaction, intake, job, media.get("first_frame"), view_for(job))


async def refuse_after_defer(interaction: discord.Interaction[VideoBot], text: str) -> None:
    """The deferred answer was public: remove it and tell the member privately."""
    await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
