"""`video-bot health` and `video-bot backup PATH` against a real bot process.

The bot is `python -m bot` against the stand-ins; each command is `python -m bot <command>`
in a process of its own that is given nothing but DATABASE_PATH (no tokens, no .env).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.heartbeat import heartbeat_path_for
from sandbox.discord_api import DiscordSandbox, Member
from sandbox.harness import TOGETHER_KEY
from sandbox.process import REPO_ROOT, BotProcess, run_bot_once
from sandbox.together import JobScript, TogetherSandbox
from storage.db import open_database
from storage.jobs import JobRepository
from storage.lock import find_lock_holder
from storage.models import JobState

COMMAND_TIMEOUT = 30.0
# discord.py's reconnect backoff after a gateway outage is random and doubles per failed try.
WAIT_TIMEOUT = 90.0
# Jobs that stay at Together for the whole test: their rows do not change under the backup.
LONG_JOB = JobScript(queue_seconds=0.2, run_seconds=600.0)


@pytest.fixture
async def stand_ins() -> AsyncIterator[tuple[DiscordSandbox, TogetherSandbox, Member]]:
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(api_key=TOGETHER_KEY, default_script=LONG_JOB) as together_sb,
    ):
        yield discord_sb, together_sb, discord_sb.add_member(discord_sb.guild, "member")


@pytest.fixture
async def bot(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member], tmp_path: Path
) -> AsyncIterator[BotProcess]:
    discord_sb, together_sb, _ = stand_ins
    process = BotProcess(
        discord_sb,
        together_sb,
        tmp_path / "bot",
        poll_interval=0.2,
        progress_edit_interval=1.0,
        default_user_concurrent=5,  # three unfinished jobs from one member
    )
    try:
        await process.start()
        yield process
    finally:
        await process.close()


async def video_bot(database: Path, *args: str, cwd: Path) -> tuple[int, str, str]:
    """`python -m bot <args>` with DATABASE_PATH alone; its exit code, stdout and stderr."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "DATABASE_PATH": str(database),
    }
    return await run_bot_once(env, cwd, *args, timeout=COMMAND_TIMEOUT)


async def until_healthy(database: Path, cwd: Path) -> str:
    """Run the health check until it passes (the first heartbeats come as the bot connects)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_TIMEOUT
    while True:
        code, out, err = await video_bot(database, "health", cwd=cwd)
        if code == 0:
            assert err == ""
            return out
        if loop.time() > deadline:
            pytest.fail(f"never healthy; last answer: {err.strip()}")
        await asyncio.sleep(0.2)


async def heartbeat_shows(path: Path, key: str, value: object) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_TIMEOUT
    while True:
        try:
            data: dict[str, object] = json.loads(path.read_text())
            if data[key] == value:
                return data
        except (OSError, ValueError):
            pass
        if loop.time() > deadline:
            pytest.fail(f"the heartbeat never showed {key}={value!r}")
        await asyncio.sleep(0.05)


@pytest.mark.timeout(300)
async def test_health_follows_the_bot_the_gateway_and_the_process(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    bot: BotProcess,
    tmp_path: Path,
) -> None:
    discord_sb, _, _ = stand_ins
    database = bot.database_path.resolve()
    heartbeat = heartbeat_path_for(database)
    checks = tmp_path / "checks"  # no .env there: DATABASE_PATH is all the check gets

    out = await until_healthy(database, checks)
    assert out.startswith(f"video-bot: healthy: pid {bot.pid}, gateway connected, engine ticked ")
    assert out.count("\n") == 1

    # Discord's gateway out of reach: the bot keeps trying, and for a minute that is healthy.
    discord_sb.refuse_gateway()
    await discord_sb.disconnect_gateway(resumable=True)
    await heartbeat_shows(heartbeat, "gateway_connected", False)
    code, out, _ = await video_bot(database, "health", cwd=checks)
    assert code == 0
    assert ", gateway reconnecting for " in out

    # Three minutes later, as the bot would write it: frozen so it cannot write meanwhile.
    assert bot.pid is not None
    os.kill(bot.pid, signal.SIGSTOP)
    try:
        data = json.loads(heartbeat.read_text())
        assert isinstance(data["gateway_down_since"], float)
        data["gateway_down_since"] -= 180.0
        heartbeat.write_text(json.dumps(data))
        code, out, err = await video_bot(database, "health", cwd=checks)
    finally:
        os.kill(bot.pid, signal.SIGCONT)
    assert (code, out) == (1, "")
    assert err == "video-bot: the gateway has been disconnected for 3 min\n"

    # Back: the bot reconnects by itself and says so at once.
    discord_sb.refuse_gateway(False)
    await until_healthy(database, checks)

    # Stopped: the lock is free, whatever file it left.
    assert await bot.terminate() == 0
    code, out, err = await video_bot(database, "health", cwd=checks)
    assert (code, out) == (1, "")
    assert err == f"video-bot: no bot is running on DATABASE_PATH {database}\n"
    assert not heartbeat.exists(), "a clean stop removes its heartbeat"


async def test_a_backup_while_the_bot_runs_has_its_jobs(
    stand_ins: tuple[DiscordSandbox, TogetherSandbox, Member],
    bot: BotProcess,
    tmp_path: Path,
) -> None:
    discord_sb, together_sb, member = stand_ins
    for prompt in ("a fox", "an owl", "a heron"):
        await discord_sb.slash_command("video", {"prompt": prompt}, member=member)
    await discord_sb.wait_for(lambda: len(together_sb.jobs) == 3, timeout=WAIT_TIMEOUT)
    database = bot.database_path.resolve()
    target = tmp_path / "backups" / "bot-copy.sqlite3"
    target.parent.mkdir()

    code, out, err = await video_bot(database, "backup", str(target), cwd=tmp_path / "ops")

    assert (code, err) == (0, "")
    assert out.startswith(f"video-bot: Backed up {database} to {target}: ")
    assert out.endswith(", 3 jobs, quick_check ok\n")
    holder = find_lock_holder(database)
    assert holder is not None and holder.pid == bot.pid, "the bot kept its lock"
    assert bot.running

    copy = await open_database(target)
    try:
        copied = await JobRepository(copy).in_states(set(JobState))
    finally:
        await copy.close()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as source:
        expected = source.execute("SELECT id, state, prompt, together_id FROM jobs").fetchall()
    assert sorted(
        (job.id, job.state.value, job.params.prompt, job.together_id) for job in copied
    ) == sorted(expected)
    assert {job.state for job in copied} == {JobState.RUNNING}

    # A second backup to the same PATH is refused, and the first copy is untouched.
    size = target.stat().st_size
    code, out, err = await video_bot(database, "backup", str(target), cwd=tmp_path / "ops")
    assert (code, out) == (2, "")
    assert err == (
        f"video-bot: backup PATH {target} already exists; choose a new file (nothing is "
        "overwritten)\n"
    )
    assert target.stat().st_size == size
    assert await bot.terminate() == 0
