"""/videoadmin safety end to end: the real bot against both stand-ins. Blocked words, the
age-restricted rule and prompt screening (the stand-in's Llama Guard), each refusal private and
in the audit log."""

from __future__ import annotations

from sandbox.harness import Stack
from tests.e2e.conftest import StackFactory
from tests.e2e.test_creative_loops import delivered, modal_for
from tests.e2e.test_keyframes_flow import png, refused
from tests.e2e.test_quotas_flow import EPHEMERAL, admin, moderator, private_reply
from tests.e2e.test_video_flow import answered


async def accepted(stack: Stack, prompt: str, **options: object) -> None:
    message = await answered(stack, await stack.video(prompt=prompt, **options))
    # A deferred answer ("thinking", while the prompt is screened) gets its embed next.
    await stack.discord.wait_for(lambda: bool(message.embeds) or message.flags & EPHEMERAL)
    assert not message.flags & EPHEMERAL, message.content
    assert message.embeds and message.embeds[0]["description"] == prompt


async def test_blocked_words_are_refused_privately_whatever_their_disguise(stack: Stack) -> None:
    mod = moderator(stack)
    await admin(stack, mod, ("quota",), user_concurrent=10)
    shown = await admin(stack, mod, ("safety",))
    assert (
        shown.startswith("Nothing given to change") and "Age-restricted channels only: off" in shown
    )
    text = await admin(stack, mod, ("safety",), block="  Ass ")
    assert "`ass` is now blocked." in text and "Blocked words and phrases: 1 of 80" in text
    await admin(stack, mod, ("safety",), block="Red   Panda")

    for prompt in (
        "an ass in a field",
        "an ÁSS in a field",
        "an a\u200bs\u00ads",
        "a red\u2060 PANDA",
    ):
        reply = await private_reply(stack, await stack.video(prompt=prompt))
        assert "words this server does not allow" in reply
        assert "ass" not in reply.lower().split() and "panda" not in reply.lower()
    negative = await stack.video(prompt="a donkey", negative_prompt="no ass please")
    assert "does not allow" in await private_reply(stack, negative)
    assert stack.together.posts() == []

    await accepted(stack, "a classy class of bass players")
    await accepted(stack, "a red pandas' den")  # another word
    audit = await admin(stack, mod, ("audit",))
    assert audit.count(f"<@{stack.member.id}> refused: blocked word: ass") == 4
    assert f"<@{stack.member.id}> refused: blocked word: red panda" in audit
    assert f"<@{mod.id}> blocked_word_add: ass" in audit

    text = await admin(stack, mod, ("safety",), unblock="ASS")
    assert "`ass` is no longer blocked." in text
    await accepted(stack, "an ass in a field")


async def test_a_bad_entry_changes_nothing(stack: Stack) -> None:
    mod = moderator(stack)
    text = await admin(stack, mod, ("safety",), block="\u200b!!", age_restricted_only=True)
    assert text.startswith("`block`: ")
    rules = await stack.bot.server_settings.rules(stack.discord.guild.id)
    assert not rules.safety.age_restricted_only and rules.safety.blocked_words == ()


async def test_age_restricted_only(stack: Stack) -> None:
    mod = moderator(stack)
    guild = stack.discord.guild
    after = stack.discord.add_channel(guild, "after-dark", nsfw=True)
    text = await admin(stack, mod, ("safety",), age_restricted_only=True)
    assert "Age-restricted channels only: on" in text

    reply = await private_reply(stack, await stack.video(prompt="a cat"))
    assert reply == "On this server, videos can only be made in age-restricted channels."
    picture = stack.discord.post_message(
        stack.member, files=[("cat.png", png(640, 360), "image/png")]
    )
    menu = await stack.discord.message_command("Animate image", picture, member=stack.member)
    assert "age-restricted" in await private_reply(stack, menu)
    assert menu.modal is None

    inside = await stack.discord.slash_command(
        "video", {"prompt": "a cat at night"}, member=stack.member, channel=after
    )
    message = await answered(stack, inside)
    assert not message.flags & EPHEMERAL
    # Threads follow their parent channel.
    dark_thread = stack.discord.add_thread(after, "night shots", stack.member)
    plain_thread = stack.discord.add_thread(guild.channels[0], "day shots", stack.member)
    reply = await private_reply(
        stack,
        await stack.discord.slash_command(
            "video", {"prompt": "x"}, member=stack.member, channel=plain_thread
        ),
    )
    assert "age-restricted" in reply
    in_thread = await stack.discord.slash_command(
        "video", {"prompt": "an owl at night"}, member=stack.member, channel=dark_thread
    )
    assert not (await answered(stack, in_thread)).flags & EPHEMERAL
    audit = await admin(stack, mod, ("audit",))
    assert audit.count(f"<@{stack.member.id}> refused: not an age-restricted channel") == 3


async def test_screening_refuses_flagged_prompts_naming_the_category(stack: Stack) -> None:
    mod = moderator(stack)
    made = await stack.video(prompt="a duel at dawn [unsafe:S1]")  # before screening is on
    first = await delivered(stack, made, 1)
    text = await admin(stack, mod, ("safety",), screening=True)
    assert "Prompt screening: on (model `meta-llama/Llama-Guard-4-12B`)" in text

    flagged = await stack.video(prompt="a brawl [unsafe:S1]")
    reply = await refused(stack, flagged)
    assert "S1 violent crimes" in reply
    # The public "thinking" answer that bought time is gone.
    assert flagged.original_message is not None and flagged.original_message.deleted
    await accepted(stack, "a quiet lake")
    screened = [r.body for r in stack.together.chat_requests()]
    assert [b["messages"][0]["content"] for b in screened] == [
        "a brawl [unsafe:S1]",
        "a quiet lake",
    ]
    assert all(r.auth_ok for r in stack.together.chat_requests())

    # Retry goes through the same screen.
    retry = await stack.discord.click_button(first, "video:retry:1", member=stack.member)
    assert "S1 violent crimes" in await refused(stack, retry)
    assert await stack.bot.jobs.get(3) is None, "the retry was never stored"
    audit = await admin(stack, mod, ("audit",))
    assert audit.count("refused: screen flagged: S1 violent crimes") == 2


async def test_an_unavailable_screen_refuses_or_lets_through_per_the_server(stack: Stack) -> None:
    mod = moderator(stack)
    await admin(stack, mod, ("safety",), screening=True)
    reply = await refused(stack, await stack.video(prompt="a lake [screen-down]"))
    assert "could not check your prompt" in reply
    assert stack.together.posts() == []

    text = await admin(stack, mod, ("safety",), if_screen_down="allow")
    assert "When the screen cannot answer: let it through" in text
    await accepted(stack, "a lake [screen-down]")
    audit = await admin(stack, mod, ("audit",))
    assert audit.count("refused: screen unavailable: server error (503)") == 1
    assert f"<@{mod.id}> safety: screen_unavailable=allow" in audit


async def test_screening_cannot_be_turned_on_without_a_model(make_stack: StackFactory) -> None:
    stack = await make_stack(safety_model="")
    mod = moderator(stack)
    text = await admin(stack, mod, ("safety",), screening=True)
    assert "SAFETY_MODEL" in text
    assert not (await stack.bot.server_settings.rules(stack.discord.guild.id)).safety.screening
    shown = await admin(stack, mod, ("safety",))
    assert "Prompt screening: switched off on this bot" in shown


async def test_retry_and_remix_answer_after_the_screen(stack: Stack) -> None:
    mod = moderator(stack)
    await admin(stack, mod, ("quota",), user_concurrent=10)
    first = await delivered(stack, await stack.video(prompt="a calm lake"), 1)
    await admin(stack, mod, ("safety",), screening=True)

    retry = await stack.discord.click_button(first, "video:retry:1", member=stack.member)
    await stack.discord.wait_for(
        lambda: retry.original_message is not None and bool(retry.original_message.embeds)
    )
    assert retry.responded == 5 and not retry.ephemeral  # deferred, then the job's message
    assert retry.original_message is not None
    assert retry.original_message.embeds[0]["description"] == "a calm lake"

    click = await modal_for(stack, first, "video:remix:1", stack.member)
    flagged = await stack.discord.submit_modal(click, {"prompt": "a lake [unsafe:S12]"})
    assert "S12 sexual content" in await refused(stack, flagged)
    click = await modal_for(stack, first, "video:remix:1", stack.member)
    remix = await stack.discord.submit_modal(click, {"prompt": "a lake at dusk"})
    await stack.discord.wait_for(
        lambda: remix.original_message is not None and bool(remix.original_message.embeds)
    )
    assert remix.original_message is not None and not remix.ephemeral
    assert remix.original_message.embeds[0]["description"] == "a lake at dusk"
    prompts = [r.body["messages"][0]["content"] for r in stack.together.chat_requests()]
    assert prompts == ["a calm lake", "a lake [unsafe:S12]", "a lake at dusk"]
