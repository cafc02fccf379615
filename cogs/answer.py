"""The Discord side of starting a job, shared by /video and the Retry button.

`requester` turns an interaction into the intake's plain `Requester`; `answer` sends the public
first response that becomes the job's progress message, and tells the intake how that went.
`defer_if_screening` and `refuse_after_defer` are the two ends of a slow check: a public
"thinking" answer first, then either the job or a private refusal in its place.
"""

from __future__ import annotations

import io
import time
from typing import Any

import discord

from bot.i18n import language
from bot.intake import THUMBNAIL_NAME, Intake, Requester
from bot.log_context import about_job
from cogs.render import progress_embed
from storage.models import Job

NO_MENTIONS = discord.AllowedMentions.none()


def requester(interaction: discord.Interaction[Any]) -> Requester:
    """Who asks and where, as the intake needs it (a command run in a server)."""
    assert interaction.guild_id is not None and interaction.channel_id is not None
    return Requester(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        role_ids=tuple(role.id for role in getattr(interaction.user, "roles", ())),
        application_id=interaction.application_id,
        interaction_id=interaction.id,
        interaction_token=interaction.token,
        upload_limit=interaction.filesize_limit,
        locale=language(interaction.locale.value),
        nsfw=age_restricted(interaction.channel),
    )


def age_restricted(channel: object) -> bool:
    """The channel is age-restricted (NSFW); a thread is when its parent is. A channel the
    bot cannot see (not in its cache, no `nsfw` in the payload) counts as not."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(callable(is_nsfw) and is_nsfw())


async def defer_if_screening(interaction: discord.Interaction[Any], intake: Intake) -> bool:
    """Answer publicly ("thinking") first when the server screens prompts: the moderation
    model may take longer than Discord's 3 seconds. True when deferred."""
    assert interaction.guild_id is not None
    if await intake.screens(interaction.guild_id):
        await interaction.response.defer(thinking=True)
        return True
    return False


async def refuse_after_defer(interaction: discord.Interaction[Any], text: str) -> None:
    """The deferred answer was public: remove it and tell the member privately."""
    await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def answer(
    interaction: discord.Interaction[Any],
    intake: Intake,
    job: Job,
    keyframe: bytes | None,
    view: discord.ui.View,
) -> None:
    """The public first response becomes the progress message; then the engine takes over.

    `view` is the job's buttons (cogs.buttons.view_for), passed in because the Retry button
    itself answers through here. If Discord does not take the answer, in any way, the intake
    abandons the job (it is never submitted or billed) and the error propagates.
    """
    with about_job(job):  # the new job, also when the interaction was about another one
        await _answer(interaction, intake, job, keyframe, view)


async def _answer(
    interaction: discord.Interaction[Any],
    intake: Intake,
    job: Job,
    keyframe: bytes | None,
    view: discord.ui.View,
) -> None:
    embed = progress_embed(job, time.time(), intake.model_name(job.model))
    files = [discord.File(io.BytesIO(keyframe), THUMBNAIL_NAME)] if keyframe else []
    try:
        if interaction.response.is_done():  # deferred while the images were prepared
            message = await interaction.edit_original_response(
                embed=embed, attachments=files, view=view, allowed_mentions=NO_MENTIONS
            )
            message_id: int | None = message.id
        elif files:
            callback = await interaction.response.send_message(
                embed=embed, files=files, view=view, allowed_mentions=NO_MENTIONS
            )
            message_id = callback.message_id
        else:
            callback = await interaction.response.send_message(
                embed=embed, view=view, allowed_mentions=NO_MENTIONS
            )
            message_id = callback.message_id
    except Exception:
        # Nobody saw the job (Discord refused, timed out or could not be reached).
        await intake.abandoned(job)
        raise
    await intake.accepted(job, message_id)
