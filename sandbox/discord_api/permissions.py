"""Permission totals, as Discord sends in ``member.permissions`` and ``app_permissions``."""

from __future__ import annotations

from .models import Guild, Member

ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS = (1 << 51) - 1

# What Discord gives @everyone in a new server (the usual chat, voice and app command rights).
DEFAULT_EVERYONE = (
    (1 << 0)  # create instant invite
    | (1 << 6)  # add reactions
    | (1 << 9)  # stream
    | (1 << 10)  # view channel
    | (1 << 11)  # send messages
    | (1 << 14)  # embed links
    | (1 << 15)  # attach files
    | (1 << 16)  # read message history
    | (1 << 17)  # mention everyone
    | (1 << 18)  # use external emojis
    | (1 << 20)  # connect
    | (1 << 21)  # speak
    | (1 << 25)  # use voice activity
    | (1 << 26)  # change nickname
    | (1 << 31)  # use application commands
    | (1 << 38)  # send messages in threads
)

# The bot's managed role: what a typical invite link asks for.
DEFAULT_BOT = DEFAULT_EVERYONE | (1 << 13) | (1 << 35)  # manage messages, create public threads


def member_permissions(guild: Guild, member: Member) -> int:
    """Guild-level total: an explicit override, or @everyone OR the member's roles."""
    if member.permissions is not None:
        return member.permissions
    if member.id == guild.owner_id:
        return ALL_PERMISSIONS
    total = guild.everyone.permissions
    for role in member.roles:
        total |= role.permissions
    return ALL_PERMISSIONS if total & ADMINISTRATOR else total
