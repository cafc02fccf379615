"""A local Discord stand-in (REST, gateway, interactions, CDN) for driving a real discord.py bot.

Quick use::

    async with DiscordSandbox() as sandbox:
        with point_discord_at(sandbox):
            await bot.login("sandbox-bot-token")  # the default bot_token
            ...

Events a test sends (each returns the ``Interaction``; the bot's answer shows up on it):
``slash_command``, ``autocomplete`` (returns the choices), ``message_command(name, message,
member=)`` (a message context menu), ``click_button``, and ``submit_modal(interaction, values,
member=)`` once the bot answered ``interaction`` with a modal (``interaction.modal``).
Members' messages for menus to target: ``user_message``, ``post_message(member, channel,
content=, files=[(filename, data, content_type)], embeds=[...])``, ``post_voice_message``.
"""

from .errors import DiscordError
from .faults import OutageStatus
from .models import (
    Attachment,
    Channel,
    Guild,
    Interaction,
    Member,
    Message,
    RecordedFile,
    RecordedRequest,
    Role,
    User,
)
from .redirect import point_discord_at
from .server import DiscordSandbox
from .snowflakes import DISCORD_EPOCH_MS, snowflake_time

__all__ = [
    "DISCORD_EPOCH_MS",
    "Attachment",
    "Channel",
    "DiscordError",
    "DiscordSandbox",
    "Guild",
    "Interaction",
    "Member",
    "Message",
    "OutageStatus",
    "RecordedFile",
    "RecordedRequest",
    "Role",
    "User",
    "point_discord_at",
    "snowflake_time",
]
