"""The Discord stand-in's age-restricted channels and threads, as payloads and as discord.py
reads them from an interaction."""

from __future__ import annotations

from sandbox.discord_api import DiscordSandbox
from sandbox.discord_api.payloads import channel_payload, guild_create_payload


def test_channels_carry_nsfw_and_threads_their_parent() -> None:
    sandbox = DiscordSandbox()
    guild = sandbox.guild
    dark = sandbox.add_channel(guild, "after-dark", nsfw=True)
    plain = guild.channels[0]
    thread = sandbox.add_thread(dark, "night", sandbox.add_member(guild, "alice"))
    assert channel_payload(dark)["nsfw"] is True
    assert channel_payload(plain)["nsfw"] is False
    payload = channel_payload(thread)
    assert (payload["type"], payload["parent_id"]) == (11, str(dark.id))
    assert "nsfw" not in payload and payload["thread_metadata"]["archived"] is False
    bot = guild.members[sandbox.state.bot_user.id]
    created = guild_create_payload(guild, bot.user, all_members=False, unavailable=None)
    assert [t["id"] for t in created["threads"]] == [str(thread.id)]
    assert str(thread.id) not in {c["id"] for c in created["channels"]}
