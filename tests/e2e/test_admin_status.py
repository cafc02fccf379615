"""/videoadmin status through the sandbox: the real bot, discord.py and SQLite."""

from __future__ import annotations

from bot.metrics import bot_version
from sandbox.together import JobScript
from tests.e2e.conftest import StackFactory
from tests.e2e.test_quotas_flow import SLOW_JOB, admin, moderator
from tests.e2e.test_video_flow import answered, finished


async def test_status_shows_the_queue_the_budget_and_the_last_failure(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(together_requests_per_second=5, together_start_requests_per_second=1)
    stack.together.script_next(
        JobScript(queue_seconds=0.1, run_seconds=0.3, outcome="failed", error_message="**No**.")
    )
    await finished(stack, await answered(stack, await stack.video(prompt="one")))
    stack.together.script_next(SLOW_JOB)
    slow = await answered(stack, await stack.video(prompt="two"))
    await stack.discord.wait_for(
        lambda: any(f["value"] == "⏳ Queued at Together" for f in slow.embeds[0].get("fields", []))
    )

    refused = await admin(stack, stack.member, ("status",))
    assert refused == "You need the Manage Server permission to use /videoadmin."

    text = await admin(stack, moderator(stack), ("status",))
    lines = text.splitlines()
    assert lines[0].startswith(f"**Video bot {bot_version()}** · up ")
    assert "waiting: 0 / 0 · sending: 0 / 0 · generating: 1 / 1 · uploading: 0 / 0" in lines
    assert "1.00 requests/s now, at most 5.00/s · not backing off" in lines
    assert lines[-2] == "**Recent failures here** (last 7 days)"
    assert lines[-1].startswith("#1 · <t:")
    assert lines[-1].endswith(" · failed · \\*\\*No\\*\\*.")
