"""A command's attached files, read and checked before the job is stored.

Images are downloaded, checked and resized here, and their bytes stored with the job. Videos
and soundtracks are downloaded only to be checked (kind by content, size, length): Together
fetches them itself, so the job stores their links (see cogs.links).
"""

from __future__ import annotations

from collections.abc import Mapping

import discord

from bot.domain.errors import UserFacingError
from bot.domain.options import VideoRequest, video_limits
from bot.i18n import option_name
from bot.media.keyframes import prepare_keyframe_async
from bot.media.probe import probe_audio, probe_video
from cogs.links import media_link, signed_link
from storage.models import IMAGE_KINDS, MediaLink


class RemoteFile:
    """A file known by its Discord URL rather than as an attachment object: a message menu's
    pick (kept in pending_forms), or an embed's picture. Read like an attachment."""

    def __init__(
        self,
        client: discord.Client,
        url: str,
        size: int = 0,  # 0: not declared; the bytes are checked once read
        attachment_id: int | None = None,
        message: tuple[int, int] | None = None,  # (channel id, message id) it is on
    ) -> None:
        self._client = client
        self.url = url
        self.size = size
        self.attachment_id = attachment_id
        self.message = message

    async def read(self) -> bytes:
        return await self._client.http.get_from_cdn(self.url)

    def link(self, kind: str) -> MediaLink:
        """Renewable from its message when it has one."""
        return signed_link(kind, self.url, self.attachment_id, self.message)


async def prepare_attachments(
    attached: Mapping[str, discord.Attachment | RemoteFile],
    request: VideoRequest,
    message: discord.Message | None = None,
) -> tuple[dict[str, bytes], list[MediaLink]]:
    """Images by option, prepared; links to the checked videos and soundtracks.

    `message` is the message the files are on, when they are on one (a fresh link can then be
    fetched later). Raises UserFacingError naming the option and the limit.
    """
    images: dict[str, bytes] = {}
    links: list[MediaLink] = []
    params = request.params
    for option, attachment in attached.items():
        data = await _read(option, attachment)
        if option in IMAGE_KINDS:
            images[option] = await prepare_keyframe_async(option, data, params.width, params.height)
        else:
            if option == "video":
                await probe_video(option, data, video_limits(request.model))
            else:
                await probe_audio(option, data)
            if isinstance(attachment, RemoteFile):
                links.append(attachment.link(option))
            else:
                links.append(media_link(option, attachment, message))
    return images, links


async def _read(option: str, attachment: discord.Attachment | RemoteFile) -> bytes:
    try:
        return await attachment.read()
    except discord.HTTPException:
        raise UserFacingError("attach.download_failed", option=option_name(option)) from None
