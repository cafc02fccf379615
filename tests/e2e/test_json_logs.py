"""LOG_FORMAT=json end to end: the real bot process, one job, and a log a collector can read."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.together import JobScript
from tests.e2e.test_resilience import bot_process, stand_ins, wait_for_job


async def test_a_job_logged_as_json_carries_its_id_on_every_engine_line(tmp_path: Path) -> None:
    script = JobScript(queue_seconds=0.3, run_seconds=1.0)
    async with (
        stand_ins(together_options={"default_script": script}) as (discord_sb, together_sb, member),
        bot_process(discord_sb, together_sb, tmp_path, log_format="json", log_level="DEBUG") as bot,
    ):
        assert bot.env["LOG_FORMAT"] == "json"
        await discord_sb.slash_command("video", {"prompt": "a lighthouse in fog"}, member=member)
        await wait_for_job(bot.database_path, 1, "delivered")
        assert await bot.terminate() == 0
        log = bot.log_text()

    entries = [json.loads(line) for line in log.splitlines()]  # every line, not only ours
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert entries[-1]["message"] == "Stopped cleanly"
    # In this run, everything the engine, the intake, Together's client, the downloads and the
    # cogs said was about the one job.
    jobs_loggers = ("bot.engine", "bot.intake", "bot.together", "bot.media", "cogs.")
    about_the_job = [e for e in entries if str(e["logger"]).startswith(jobs_loggers)]
    engine = [e for e in about_the_job if str(e["logger"]).startswith("bot.engine")]
    assert any(e["message"] == "running -> delivering" for e in engine)
    missing = [e["message"] for e in about_the_job if e.get("job_id") != 1]
    assert not missing, f"lines about the job without its id: {missing}"
    guilds = {e["guild_id"] for e in about_the_job}
    users = {e["user_id"] for e in about_the_job}
    assert guilds == {discord_sb.guild.id} and users == {member.user.id}
    assert {"bot.together.client", "cogs.progress"} <= {e["logger"] for e in about_the_job}
