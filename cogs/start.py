"""Starting a job from checked options and attached files: /video, Animate image, Edit video.

The intake checks; this module does the Discord part in Discord's time: a refusal before any
answer is raised (the caller answers privately); anything slow (screening the prompt,
downloading and checking files) happens after a public deferral, and a refusal then replaces it
with a private note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import discord

from bot.domain.errors import UserFacingError
from bot.domain.options import VideoOptions
from bot.log_context import about_member
from cogs.answer import answer, defer_if_screening, refuse_after_defer, requester
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
    with about_member(interaction.guild_id, interaction.user.id):
        await _start_job(interaction, options, attached, message=message, derivation=derivation)


async def _start_job(
    interaction: discord.Interaction[VideoBot],
    options: VideoOptions,
    attached: Mapping[str, discord.Attachment | RemoteFile],
    *,
    message: discord.Message | None,
    derivation: Derivation | None,
) -> None:
    intake = interaction.client.intake
    media: dict[str, bytes] = {}
    links: list[MediaLink] = []
    await defer_if_screening(interaction, intake)
    try:
        admission = await intake.check(requester(interaction), options)
        if attached:
            # Refuse before the slow part; without files the reservation alone decides.
            await intake.precheck(admission)
            if not interaction.response.is_done():
                # Downloading and checking files can take longer than Discord's 3 seconds.
                await interaction.response.defer(thinking=True)
            media, links = await prepare_attachments(attached, admission.request, message)
        job = await intake.reserve(admission, media, links, derivation)
    except UserFacingError as exc:
        if not interaction.response.is_done():
            raise
        await refuse_after_defer(interaction, exc.text_for(locale_of(interaction)))
        return
    await answer(interaction, intake, job, media.get("first_frame"), view_for(job))
