"""Discord JSON shapes for the sandbox's records (what discord.py parses)."""

from __future__ import annotations

import time
from typing import Any

from .models import Attachment, Channel, Guild, Interaction, Member, Message, Role, User
from .permissions import member_permissions
from .snowflakes import iso_timestamp, snowflake_time


def user_payload(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "discriminator": "0",
        "global_name": user.global_name,
        "avatar": None,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "bot": user.bot,
        "system": False,
    }


def bot_user_payload(user: User) -> dict[str, Any]:
    """``/users/@me`` and READY's ``user``: a user with the account-only fields."""
    return {**user_payload(user), "verified": True, "mfa_enabled": False, "email": None}


def role_payload(role: Role) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(role.id),
        "name": role.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": role.position,
        "permissions": str(role.permissions),
        "managed": role.bot_id is not None,
        "mentionable": False,
        "flags": 0,
    }
    if role.bot_id is not None:
        payload["tags"] = {"bot_id": str(role.bot_id)}
    return payload


def thread_payload(thread: Channel) -> dict[str, Any]:
    """A public thread as Discord sends it (no `nsfw`, no overwrites: its parent's apply)."""
    return {
        "id": str(thread.id),
        "type": thread.type,
        "guild_id": str(thread.guild_id),
        "parent_id": str(thread.parent_id),
        "owner_id": str(thread.owner_id),
        "name": thread.name,
        "last_message_id": None if thread.last_message_id is None else str(thread.last_message_id),
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-01-01T00:00:00+00:00",
            "locked": False,
            "invitable": True,
        },
    }


def channel_payload(channel: Channel) -> dict[str, Any]:
    if channel.parent_id is not None:
        return thread_payload(channel)
    return {
        "id": str(channel.id),
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": list(channel.permission_overwrites),
        "nsfw": channel.nsfw,
        "topic": channel.topic,
        "last_message_id": None
        if channel.last_message_id is None
        else str(channel.last_message_id),
        "rate_limit_per_user": 0,
        "parent_id": None,
        "flags": 0,
        "default_thread_rate_limit_per_user": 0,
    }


def member_payload(
    member: Member, guild: Guild, *, with_permissions: bool = False
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "user": user_payload(member.user),
        "nick": member.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(role.id) for role in member.roles],
        "joined_at": iso_timestamp(member.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "avatar_decoration_data": None,
    }
    if with_permissions:
        # Interactions carry the computed total (channel overwrites are not modelled).
        payload["permissions"] = str(member_permissions(guild, member))
    return payload


def guild_payload(guild: Guild) -> dict[str, Any]:
    """The REST guild object (``GET /guilds/{id}``)."""
    return {
        "id": str(guild.id),
        "name": guild.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(guild.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role_payload(role) for role in guild.roles],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": str(guild.channels[0].id) if guild.channels else None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": guild.premium_tier,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "incidents_data": None,
    }


def guild_create_payload(
    guild: Guild, bot: User, *, all_members: bool, unavailable: bool | None
) -> dict[str, Any]:
    """GUILD_CREATE: the REST object plus channels, members and the gateway-only fields."""
    members = list(guild.members.values())
    if not all_members:
        # Without the presences intent Discord sends only the bot (and voice members).
        members = [m for m in members if m.id == bot.id]
    payload = guild_payload(guild)
    payload.update(
        {
            "joined_at": iso_timestamp(guild.members[bot.id].joined_at),
            "large": False,
            "lazy": True,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [member_payload(m, guild) for m in members],
            "channels": [channel_payload(c) for c in guild.channels],
            "threads": [channel_payload(t) for t in guild.threads],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
        }
    )
    if unavailable is not None:
        payload["unavailable"] = unavailable
    return payload


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(attachment.id),
        "filename": attachment.filename,
        "size": attachment.size,
        "url": attachment.signed_url(time.time()),
        "proxy_url": attachment.proxy_url,
        "content_type": attachment.content_type,
        "flags": 0,
    }
    # Width and height only where known (images); duration and waveform only on voice messages.
    if attachment.width is not None and attachment.height is not None:
        payload["width"], payload["height"] = attachment.width, attachment.height
    if attachment.duration_secs is not None:
        payload["duration_secs"] = attachment.duration_secs
        payload["waveform"] = attachment.waveform or ""
    if attachment.description is not None:
        payload["description"] = attachment.description
    return payload


def message_payload(message: Message) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(message.id),
        "channel_id": str(message.channel_id),
        "author": user_payload(message.author),
        "content": message.content,
        "timestamp": iso_timestamp(snowflake_time(message.id)),
        "edited_timestamp": None if message.edited_at is None else iso_timestamp(message.edited_at),
        "tts": message.tts,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [attachment_payload(a) for a in message.attachments],
        "embeds": list(message.embeds),
        "components": list(message.components),
        "reactions": [],
        "pinned": False,
        "type": message.type,
        "flags": message.flags,
    }
    if message.webhook_id is not None:
        payload["webhook_id"] = str(message.webhook_id)
    if message.application_id is not None:
        payload["application_id"] = str(message.application_id)
    if message.interaction_metadata is not None:
        payload["interaction_metadata"] = message.interaction_metadata
    return payload


def interaction_metadata(interaction: Interaction) -> dict[str, Any]:
    """What a response message says about the interaction that created it."""
    metadata: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": user_payload(interaction.member.user),
        "authorizing_integration_owners": {"0": str(interaction.guild.id)},
    }
    if interaction.type == 2:
        metadata["name"] = interaction.data.get("name", "")
        metadata["command_type"] = interaction.data.get("type", 1)
        if "target_id" in interaction.data and interaction.data.get("type") == 3:
            metadata["target_message_id"] = interaction.data["target_id"]
    if interaction.type == 3 and interaction.message is not None:
        metadata["interacted_message_id"] = str(interaction.message.id)
    if interaction.type == 5 and interaction.modal_source is not None:
        metadata["triggering_interaction_metadata"] = interaction_metadata(interaction.modal_source)
    return metadata
