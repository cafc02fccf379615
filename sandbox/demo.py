"""`python -m sandbox demo`: one /video through the real bot and both stand-ins, as a member
sees it."""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sandbox.discord_api import Interaction, Message
from sandbox.harness import Stack, running_stack
from sandbox.together import JobScript

FINAL_TITLES = ("Your video is ready", "The video could not be made", "The video took too long")
WATCH_TIMEOUT = 120.0


def render_message(message: Message) -> list[str]:
    """A message as plain text lines: content, then each embed's title, text and fields."""
    lines = [message.content] if message.content else []
    for embed in message.embeds:
        if embed.get("title"):
            lines.append(f"** {embed['title']} **")
        if embed.get("description"):
            lines.append(embed["description"])
        fields = [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        if fields:
            lines.append(" | ".join(fields))
    for attachment in message.attachments:
        lines.append(f"[attachment] {attachment.filename} ({attachment.size:,} bytes)")
    return lines


class Printer:
    def __init__(self, out: TextIO, started: float) -> None:
        self._out = out
        self._started = started

    def say(self, headline: str, lines: Sequence[str] = ()) -> None:
        stamp = f"[{time.monotonic() - self._started:6.2f}s]"
        print(f"{stamp} {headline}", file=self._out)
        for line in lines:
            print(f"{' ' * len(stamp)}   {line}", file=self._out)
        self._out.flush()


async def watch(stack: Stack, interaction: Interaction, printer: Printer) -> Message:
    """Print the first response and every change of the message until it shows a final state."""
    await stack.discord.wait_for(lambda: interaction.original_message is not None)
    message = interaction.original_message
    assert message is not None
    kind = "private (ephemeral)" if interaction.ephemeral else "public"
    waited = interaction.response_time or 0.0
    printer.say(
        f"First response, {kind}, {waited:.2f} s after the command:", render_message(message)
    )
    if interaction.ephemeral:
        return message
    shown = render_message(message)
    edits = 0
    deadline = time.monotonic() + WATCH_TIMEOUT
    while time.monotonic() < deadline:
        current = render_message(message)
        if current != shown:
            shown = current
            edits += 1
            printer.say(f"Edit {edits}:", current)
            if message.embeds and message.embeds[0].get("title") in FINAL_TITLES:
                return message
        await asyncio.sleep(0.05)
    raise TimeoutError("the job did not finish within two minutes")


async def save(message: Message, out_dir: Path, printer: Printer) -> None:
    for attachment in message.attachments:
        saved = out_dir / attachment.filename
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(saved.write_bytes, attachment.data)
        printer.say(f"The delivered video was saved to {saved.resolve()}")


async def extend_and_join(
    stack: Stack, message: Message, extend: int, out_dir: Path, printer: Printer
) -> Message:
    """Press Extend `extend` times (each on the latest part), then Join on the last part."""
    member = stack.member
    for part in range(2, extend + 2):
        job_id = _job_id(message)
        click = await stack.discord.click_button(message, f"video:extend:{job_id}", member=member)
        await stack.discord.wait_for(lambda opened=click: opened.modal is not None)
        assert click.modal is not None
        printer.say(
            f"{member.user.username} presses Extend on #{job_id}: a form opens "
            f"('{click.modal['title']}'), the prompt filled in"
        )
        words = f"part {part}: and then the wave carries it further"
        printer.say(f"{member.user.username} submits: {words!r}")
        submission = await stack.discord.submit_modal(click, {"prompt": words})
        message = await watch(stack, submission, printer)
        await save(message, out_dir, printer)
    job_id = _job_id(message)
    printer.say(f"{member.user.username} presses Join on #{job_id}")
    join = await stack.discord.click_button(message, f"video:join:{job_id}", member=member)
    joined = await watch(stack, join, printer)
    await save(joined, out_dir, printer)
    return joined


def _job_id(message: Message) -> int:
    footer = str(message.embeds[0].get("footer", {}).get("text", ""))
    return int(footer.split("#", 1)[1].split(" ", 1)[0])


async def run_demo(
    prompt: str, model: str | None, out_dir: Path, run_seconds: float, extend: int = 0
) -> int:
    started = time.monotonic()
    printer = Printer(sys.stdout, started)
    script = JobScript(queue_seconds=1.5, run_seconds=run_seconds)
    with tempfile.TemporaryDirectory(prefix="video-bot-demo-") as workdir:
        async with running_stack(
            Path(workdir),
            together_options={"default_script": script},
            progress_edit_interval=2.0,
            poll_interval=0.5,
        ) as stack:
            printer.say(
                "Sandbox up: the real bot, logged in to the Discord stand-in, "
                "with Together's stand-in behind it.",
                [
                    f"Discord stand-in:  {stack.discord.api_base}",
                    f"Together stand-in: {stack.together.base_url}",
                    f"Bot: {stack.bot.user} in server '{stack.discord.guild.name}', "
                    f"commands: {', '.join('/' + c['name'] for c in stack.discord.commands)}",
                ],
            )
            options: dict[str, Any] = {"prompt": prompt}
            if model:
                options["model"] = model
            typed = " ".join(f'{k}:"{v}"' for k, v in options.items())
            printer.say(f"{stack.member.user.username} types: /video {typed}")
            interaction = await stack.video(**options)
            message = await watch(stack, interaction, printer)
            await save(message, out_dir, printer)
            if extend and message.attachments:
                message = await extend_and_join(stack, message, extend, out_dir, printer)
            return 0 if message.attachments else 1


def main(
    prompt: str,
    model: str | None,
    out_dir: Path,
    run_seconds: float,
    verbose: bool,
    extend: int = 0,
) -> int:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="           log: %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(run_demo(prompt, model, out_dir, run_seconds, extend))
