"""The Discord sandbox driven by a real, unmodified discord.py bot over loopback."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from sandbox.discord_api import DiscordSandbox, Member, Message, point_discord_at
from sandbox.discord_api.payloads import message_payload

TOKEN = "sandbox-bot-token"
RESULT_BYTES = b"rendered video stand-in\n" * 50
FLAVOURS = ["cherry", "chocolate", "lemon", "mint", "vanilla"]


# -- the bot under test ------------------------------------------------------------------------


class SandboxBot(commands.AutoShardedBot):
    """A tiny bot whose handlers report what happened through ``outcome`` futures."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.05,  # READY waits this long after the last GUILD_CREATE
        )
        self.outcomes: dict[str, asyncio.Future[Any]] = {}
        self.release = asyncio.Event()  # lets /late edit once the test has expired its token
        self.slow_delay = 0.0
        self.resumed = asyncio.Event()

    def outcome(self, name: str) -> asyncio.Future[Any]:
        if name not in self.outcomes:
            self.outcomes[name] = asyncio.get_running_loop().create_future()
        return self.outcomes[name]

    async def setup_hook(self) -> None:
        handlers: list[app_commands.Command[Any, Any, None] | app_commands.Group] = [
            ping,
            inspect,
            pick,
            menu,
            slow,
            late,
            big,
            secret,
            clip,
            rename,
        ]
        for command in handlers:
            self.tree.add_command(command)
        self.tree.add_command(app_commands.ContextMenu(name="Animate image", callback=animate))
        self.tree.add_command(app_commands.ContextMenu(name="Edit video", callback=edit_video))
        self.add_view(MenuView())  # persistent: matched by custom_id alone
        self.add_view(RenameView())

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before a non-initial IDENTIFY; nothing to pace here.
        return None

    async def on_resumed(self) -> None:
        self.resumed.set()


def bot_of(interaction: discord.Interaction) -> SandboxBot:
    return cast(SandboxBot, interaction.client)


@app_commands.command(description="Answer, then edit the answer with a file")
async def ping(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(f"pong: {text}")
    result = discord.File(io.BytesIO(RESULT_BYTES), filename="result.txt")
    edited = await interaction.edit_original_response(
        content=f"pong: {text} (edited)", attachments=[result]
    )
    bot_of(interaction).outcome("ping").set_result((edited, interaction.filesize_limit))


@app_commands.command(description="Read an attachment option")
async def inspect(interaction: discord.Interaction, file: discord.Attachment) -> None:
    data = await file.read()
    await interaction.response.send_message(f"{file.filename}: {len(data)} bytes")
    bot_of(interaction).outcome("inspect").set_result((file, data))


async def flavour_choices(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    matches = [f for f in FLAVOURS if f.startswith(current.lower())]
    return [app_commands.Choice(name=f, value=f) for f in matches][:25]


@app_commands.command(description="Pick a flavour")
@app_commands.autocomplete(flavour=flavour_choices)
async def pick(interaction: discord.Interaction, flavour: str) -> None:
    await interaction.response.send_message(f"picked {flavour}")


class MenuView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="OK", custom_id="sandbox:ok", style=discord.ButtonStyle.primary)
    async def ok(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.edit_message(content=f"clicked by {interaction.user}", view=None)
        bot_of(interaction).outcome("click").set_result(interaction.user.name)


@app_commands.command(description="Send a button")
async def menu(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("Press it", view=MenuView())


@app_commands.command(description="Answer too late")
async def slow(interaction: discord.Interaction) -> None:
    await asyncio.sleep(bot_of(interaction).slow_delay)
    try:
        await interaction.response.send_message("finally")
    except discord.NotFound as exc:
        bot_of(interaction).outcome("slow").set_result(exc)


@app_commands.command(description="Edit after the token died")
async def late(interaction: discord.Interaction) -> None:
    bot = bot_of(interaction)
    response = await interaction.response.send_message("working")
    await bot.release.wait()
    error: discord.HTTPException | None = None
    try:
        await interaction.edit_original_response(content="finished via webhook")
    except discord.HTTPException as exc:
        error = exc
    assert isinstance(interaction.channel, discord.TextChannel)
    assert response.message_id is not None
    partial = interaction.channel.get_partial_message(response.message_id)
    edited = await partial.edit(content="finished via channel")
    bot.outcome("late").set_result((error, edited))


@app_commands.command(description="Upload more than the limit")
async def big(interaction: discord.Interaction) -> None:
    await interaction.response.defer(thinking=True)
    blob = discord.File(io.BytesIO(b"\0" * (interaction.filesize_limit + 1)), filename="big.bin")
    try:
        await interaction.followup.send(file=blob)
    except discord.HTTPException as exc:
        bot_of(interaction).outcome("big").set_result((interaction.filesize_limit, exc))


@app_commands.command(description="Answer only to the caller")
async def secret(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("for your eyes only", ephemeral=True)


clip = app_commands.Group(name="clip", description="Clip tools")


@clip.command(description="Typed options inside a subcommand")
async def trim(interaction: discord.Interaction, seconds: int, who: discord.Member) -> None:
    await interaction.response.send_message(f"trim {seconds}s for {who.display_name}")
    bot_of(interaction).outcome("trim").set_result((seconds, who))


class AnimateModal(discord.ui.Modal, title="Animate this image"):
    prompt: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
        label="Prompt", custom_id="prompt", style=discord.TextStyle.paragraph,
        min_length=3, max_length=200,
    )  # fmt: skip
    seconds: discord.ui.TextInput[AnimateModal] = discord.ui.TextInput(
        label="Seconds", custom_id="seconds", required=False, default="5", max_length=2
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"animating {self.prompt.value!r} for {self.seconds.value}s"
        )
        bot_of(interaction).outcome("animate submit").set_result(
            (self.custom_id, self.prompt.value, self.seconds.value, interaction)
        )


async def animate(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_modal(AnimateModal(custom_id=f"animate:{message.id}"))
    bot_of(interaction).outcome("animate").set_result((message, interaction))


async def edit_video(interaction: discord.Interaction, message: discord.Message) -> None:
    videos = [
        a.filename for a in message.attachments if (a.content_type or "").startswith("video/")
    ]
    await interaction.response.send_message(f"editing {videos}")


class RenameModal(discord.ui.Modal, title="Rename"):
    name: discord.ui.Label[RenameModal] = discord.ui.Label(
        text="New name", component=discord.ui.TextInput(custom_id="name", max_length=20)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        text_input = self.name.component
        assert isinstance(text_input, discord.ui.TextInput)
        await interaction.response.edit_message(content=f"renamed to {text_input.value}")
        message_id = None if interaction.message is None else interaction.message.id
        bot_of(interaction).outcome("rename").set_result((text_input.value, message_id))


class RenameView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Rename", custom_id="sandbox:rename")
    async def open(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.send_modal(RenameModal(custom_id="rename"))


@app_commands.command(description="Send a button that opens a modal")
async def rename(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("unnamed", view=RenameView())


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[DiscordSandbox]:
    options: dict[str, Any] = getattr(request, "param", {})
    async with DiscordSandbox(bot_token=TOKEN, **options) as instance:
        yield instance


@pytest.fixture
async def bot(sandbox: DiscordSandbox) -> AsyncIterator[SandboxBot]:
    with point_discord_at(sandbox):
        client = SandboxBot()
        await client.login(TOKEN)
        runner = asyncio.create_task(client.connect())
        try:
            await asyncio.wait_for(client.wait_until_ready(), 10)
            await client.tree.sync()
            yield client
        finally:
            await client.close()
            await runner


@pytest.fixture
def alice(sandbox: DiscordSandbox) -> Member:
    return sandbox.add_member(sandbox.guild, "alice")


async def outcome(bot: SandboxBot, name: str) -> Any:
    """What the bot's handler reported, within 10 s."""
    async with asyncio.timeout(10):
        return await bot.outcome(name)


def original(sandbox: DiscordSandbox, interaction_id: int) -> Message:
    message = sandbox.interactions[interaction_id].original_message
    assert message is not None
    return message


# -- tests -------------------------------------------------------------------------------------


async def test_slash_command_answer_and_multipart_edit(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    assert {c["name"] for c in sandbox.commands} >= {"ping", "inspect", "pick", "menu"}

    interaction = await sandbox.slash_command("ping", {"text": "hello"}, member=alice)
    edited, filesize_limit = await outcome(bot, "ping")

    message = original(sandbox, interaction.id)
    assert interaction.responded == 4 and not interaction.ephemeral
    assert interaction.response_time is not None and interaction.response_time < 3.0
    assert message.content == "pong: hello (edited)" and message.edit_count == 1
    assert message.author.id == sandbox.bot_user.id and message.type == 20
    assert message.interaction_metadata is not None
    assert message.interaction_metadata["user"]["id"] == str(alice.id)
    [attachment] = message.attachments
    assert (attachment.filename, attachment.size) == ("result.txt", len(RESULT_BYTES))
    assert attachment.data == RESULT_BYTES and attachment.content_type == "text/plain"
    # discord.py saw the same message, and the guild agrees with the interaction's upload limit.
    assert edited.id == message.id and edited.attachments[0].size == len(RESULT_BYTES)
    assert filesize_limit == sandbox.attachment_size_limit == bot.guilds[0].filesize_limit

    edit = await sandbox.wait_for_request(lambda r: r.method == "PATCH")
    assert edit.route == "PATCH /webhooks/{app}/{token}/messages/{message}"
    assert [(f.field, f.filename, f.size) for f in edit.files] == [
        ("files[0]", "result.txt", len(RESULT_BYTES))
    ]
    assert edit.json["attachments"] == [{"id": 0, "filename": "result.txt"}]
    assert edit.interaction_id == interaction.id and edit.status == 200
    callback = await sandbox.wait_for_request(lambda r: r.route.endswith("/callback"))
    assert callback.query == {"with_response": "1"} and callback.status == 200
    # Tokens never show up in what tests print.
    assert interaction.token not in repr(sandbox.requests) + repr(interaction)


async def test_attachment_option_round_trips_its_bytes(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    clip = os.urandom(48_000)
    await sandbox.slash_command(
        "inspect", member=alice, attachments={"file": ("clip.mp4", clip, "video/mp4")}
    )
    file, data = await outcome(bot, "inspect")

    assert data == clip
    assert (file.filename, file.size, file.content_type) == ("clip.mp4", len(clip), "video/mp4")
    download = await sandbox.wait_for_request(lambda r: r.path.startswith("/attachments/"))
    assert download.status == 200


async def test_autocomplete_returns_the_bots_choices(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    choices = await sandbox.autocomplete("pick", {"flavour": "ch"}, "flavour", member=alice)

    assert choices == [
        {"name": "cherry", "value": "cherry"},
        {"name": "chocolate", "value": "chocolate"},
    ]


async def test_button_click_reaches_the_handler(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    bob = sandbox.add_member(sandbox.guild, "bob")
    command = await sandbox.slash_command("menu", member=alice)
    await sandbox.wait_for(lambda: command.original_message is not None)
    message = original(sandbox, command.id)
    assert message.custom_ids() == ["sandbox:ok"]

    click = await sandbox.click_button(message, "sandbox:ok", member=bob)

    assert await outcome(bot, "click") == "bob"
    assert click.responded == 7
    assert message.content == "clicked by bob" and message.components == []


async def test_429_on_the_edit_is_waited_out(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    sandbox.fail_next("PATCH", "/webhooks/*", 429, retry_after=0.3)

    interaction = await sandbox.slash_command("ping", {"text": "again"}, member=alice)
    await outcome(bot, "ping")

    edits = [r for r in sandbox.requests if r.method == "PATCH"]
    assert [r.status for r in edits] == [429, 200]
    assert edits[1].time - edits[0].time >= 0.3
    assert original(sandbox, interaction.id).content == "pong: again (edited)"


async def test_late_first_response_is_an_unknown_interaction(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    sandbox.first_response_deadline = 0.2
    bot.slow_delay = 0.4

    interaction = await sandbox.slash_command("slow", member=alice)
    error = await outcome(bot, "slow")

    assert isinstance(error, discord.NotFound)
    assert (error.status, error.code) == (404, 10062)
    assert interaction.responded is None and interaction.original_message is None


async def test_expired_token_leaves_the_channel_route(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    interaction = await sandbox.slash_command("late", member=alice)
    await sandbox.wait_for(lambda: interaction.original_message is not None)
    sandbox.expire_interaction(interaction)
    bot.release.set()

    error, edited = await outcome(bot, "late")

    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (401, 50027)
    assert edited.content == "finished via channel"
    assert original(sandbox, interaction.id).content == "finished via channel"
    statuses = {r.route: r.status for r in sandbox.requests if r.method == "PATCH"}
    assert statuses == {
        "PATCH /webhooks/{app}/{token}/messages/{message}": 401,
        "PATCH /channels/{channel}/messages/{message}": 200,
    }


@pytest.mark.parametrize("sandbox", [{"attachment_size_limit": 64 * 1024}], indirect=True)
async def test_upload_over_the_limit_is_413(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    interaction = await sandbox.slash_command("big", member=alice)
    limit, error = await outcome(bot, "big")

    assert limit == 64 * 1024
    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (413, 40005)
    # Nothing changed: the deferred answer is still "thinking", with no attachment.
    message = original(sandbox, interaction.id)
    assert message.loading and message.attachments == [] and interaction.followups == []


async def test_gateway_resume_replays_missed_events(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    await sandbox.disconnect_gateway(resumable=True)
    # Sent while the bot is away: kept in the session and replayed on RESUME.
    await sandbox.slash_command("ping", {"text": "while away"}, member=alice)

    await asyncio.wait_for(bot.resumed.wait(), 10)
    edited, _ = await outcome(bot, "ping")
    assert edited.content == "pong: while away (edited)"
    assert (sandbox.gateway.identifies, sandbox.gateway.resumes) == (1, 1)

    bot.outcomes.pop("ping")
    await sandbox.slash_command("ping", {"text": "after"}, member=alice)
    edited, _ = await outcome(bot, "ping")
    assert edited.content == "pong: after (edited)"


async def test_non_resumable_disconnect_identifies_again(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    await sandbox.disconnect_gateway(resumable=False)
    await sandbox.wait_for(lambda: sandbox.gateway.identifies == 2 and sandbox.connected.is_set())
    await asyncio.wait_for(bot.wait_until_ready(), 10)

    await sandbox.slash_command("ping", {"text": "fresh"}, member=alice)
    edited, _ = await outcome(bot, "ping")
    assert edited.content == "pong: fresh (edited)"
    assert sandbox.gateway.resumes == 0


async def test_a_refusing_gateway_keeps_the_bot_away_until_it_is_back(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    sandbox.refuse_gateway()
    await sandbox.disconnect_gateway(resumable=True)
    await sandbox.wait_for(lambda: sandbox.gateway.refused >= 1)
    assert not sandbox.connected.is_set()

    sandbox.refuse_gateway(False)
    await sandbox.wait_for(lambda: sandbox.connected.is_set(), timeout=30)
    await sandbox.slash_command("ping", {"text": "back"}, member=alice)
    edited, _ = await outcome(bot, "ping")
    assert edited.content == "pong: back (edited)"


async def test_subcommand_options_are_typed_from_the_schema(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    bob = sandbox.add_member(sandbox.guild, "bob")
    await sandbox.slash_command(
        "clip", {"seconds": "12", "who": bob}, member=alice, subcommand=["trim"]
    )

    seconds, who = await outcome(bot, "trim")
    assert seconds == 12 and isinstance(who, discord.Member) and who.id == bob.id
    with pytest.raises(ValueError, match="required"):
        await sandbox.slash_command("clip", {"seconds": 1}, member=alice, subcommand=["trim"])


async def test_server_errors_are_retried_by_discord_py(
    sandbox: DiscordSandbox, bot: SandboxBot
) -> None:
    sandbox.fail_next("POST", "/channels/*/messages", 502)
    channel = bot.get_channel(sandbox.channel.id)
    assert isinstance(channel, discord.TextChannel)

    sent = await channel.send("hello from the bot")

    posts = [r for r in sandbox.requests if r.route == "POST /channels/{channel}/messages"]
    assert [r.status for r in posts] == [502, 200]
    assert sandbox.messages[sent.id].content == "hello from the bot"


async def test_gateway_handshake_rules(sandbox: DiscordSandbox) -> None:
    url = sandbox.gateway_url + "?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 1, "d": None})
        assert await ws.receive_json() == {"op": 11}
        await ws.send_json({"op": 3, "d": {"status": "online"}})  # ignored
        await ws.send_json({"op": 6, "d": {"token": TOKEN, "session_id": "x", "seq": 1}})
        assert await ws.receive_json() == {"op": 9, "d": False}
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0}})
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4004
    assert not sandbox.connected.is_set()


async def test_rest_rules_seen_over_plain_http(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    secret_call = await sandbox.slash_command("secret", member=alice)
    await sandbox.wait_for(lambda: secret_call.original_message is not None)
    hidden = original(sandbox, secret_call.id)
    assert hidden.ephemeral and secret_call.ephemeral
    posted = sandbox.user_message(alice, "hi bot")
    base, auth = sandbox.api_base, {"Authorization": f"Bot {TOKEN}"}
    callback = f"{base}/interactions/{secret_call.id}/{secret_call.token}/callback"
    webhook = f"{base}/webhooks/{sandbox.application_id}/{secret_call.token}/messages/@original"
    channel_messages = f"{base}/channels/{sandbox.channel.id}/messages"

    async with aiohttp.ClientSession() as http:

        async def call(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
            async with http.request(method, url, **kwargs) as response:
                assert response.headers["Content-Type"] == "application/json"
                return response.status, await response.json()

        assert await call("GET", f"{base}/users/@me", headers={"Authorization": "Bot nope"}) == (
            401,
            {"message": "401: Unauthorized", "code": 0},
        )
        status, body = await call("GET", f"{base}/no/such/route", headers=auth)
        assert (status, body["code"]) == (404, 0)
        status, body = await call("POST", callback, json={"type": 4, "data": {"content": "x"}})
        assert (status, body["code"]) == (400, 40060)
        status, body = await call("PATCH", f"{channel_messages}/{hidden.id}", headers=auth, json={})
        assert (status, body["code"]) == (404, 10008)
        status, body = await call("PATCH", webhook, json={"content": "still mine"})
        assert (status, body["content"]) == (200, "still mine")
        status, body = await call(
            "PATCH", f"{channel_messages}/{posted.id}", headers=auth, json={"content": "hijack"}
        )
        assert (status, body["code"]) == (403, 50005)
        status, _ = await call("GET", f"{base}/gateway/bot", headers=auth)
        assert status == 200
        ok = [r for r in sandbox.requests if r.route == "GET /gateway/bot" and r.status == 200]
        assert ok  # success answers carry rate-limit headers too:
        async with http.get(f"{base}/gateway/bot", headers=auth) as response:
            assert int(response.headers["X-RateLimit-Remaining"]) >= 0
            assert "X-RateLimit-Bucket" in response.headers


# -- outages -----------------------------------------------------------------------------------


@pytest.fixture
async def listener(sandbox: DiscordSandbox) -> AsyncIterator[None]:
    """A bare gateway session instead of a bot: interactions reach it and nobody answers them,
    so the test answers over plain HTTP itself."""
    url = sandbox.gateway_url + "?v=10&encoding=json"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": TOKEN, "intents": 0, "properties": {}}})
        await sandbox.wait_until_ready()
        yield


class PlainHttp:
    """Raw REST calls with the bot token; every answer must be JSON as discord.py needs it."""

    def __init__(self, http: aiohttp.ClientSession, sandbox: DiscordSandbox) -> None:
        self.http = http
        self.base = sandbox.api_base
        self.auth = {"Authorization": f"Bot {TOKEN}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, headers=self.auth, **kwargs
        ) as response:
            if response.status == 204:
                return response.status, None
            assert response.headers["Content-Type"] == "application/json"
            return response.status, await response.json()


@pytest.fixture
async def plain(sandbox: DiscordSandbox) -> AsyncIterator[PlainHttp]:
    async with aiohttp.ClientSession() as http:
        yield PlainHttp(http, sandbox)


OUTAGE_BODY = {"message": "503: Service Unavailable", "code": 0}


async def test_outage_refuses_writes_without_effect_until_it_ends(
    sandbox: DiscordSandbox, listener: None, plain: PlainHttp, alice: Member
) -> None:
    sandbox.first_response_deadline = 60.0  # this test answers by hand, after the outage
    messages = f"/channels/{sandbox.channel.id}/messages"
    status, posted = await plain.call("POST", messages, json={"content": "before"})
    assert status == 200
    message = sandbox.messages[int(posted["id"])]
    command = {"name": "wave", "description": "Wave", "type": 1}
    status, _ = await plain.call(
        "PUT", f"/applications/{sandbox.application_id}/commands", json=[command]
    )
    assert status == 200
    interaction = await sandbox.slash_command("wave", member=alice)
    callback = f"/interactions/{interaction.id}/{interaction.token}/callback"
    answer = {"type": 4, "data": {"content": "after the outage"}}
    calls_before = len(sandbox.requests)

    sandbox.start_outage()
    assert sandbox.in_outage
    edit = await plain.call("PATCH", f"{messages}/{message.id}", json={"content": "during"})
    callback_answer = await plain.call("POST", callback, json=answer)
    unknown = await plain.call("GET", "/no/such/route")

    assert edit == callback_answer == unknown == (503, OUTAGE_BODY)
    assert (message.content, message.edit_count) == ("before", 0)
    assert interaction.responded is None and interaction.original_message is None
    refused = sandbox.requests[calls_before:]
    assert [(r.route, r.status) for r in refused] == [
        ("PATCH /channels/{channel}/messages/{message}", 503),
        ("POST /interactions/{interaction}/{token}/callback", 503),
        ("GET /no/such/route", 503),
    ]
    assert refused[0].json == {"content": "during"}  # what the bot tried is still recorded
    assert sandbox.outage_refusals == 3
    assert sandbox.connected.is_set()  # the gateway stayed up

    sandbox.end_outage()
    assert not sandbox.in_outage
    status, edited = await plain.call("PATCH", f"{messages}/{message.id}", json={"content": "x"})
    assert (status, edited["content"], message.edit_count) == (200, "x", 1)
    status, _ = await plain.call("POST", callback, json=answer)
    assert status == 204 and interaction.responded == 4
    assert sandbox.outage_refusals == 3


async def test_outage_for_ends_by_itself(sandbox: DiscordSandbox, plain: PlainHttp) -> None:
    sandbox.outage_for(0.2, outage_status=502)
    assert sandbox.in_outage
    status, body = await plain.call("GET", "/users/@me")
    assert (status, body["message"]) == (502, "502: Bad Gateway")

    await sandbox.wait_for(lambda: not sandbox.in_outage, timeout=10)
    status, me = await plain.call("GET", "/users/@me")
    assert (status, me["id"]) == (200, str(sandbox.bot_user.id))


async def test_ending_an_outage_early_cancels_its_timer(sandbox: DiscordSandbox) -> None:
    sandbox.outage_for(0.05)
    sandbox.end_outage()
    assert not sandbox.in_outage
    sandbox.start_outage()  # open-ended: the old timer must not end this one
    await asyncio.sleep(0.2)
    assert sandbox.in_outage
    sandbox.end_outage()
    with pytest.raises(ValueError, match="5xx"):
        sandbox.start_outage(404)


async def test_timeout_outage_holds_requests_until_it_ends(
    sandbox: DiscordSandbox, plain: PlainHttp
) -> None:
    sandbox.start_outage("timeout", hold=60.0)
    held = asyncio.create_task(plain.call("GET", "/users/@me"))
    await sandbox.wait_for(lambda: sandbox.outage_refusals == 1)
    await asyncio.sleep(0.05)
    assert not held.done() and not sandbox.requests  # still open, recorded once answered

    sandbox.end_outage()
    status, body = await held
    assert (status, body["message"]) == (504, "504: Gateway Timeout")
    assert [r.status for r in sandbox.requests] == [504]

    sandbox.start_outage("timeout", hold=0.05)  # the hold runs out while the outage goes on
    status, _ = await plain.call("GET", "/users/@me")
    assert status == 504 and sandbox.in_outage


async def test_discord_py_through_an_outage(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    """discord.py retries 5xx on interaction webhooks, but a 503 on a bot-token route is
    raised at once (it retries only 500, 502, 504 and 524 there)."""
    sandbox.first_response_deadline = 60.0
    channel = bot.get_channel(sandbox.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sandbox.start_outage()

    with pytest.raises(discord.DiscordServerError) as raised:
        await channel.send("during the outage")
    assert raised.value.status == 503
    interaction = await sandbox.slash_command("secret", member=alice)
    await sandbox.wait_for_request(lambda r: r.route.endswith("/callback"))
    sandbox.end_outage()

    await sandbox.wait_for(lambda: interaction.responded == 4)
    callbacks = [r.status for r in sandbox.requests if r.route.endswith("/callback")]
    assert callbacks[0] == 503 and callbacks[-1] == 200
    assert not [m for m in sandbox.messages.values() if m.content == "during the outage"]


# -- message context menus, modals, members' files ---------------------------------------------


def png_bytes(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "purple").save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE_EMBED = {
    "type": "image",
    "url": "https://example.com/cat.png",
    "thumbnail": {"url": "https://example.com/cat.png", "width": 64, "height": 48},
}


async def test_message_context_menu_carries_the_whole_target_message(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    menus = {c["name"]: c for c in sandbox.commands if c["type"] == 3}
    assert set(menus) == {"Animate image", "Edit video"}
    assert menus["Animate image"]["description"] == ""  # what discord.py's sync parses
    png = png_bytes(32, 24)
    target = sandbox.post_message(
        alice,
        content="look",
        files=[("cat.png", png, "image/png"), ("clip.mp4", b"\0" * 2048, None)],
        embeds=[IMAGE_EMBED],
    )

    interaction = await sandbox.message_command("Animate image", target, member=alice)
    seen, bot_interaction = await outcome(bot, "animate")

    assert interaction.type == 2 and interaction.data["type"] == 3
    assert interaction.data["target_id"] == str(target.id)
    assert set(interaction.data["resolved"]["messages"]) == {str(target.id)}
    # discord.py built the Message from data.resolved, as it does for Discord's.
    assert isinstance(seen, discord.Message) and seen.id == target.id
    assert seen.content == "look" and seen.author.id == alice.id
    image, video = seen.attachments
    assert (image.content_type, image.size, image.width, image.height) == (
        "image/png",
        len(png),
        32,
        24,
    )
    assert (video.content_type, video.size, video.width, video.duration) == (
        "video/mp4",
        2048,
        None,
        None,
    )
    assert "?ex=" in video.url and "&hm=" in video.url
    assert await video.read() == b"\0" * 2048  # the signed url works on the CDN
    assert seen.embeds[0].type == "image" and seen.embeds[0].thumbnail.width == 64
    assert bot_interaction.command is not None and bot_interaction.command.name == "Animate image"
    assert bot_interaction.locale == discord.Locale.american_english
    assert bot_interaction.guild_id == sandbox.guild.id and bot_interaction.user.id == alice.id
    assert bot_interaction.app_permissions.send_messages
    # The bot answered with its modal; the stand-in keeps it as sent.
    await sandbox.wait_for(lambda: interaction.responded == 9)
    assert interaction.modal is not None
    assert interaction.modal["custom_id"] == f"animate:{target.id}"
    assert interaction.original_message is None


async def test_context_menu_answer_is_a_context_menu_message(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    target = sandbox.post_message(alice, files=[("take.mp4", b"\1" * 100, "video/mp4")])

    interaction = await sandbox.message_command("Edit video", target, member=alice)

    await sandbox.wait_for(lambda: interaction.original_message is not None)
    answer = original(sandbox, interaction.id)
    assert answer.content == "editing ['take.mp4']" and answer.type == 23
    assert answer.interaction_metadata is not None
    assert answer.interaction_metadata["target_message_id"] == str(target.id)
    assert answer.interaction_metadata["command_type"] == 3


async def test_unknown_or_unusable_context_menus_are_refused(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    target = sandbox.user_message(alice, "hello")
    with pytest.raises(ValueError, match="not registered"):
        await sandbox.message_command("Animate Image", target, member=alice)  # wrong case
    with pytest.raises(ValueError, match="not registered"):
        await sandbox.message_command("ping", target, member=alice)  # a slash command
    with pytest.raises(ValueError, match="not registered"):
        await sandbox.slash_command("Edit video", member=alice)  # a context menu
    other_guild = sandbox.add_guild("Elsewhere")
    stranger = sandbox.add_member(other_guild, "stranger")
    with pytest.raises(ValueError, match="not in the guild"):
        await sandbox.message_command("Edit video", target, member=stranger)
    sandbox.delete_message(target)
    with pytest.raises(ValueError, match="deleted"):
        await sandbox.message_command("Edit video", target, member=alice)
    assert not sandbox.interactions


async def test_modal_submission_reaches_the_modal_by_its_custom_id(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    target = sandbox.post_message(alice, files=[("cat.png", png_bytes(8, 8), "image/png")])
    opened = await sandbox.message_command("Animate image", target, member=alice)
    await sandbox.wait_for(lambda: opened.modal is not None)

    submission = await sandbox.submit_modal(opened, {"prompt": "make it dance"})
    custom_id, prompt, seconds, bot_interaction = await outcome(bot, "animate submit")

    assert (custom_id, prompt, seconds) == (f"animate:{target.id}", "make it dance", "5")
    assert submission.type == 5 and submission.modal_source is opened
    assert submission.data == {
        "custom_id": f"animate:{target.id}",
        "components": [
            {
                "type": 1,
                "id": 1,
                "components": [
                    {"type": 4, "id": 2, "custom_id": "prompt", "value": "make it dance"}
                ],
            },
            {
                "type": 1,
                "id": 3,
                "components": [{"type": 4, "id": 4, "custom_id": "seconds", "value": "5"}],
            },
        ],
    }
    assert bot_interaction.type is discord.InteractionType.modal_submit
    assert bot_interaction.message is None  # opened from a command, not from a message
    await sandbox.wait_for(lambda: submission.original_message is not None)
    answer = original(sandbox, submission.id)
    assert answer.content == "animating 'make it dance' for 5s" and answer.type == 0
    assert answer.interaction_metadata is not None
    trigger = answer.interaction_metadata["triggering_interaction_metadata"]
    assert trigger["id"] == str(opened.id) and trigger["name"] == "Animate image"


async def test_a_modal_opened_from_a_button_can_update_its_message(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    command = await sandbox.slash_command("rename", member=alice)
    await sandbox.wait_for(lambda: command.original_message is not None)
    message = original(sandbox, command.id)
    click = await sandbox.click_button(message, "sandbox:rename", member=alice)
    await sandbox.wait_for(lambda: click.modal is not None)
    assert click.modal is not None and click.modal["components"][0]["type"] == 18  # ui.Label

    submission = await sandbox.submit_modal(click, {"name": "Ada"}, member=alice)

    assert await outcome(bot, "rename") == ("Ada", message.id)
    assert submission.message is message and submission.responded == 7
    assert message.content == "renamed to Ada" and message.edit_count == 1
    assert submission.data["components"] == [
        {
            "type": 18,
            "id": 1,
            "component": {"type": 4, "id": 2, "custom_id": "name", "value": "Ada"},
        }
    ]


async def test_submissions_a_client_would_not_send_are_refused(
    sandbox: DiscordSandbox, bot: SandboxBot, alice: Member
) -> None:
    target = sandbox.user_message(alice, "hello")
    opened = await sandbox.message_command("Animate image", target, member=alice)
    await sandbox.wait_for(lambda: opened.modal is not None)
    bob = sandbox.add_member(sandbox.guild, "bob")
    refusals = [
        ({"prompt": "fine", "style": "x"}, alice, "no inputs \\['style'\\]"),
        ({}, alice, "'prompt' is required"),
        ({"prompt": ""}, alice, "'prompt' is required"),
        ({"prompt": "ab"}, alice, "3 to 200 characters, not 2"),
        ({"prompt": "x" * 201}, alice, "3 to 200 characters, not 201"),
        ({"prompt": "fine", "seconds": "120"}, alice, "0 to 2 characters, not 3"),
        ({"prompt": "fine"}, bob, "only alice"),
    ]
    for values, member, message in refusals:
        with pytest.raises(ValueError, match=message):
            await sandbox.submit_modal(opened, values, member=member)
    assert len(sandbox.interactions) == 1  # nothing was sent

    optional_cleared = await sandbox.submit_modal(opened, {"prompt": "fine", "seconds": ""})
    assert optional_cleared.data["components"][1]["components"][0]["value"] == ""
    with pytest.raises(ValueError, match="already submitted"):
        await sandbox.submit_modal(opened, {"prompt": "again"})
    ping = await sandbox.slash_command("ping", {"text": "x"}, member=alice)
    with pytest.raises(ValueError, match="not answered with a modal"):
        await sandbox.submit_modal(ping, {})


# Modal response checks, over plain HTTP: a bare gateway session receives the interactions
# and the test answers them as a bot would.

GOOD_INPUT = {"type": 4, "custom_id": "prompt", "style": 2, "label": "Prompt", "required": True}


def modal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "custom_id": "m",
        "title": "Animate",
        "components": [{"type": 1, "components": [dict(GOOD_INPUT)]}],
    }
    data.update(changes)
    return data


def row(**changes: Any) -> dict[str, Any]:
    return {"type": 1, "components": [{**GOOD_INPUT, **changes}]}


BAD_MODALS = [
    (modal(custom_id=""), "custom_id", "BASE_TYPE_REQUIRED"),
    (modal(custom_id="x" * 101), "custom_id", "BASE_TYPE_MAX_LENGTH"),
    (modal(title=None), "title", "BASE_TYPE_REQUIRED"),
    (modal(title="t" * 46), "title", "BASE_TYPE_MAX_LENGTH"),
    (modal(components=[]), "components", "BASE_TYPE_REQUIRED"),
    (modal(components=[row(custom_id=f"i{n}") for n in range(6)]), "components", "MAX_LENGTH"),
    (modal(components=[{"type": 1, "components": [GOOD_INPUT, GOOD_INPUT]}]), "0", "BAD_LENGTH"),
    (modal(components=[{"type": 2, "custom_id": "b", "style": 1}]), "0", "UNION_TYPE_CHOICES"),
    (modal(components=[row(style=3)]), "style", "BASE_TYPE_CHOICES"),
    (modal(components=[row(custom_id="")]), "custom_id", "BASE_TYPE_REQUIRED"),
    (modal(components=[row(label=None)]), "label", "BASE_TYPE_REQUIRED"),
    (modal(components=[row(label="l" * 46)]), "label", "BASE_TYPE_MAX_LENGTH"),
    (modal(components=[row(placeholder="p" * 101)]), "placeholder", "BASE_TYPE_MAX_LENGTH"),
    (modal(components=[row(value="v" * 4001)]), "value", "BASE_TYPE_MAX_LENGTH"),
    (modal(components=[row(max_length=4001)]), "max_length", "NUMBER_TYPE_MAX"),
    (modal(components=[row(max_length=0)]), "max_length", "NUMBER_TYPE_MIN"),
    (modal(components=[row(min_length=10, max_length=5)]), "min_length", "BASE_TYPE_BAD_INT"),
    (modal(components=[row(), row()]), "1", "COMPONENT_CUSTOM_ID_DUPLICATED"),
    (
        modal(components=[{"type": 18, "label": "L" * 46, "component": GOOD_INPUT}]),
        "label",
        "BASE_TYPE_MAX_LENGTH",
    ),
]


def flatten_errors(tree: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    found = []
    for key, value in tree.items():
        if key == "_errors":
            found += [(path, error["code"]) for error in value]
        else:
            found += flatten_errors(value, f"{path}.{key}" if path else key)
    return found


async def register(plain: PlainHttp, sandbox: DiscordSandbox, commands: list[Any]) -> Any:
    return await plain.call(
        "PUT", f"/applications/{sandbox.application_id}/commands", json=commands
    )


@pytest.fixture
async def menus(sandbox: DiscordSandbox, listener: None, plain: PlainHttp) -> None:
    status, _ = await register(
        plain,
        sandbox,
        [
            {"name": "wave", "description": "Wave", "type": 1},
            {"name": "Animate image", "type": 3},
        ],
    )
    assert status == 200


async def test_bad_modals_are_refused_like_discord(
    sandbox: DiscordSandbox, menus: None, plain: PlainHttp, alice: Member
) -> None:
    target = sandbox.user_message(alice, "hello")
    for data, field, code in BAD_MODALS:
        interaction = await sandbox.message_command("Animate image", target, member=alice)
        callback = f"/interactions/{interaction.id}/{interaction.token}/callback"
        status, body = await plain.call("POST", callback, json={"type": 9, "data": data})
        assert (status, body["code"]) == (400, 50035), data
        [(path, error)] = flatten_errors(body["errors"])
        assert path.startswith("data.") and field in path and code in error, (data, path, error)
        assert interaction.responded is None and interaction.modal is None
    interaction = await sandbox.message_command("Animate image", target, member=alice)
    callback = f"/interactions/{interaction.id}/{interaction.token}/callback"
    labelled = {"type": 18, "label": "Prompt", "component": {**GOOD_INPUT, "label": None}}
    good = modal(components=[row(value="v" * 4000, max_length=4000), {**labelled, "id": 7}])
    good["components"][1]["component"]["custom_id"] = "second"
    assert await plain.call("POST", callback, json={"type": 9, "data": good}) == (204, None)
    assert interaction.responded == 9 and interaction.modal == good


async def test_a_modal_must_be_the_first_response(
    sandbox: DiscordSandbox, menus: None, plain: PlainHttp, alice: Member
) -> None:
    deferred = await sandbox.slash_command("wave", member=alice)
    callback = f"/interactions/{deferred.id}/{deferred.token}/callback"
    assert (await plain.call("POST", callback, json={"type": 5}))[0] == 204
    status, body = await plain.call("POST", callback, json={"type": 9, "data": modal()})
    assert (status, body["code"]) == (400, 40060)
    assert deferred.modal is None

    opened = await sandbox.slash_command("wave", member=alice)
    callback = f"/interactions/{opened.id}/{opened.token}/callback"
    assert (await plain.call("POST", callback, json={"type": 9, "data": modal()}))[0] == 204
    submission = await sandbox.submit_modal(opened, {"prompt": "hi"})
    callback = f"/interactions/{submission.id}/{submission.token}/callback"
    status, body = await plain.call("POST", callback, json={"type": 9, "data": modal()})
    assert (status, body["code"]) == (400, 50035)  # no modal in answer to a modal
    assert flatten_errors(body["errors"]) == [("type", "INTERACTION_RESPONSE_TYPE_INVALID")]


async def test_answers_to_a_submission_from_a_command(
    sandbox: DiscordSandbox, menus: None, plain: PlainHttp, alice: Member
) -> None:
    """Without a message, an update is refused and a deferred update just closes the modal;
    the submission's own token then takes followups."""
    opened = await sandbox.slash_command("wave", member=alice)
    callback = f"/interactions/{opened.id}/{opened.token}/callback"
    assert (await plain.call("POST", callback, json={"type": 9, "data": modal()}))[0] == 204
    submission = await sandbox.submit_modal(opened, {"prompt": "hi"})
    assert submission.message is None and submission.channel is opened.channel
    callback = f"/interactions/{submission.id}/{submission.token}/callback"

    update = {"type": 7, "data": {"content": "x"}}
    status, body = await plain.call("POST", callback, json=update)
    assert (status, body["code"]) == (400, 50035)
    assert (await plain.call("POST", callback, json={"type": 6}))[0] == 204
    assert submission.responded == 6 and submission.original_message is None
    webhook = f"/webhooks/{sandbox.application_id}/{submission.token}"
    status, body = await plain.call("GET", f"{webhook}/messages/@original")
    assert (status, body["code"]) == (404, 10008)
    status, sent = await plain.call("POST", webhook + "?wait=true", json={"content": "queued"})
    assert status == 200 and sent["content"] == "queued"
    assert sent["interaction_metadata"]["type"] == 5


async def test_command_registry_checks_names_and_limits(
    sandbox: DiscordSandbox, menus: None, plain: PlainHttp
) -> None:
    status, body = await register(plain, sandbox, [{"name": "Wave", "description": "d"}])
    assert (status, flatten_errors(body["errors"])) == (
        400,
        [("0.name", "APPLICATION_COMMAND_INVALID_NAME")],
    )
    six = [{"name": f"Menu {n}", "type": 3} for n in range(6)]
    status, body = await register(plain, sandbox, six)
    assert (status, body["code"]) == (400, 30032)
    status, body = await register(plain, sandbox, [{"name": "x", "type": 4}])
    assert status == 400
    # Refusals change nothing; a slash command and a message menu may share a name.
    assert {(c["name"], c["type"]) for c in sandbox.commands} == {
        ("wave", 1),
        ("Animate image", 3),
    }
    status, body = await register(
        plain, sandbox, [{"name": "same", "description": "d"}, {"name": "same", "type": 3}]
    )
    assert status == 200 and [c["description"] for c in body] == ["d", ""]


async def test_command_registry_checks_localized_names_and_descriptions(
    sandbox: DiscordSandbox, plain: PlainHttp
) -> None:
    def command(**changes: object) -> dict[str, object]:
        option = {"type": 3, "name": "prompt", "description": "d"}
        option.update(changes.pop("option", {}))  # type: ignore[call-overload]
        return {"name": "video", "description": "d", "options": [option], **changes}

    refused = [
        (command(name_localizations={"de": "Video"}), "0.name_localizations.de"),
        (command(description_localizations={"fr": "x" * 101}), "0.description_localizations.fr"),
        (
            command(option={"name_localizations": {"ja": "二 語"}}),
            "0.options.0.name_localizations.ja",
        ),
    ]
    for payload, where in refused:
        status, body = await register(plain, sandbox, [payload])
        assert status == 400 and [path for path, _ in flatten_errors(body["errors"])] == [where]
    localized = command(
        name_localizations={"ja": "動画", "fr": "vidéo"},
        option={"name_localizations": {"de": "beschreibung"}},
    )
    status, body = await register(plain, sandbox, [localized])
    assert status == 200 and body[0]["name_localizations"] == {"ja": "動画", "fr": "vidéo"}


async def test_members_files_on_the_cdn(
    sandbox: DiscordSandbox, plain: PlainHttp, alice: Member
) -> None:
    png = png_bytes(20, 10)
    posted = sandbox.post_message(
        alice,
        files=[("cat.png", png, None), ("clip.mp4", b"\0" * 300, "application/octet-stream")],
    )
    voice = sandbox.post_voice_message(alice, b"OggS" + b"\0" * 60, duration_secs=2.5)

    status, body = await plain.call("GET", f"/channels/{sandbox.channel.id}/messages/{posted.id}")
    # A bot without the Message Content intent gets another member's message without its
    # files (as Discord sends it); the payload itself, as an interaction resolves it, has them.
    assert status == 200 and body["attachments"] == [] and body["content"] == ""
    image, video = message_payload(posted)["attachments"]
    assert (image["content_type"], image["size"], image["width"], image["height"]) == (
        "image/png",
        len(png),
        20,
        10,
    )
    assert (video["content_type"], video["size"]) == ("video/mp4", 300)
    assert "width" not in video and "duration_secs" not in video and "duration_secs" not in image
    async with aiohttp.ClientSession() as http, http.get(video["url"]) as response:
        assert response.status == 200 and await response.read() == b"\0" * 300
    body = message_payload(voice)
    [clip] = body["attachments"]
    assert body["flags"] & 8192 and clip["content_type"] == "audio/ogg"
    assert clip["duration_secs"] == 2.5 and isinstance(clip["waveform"], str)
