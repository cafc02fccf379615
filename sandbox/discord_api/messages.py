"""Creating, editing and deleting messages from request payloads, with Discord's checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .errors import empty_message, invalid_form, too_large
from .models import EPHEMERAL, IS_VOICE_MESSAGE, LOADING, Attachment, Channel, Message, User
from .multipart import Upload
from .payloads import member_payload, message_payload
from .state import INTENT_GUILD_MESSAGES, SandboxState

SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
# Flags a sender may set; interaction responses may also be ephemeral.
SEND_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
RESPONSE_FLAGS = SEND_FLAGS | EPHEMERAL
EDIT_FLAGS = SUPPRESS_EMBEDS | IS_COMPONENTS_V2

MAX_CONTENT = 2000
MAX_EMBEDS = 10


def check_upload_sizes(uploads: list[Upload], limit: int) -> None:
    """413 before anything changes: the limit applies to each attachment."""
    if any(upload.size > limit for upload in uploads):
        raise too_large()


@dataclass
class _AttachmentPlan:
    """Attachments after a create or edit: kept ones, and uploads still to be stored."""

    keep: list[Attachment]
    new: list[tuple[Upload, str, str | None]]  # upload, filename, description

    def is_empty(self) -> bool:
        return not self.keep and not self.new


def _plan_attachments(
    payload: dict[str, Any], uploads: list[Upload], existing: list[Attachment]
) -> _AttachmentPlan:
    """Without ``attachments`` every upload is added; with it, the list is the whole result:
    existing attachments are kept by id and new ones refer to ``files[N]`` by N."""
    if "attachments" not in payload:
        return _AttachmentPlan(list(existing), [(u, u.filename, None) for u in uploads])
    by_index = {upload.index: upload for upload in uploads}
    by_id = {str(attachment.id): attachment for attachment in existing}
    plan = _AttachmentPlan([], [])
    for position, entry in enumerate(payload["attachments"] or []):
        raw_id = str(entry.get("id", ""))
        if raw_id in by_id:
            plan.keep.append(by_id[raw_id])
        elif raw_id.isdigit() and int(raw_id) in by_index:
            upload = by_index[int(raw_id)]
            filename = entry.get("filename") or upload.filename
            plan.new.append((upload, filename, entry.get("description")))
        else:
            field = f"attachments.{position}.id"
            raise invalid_form(field, "ATTACHMENT_NOT_FOUND", "Unknown attachment or upload.")
    return plan


def _check_content(payload: dict[str, Any]) -> None:
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        message = f"Must be {MAX_CONTENT} or fewer in length."
        raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", message)
    embeds = payload.get("embeds")
    if embeds is not None and len(embeds) > MAX_EMBEDS:
        message = f"Must be {MAX_EMBEDS} or fewer in length."
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", message)


def _is_empty(message: Message, plan: _AttachmentPlan, payload: dict[str, Any]) -> bool:
    has_extras = payload.get("sticker_ids") or payload.get("poll")
    return (
        not (message.content or message.embeds or message.components or has_extras)
        and plan.is_empty()
    )


class MessageStore:
    """Applies payloads to messages in ``state`` and tells the gateway about visible changes."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def create(
        self,
        channel: Channel,
        author: User,
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        allowed_flags: int = SEND_FLAGS,
        extra_flags: int = 0,
        message_type: int = 0,
        allow_empty: bool = False,
        voice_secs: float | None = None,
        **fields: Any,
    ) -> Message:
        """A new message; ``fields`` fill Message attributes such as ``interaction_metadata``.
        ``voice_secs``: a voice message (its attachment carries the duration and a waveform)."""
        check_upload_sizes(uploads, self.state.attachment_size_limit)
        _check_content(payload)
        plan = _plan_attachments(payload, uploads, [])
        message = Message(
            id=self.state.ids.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            type=message_type,
            flags=(int(payload.get("flags") or 0) & allowed_flags) | extra_flags,
            tts=bool(payload.get("tts", False)),
            **fields,
        )
        self._apply_fields(message, payload)
        if not allow_empty and _is_empty(message, plan, payload):
            raise empty_message()
        message.attachments = self._materialise(channel.id, plan)
        if voice_secs is not None:
            message.flags |= IS_VOICE_MESSAGE
            for attachment in message.attachments:
                attachment.duration_secs = voice_secs
                attachment.waveform = "AAAAAAAAAAAA"  # base64 of 8-bit amplitudes (silence)
        self.state.messages[message.id] = message
        channel.last_message_id = message.id
        self._announce("MESSAGE_CREATE", message)
        return message

    def edit(
        self,
        message: Message,
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        allowed_flags: int = EDIT_FLAGS,
    ) -> Message:
        check_upload_sizes(uploads, self.state.attachment_size_limit)
        _check_content(payload)
        plan = _plan_attachments(payload, uploads, message.attachments)
        draft = Message(**{**vars(message), "embeds": message.embeds, "attachments": []})
        self._apply_fields(draft, payload)
        if _is_empty(draft, plan, payload) and not message.loading:
            raise empty_message()
        self._apply_fields(message, payload)
        message.attachments = self._materialise(message.channel_id, plan)
        if "flags" in payload and payload["flags"] is not None:
            requested = int(payload["flags"])
            message.flags = (message.flags & ~allowed_flags) | (requested & allowed_flags)
        # The first edit of a deferred ("is thinking") response turns it into the real answer.
        message.flags &= ~LOADING
        message.edited_at = dt.datetime.now(dt.UTC)
        message.edit_count += 1
        self._announce("MESSAGE_UPDATE", message)
        return message

    def delete(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            data = {
                "id": str(message.id),
                "channel_id": str(message.channel_id),
                "guild_id": str(message.guild_id),
            }
            self.state.emit("MESSAGE_DELETE", data, INTENT_GUILD_MESSAGES)

    @staticmethod
    def _apply_fields(message: Message, payload: dict[str, Any]) -> None:
        if "content" in payload:
            message.content = "" if payload["content"] is None else str(payload["content"])
        if "embeds" in payload:
            message.embeds = [{"type": "rich", **embed} for embed in payload["embeds"] or []]
        if "components" in payload:
            message.components = list(payload["components"] or [])

    def _materialise(self, channel_id: int, plan: _AttachmentPlan) -> list[Attachment]:
        created = [
            self.state.add_attachment(channel_id, name, up.data, up.content_type, description)
            for up, name, description in plan.new
        ]
        return [*plan.keep, *created]

    def _announce(self, event: str, message: Message) -> None:
        if message.ephemeral:
            return  # ephemeral messages never reach the gateway
        data = message_payload(message)
        data["guild_id"] = str(message.guild_id)
        guild = self.state.guilds[message.guild_id]
        member = guild.members.get(message.author.id)
        if member is not None:
            partial = member_payload(member, guild)
            partial.pop("user")
            data["member"] = partial
        self.state.emit(event, data, INTENT_GUILD_MESSAGES)
