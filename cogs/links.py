"""Discord attachment links as the engine stores them (MediaLink), and fetching them anew.

Discord signs attachment links for about a day (`ex`, hex seconds, in the query). A slash
command's attachment is on no message, so its link is used while it lasts; an attachment on a
message gets a fresh link each time the message is fetched.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import discord

from storage.models import MediaLink

log = logging.getLogger(__name__)


def link_expiry(url: str) -> float | None:
    """When a signed CDN link stops working (its `ex`), or None when it carries none."""
    values = parse_qs(urlsplit(url).query).get("ex")
    if not values:
        return None
    try:
        return float(int(values[0], 16))
    except ValueError:
        return None


def signed_link(
    kind: str, url: str, attachment_id: int | None, on: tuple[int, int] | None
) -> MediaLink:
    """The link to store for a file at `url`, expiring with its signature; renewable from the
    message it is `on` (channel id, message id), if any."""
    channel_id, message_id = on if on is not None else (None, None)
    return MediaLink(
        kind=kind,
        url=url,
        expires_at=link_expiry(url),
        channel_id=channel_id,
        message_id=message_id,
        attachment_id=attachment_id if on is not None else None,
    )


def media_link(
    kind: str, attachment: discord.Attachment, message: discord.Message | None = None
) -> MediaLink:
    """The link to store for an attachment; with its message, when it is on one."""
    on = (message.channel.id, message.id) if message is not None else None
    return signed_link(kind, attachment.url, attachment.id, on)


async def fresh_link(client: discord.Client, link: MediaLink) -> MediaLink | None:
    """The attachment's link fetched again from its message; None when it is gone for good.

    Raises discord.HTTPException (5xx, 429) or a connection error when Discord cannot answer
    now: the caller decides whether the old link still does.
    """
    if link.channel_id is None or link.message_id is None:
        return None
    try:
        data = await client.http.get_message(link.channel_id, link.message_id)
    except (discord.NotFound, discord.Forbidden):
        return None
    for attachment in data.get("attachments", []):
        if str(attachment.get("id")) == str(link.attachment_id):
            url = str(attachment.get("url") or "")
            if url:
                on = (link.channel_id, link.message_id)
                return signed_link(link.kind, url, link.attachment_id, on)
    log.info("Message %d no longer has attachment %s", link.message_id, link.attachment_id)
    return None
