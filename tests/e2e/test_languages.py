"""Members' languages through the sandbox: the real bot answers and edits in the locale of
the member's client (the interaction's `locale`), and syncs its commands localized."""

from __future__ import annotations

from typing import Any

from bot.i18n import catalog
from sandbox.discord_api import Member, Message
from sandbox.discord_api.models import Interaction
from sandbox.harness import Stack
from sandbox.together import JobScript
from storage.models import JobState
from tests.e2e.conftest import StackFactory
from tests.e2e.test_keyframes_flow import refused
from tests.e2e.test_quotas_flow import admin, private_reply
from tests.e2e.test_video_flow import DELIVERY_TIMEOUT, answered, fields, stored

MANAGE_GUILD = 1 << 5


def labels(message: Message) -> list[str]:
    return [
        component["label"]
        for row in message.components
        for component in row.get("components", [])
        if "label" in component
    ]


def first_labels(stack: Stack, interaction: Interaction) -> list[str]:
    """The button labels of the bot's first answer, as sent: the live message may already
    have moved on (a job submitted at once loses its Cancel button)."""
    for request in stack.discord.requests:
        body = request.json if isinstance(request.json, dict) else {}
        sent = body.get("data", body)
        if request.interaction_id == interaction.id and "components" in sent:
            return [
                component["label"]
                for row in sent["components"]
                for component in row.get("components", [])
                if "label" in component
            ]
    raise AssertionError("no answer with buttons")


async def titled(stack: Stack, message: Message, title: str) -> dict[str, Any]:
    await stack.discord.wait_for(
        lambda: message.embeds[0].get("title") == title, timeout=DELIVERY_TIMEOUT
    )
    return message.embeds[0]


def german_member(stack: Stack, name: str = "anna") -> Member:
    return stack.discord.add_member(stack.discord.guild, name, locale="de")


async def test_a_german_member_gets_german_refusals_and_progress(stack: Stack) -> None:
    anna = german_member(stack)
    mod = stack.discord.add_member(stack.discord.guild, "mod", permissions=MANAGE_GUILD)
    await admin(stack, mod, ("quota",), user_daily=1)

    # A refusal from the option checks (bot.domain.options), naming the German option name.
    refusal = await private_reply(stack, await stack.video(anna, prompt="ein Fuchs", steps=5))
    assert refusal == "`schritte` muss zwischen 10 und 50 liegen (angegeben: 5)."

    # The first response and the engine's later edits speak German.
    stack.together.script_next(JobScript(queue_seconds=0.5, run_seconds=1.0))
    started = await stack.video(anna, prompt="ein Fuchs im Schnee")
    message = await answered(stack, started)
    assert message.embeds[0]["title"] == "Dein Video wird erstellt"
    assert {"Modell", "Größe", "Länge", "Status", "Vergangen"} <= set(fields(message))
    assert first_labels(stack, started) == ["Abbrechen"]
    embed = await titled(stack, message, "Dein Video ist fertig")
    assert embed["footer"]["text"].startswith("Auftrag #")
    assert "Kosten" in fields(message)
    assert set(labels(message)) == {"Verlängern", "Nochmal", "Remix", "Löschen"}
    job_id = int(embed["footer"]["text"].split("#")[1].split()[0])
    assert (await stored(stack.bot.jobs, job_id, JobState.DELIVERED)).locale == "de"

    # A quota refusal (bot.domain.quota), with its placeholders filled in.
    refusal = await private_reply(stack, await stack.video(anna, prompt="noch einer"))
    assert refusal.startswith("Du hast heute 1 von 1 Video erstellt."), refusal
    assert "<t:" in refusal and "wird" in refusal

    # The engine's progress texts while the job waits and runs are German too.
    statuses = {
        field["value"]
        for request in stack.discord.requests
        if request.method == "PATCH" and request.json and request.json.get("embeds")
        for field in request.json["embeds"][0].get("fields", [])
        if field["name"] == "Status"
    }
    german = {catalog("de")[key] for key in ("status.queued_at_together", "status.generating")}
    assert statuses & german, statuses


async def test_an_english_member_next_to_them_still_reads_english(stack: Stack) -> None:
    german_member(stack)
    refusal = await private_reply(stack, await stack.video(prompt="a fox", steps=5))
    assert refusal == "`steps` must be between 10 and 50 (got 5)."


async def test_model_suggestions_speak_the_members_language(stack: Stack) -> None:
    choices = await stack.discord.autocomplete(
        "video", {"prompt": "x", "model": "wan"}, focused="model", member=german_member(stack)
    )
    names = [choice["name"] for choice in choices]
    assert "Wan 2.7 Video Edit · Videobearbeitung · 2-10 s · $0.10/s" in names


async def test_a_moderator_reads_videoadmin_in_their_language(stack: Stack) -> None:
    mod = stack.discord.add_member(
        stack.discord.guild, "moderatorin", permissions=MANAGE_GUILD, locale="de"
    )
    text = await admin(stack, mod, ("quota",), user_daily=3)
    assert text.startswith("Aktualisiert.\nVideos pro Mitglied in 24 Std.: 3")


async def test_the_synced_commands_carry_their_localizations(stack: Stack) -> None:
    video = next(c for c in stack.discord.commands if c["name"] == "video")
    assert video["description_localizations"]["de"] == catalog("de")["cmd.video.description"]
    prompt = next(o for o in video["options"] if o["name"] == "prompt")
    assert prompt["name_localizations"]["de"] == "beschreibung"
    menus = {c["name"]: c for c in stack.discord.commands if c.get("type") == 3}
    assert menus["Animate image"]["name_localizations"]["de"] == "Bild animieren"


async def test_the_bots_own_failure_reason_speaks_the_jobs_language(
    make_stack: StackFactory,
) -> None:
    """A reason written by the engine (here: the member's cancel) is stored with its key, so
    the engine's edit shows it in German; the English words stay in failure_reason."""
    stack = await make_stack(max_active_jobs=1)
    anna = german_member(stack)
    stack.together.script_next(JobScript(queue_seconds=30, run_seconds=30))
    await answered(stack, await stack.video(prompt="der erste, langsame"))
    waiting = await answered(stack, await stack.video(anna, prompt="der zweite, wartend"))
    job_id = int(waiting.embeds[0]["footer"]["text"].split("#")[1].split()[0])
    assert labels(waiting) == ["Abbrechen"]

    await stack.discord.click_button(waiting, f"video:cancel:{job_id}", member=anna)
    await titled(stack, waiting, "Abgebrochen")
    assert fields(waiting)["Grund"] == catalog("de")["reason.cancelled_by_member"]
    job = await stored(stack.bot.jobs, job_id, JobState.CANCELLED)
    assert job.failure_reason == "Cancelled before it was sent to Together."


async def test_safety_refusals_speak_the_members_language_and_stay_private(stack: Stack) -> None:
    anna = german_member(stack)
    mod = stack.discord.add_member(
        stack.discord.guild, "moderatorin", permissions=MANAGE_GUILD, locale="de"
    )
    text = await admin(stack, mod, ("safety",), block="Roter Panda", screening=True)
    assert text.startswith("Aktualisiert.\n`roter panda` ist jetzt gesperrt.")
    assert "Gesperrte Wörter und Ausdrücke: 1 von 80" in text
    assert "Prüfung der Beschreibungen: an (Modell `" in text

    # With screening on the bot answers "thinking" first, then privately in its place.
    blocked = await refused(stack, await stack.video(anna, prompt="ein ROTER  panda"))
    assert blocked == catalog("de")["safety.blocked_words"]
    assert "panda" not in blocked.lower()

    flagged = await stack.video(anna, prompt="ein Duell im Morgengrauen [unsafe:S1]")
    reply = await refused(stack, flagged)
    assert "(S1 Gewaltverbrechen)" in reply and reply.startswith("Die Inhaltsprüfung")
    assert flagged.original_message is not None and flagged.original_message.deleted
    assert stack.together.posts() == []


async def test_a_japanese_moderator_reads_status_and_usage_in_japanese(stack: Stack) -> None:
    mod = stack.discord.add_member(
        stack.discord.guild, "kanrisha", permissions=MANAGE_GUILD, locale="ja"
    )
    status = await admin(stack, mod, ("status",))
    assert status.splitlines()[0].startswith("**動画ボット ")
    assert "**このサーバーの最近の失敗**（過去 7 日間）" in status

    interaction = await stack.discord.slash_command(
        "videoadmin", {}, member=mod, subcommand=("usage",)
    )
    usage = await private_reply(stack, interaction)
    assert usage.startswith("**このサーバー**\n直近24時間：0 本、$0.00")
    assert "グラフ：" in usage and "上：1日あたりの動画数（棒）" in usage
