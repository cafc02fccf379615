"""Resilience: the real bot as a subprocess (`python -m bot`), killed, stopped and restarted.

The stand-ins run in this process; the bot runs in its own (sandbox.process.BotProcess), so it
can be SIGKILLed mid-write or sent SIGTERM like `docker stop`. The checks read what a member
would see (the stand-in's messages), what Together was asked (the stand-in's requests) and
the bot's SQLite file.

The chaos test's seed is printed; replay a run with CHAOS_SEED=<seed>. Deselect it with
`-m "not chaos"`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.discord_api import DiscordSandbox, Member, Message, RecordedRequest
from sandbox.discord_api.faults import RandomFaults
from sandbox.harness import TOGETHER_KEY
from sandbox.process import BotProcess
from sandbox.together import JobScript, TogetherSandbox
from sandbox.together import RecordedRequest as TogetherRequest
from storage.db import open_database
from storage.usage import UsageRepository

READY = "Your video is ready"
FAILED_TITLES = ("The video could not be made", "The video took too long")
FINAL_STATES = ("delivered", "failed", "cancelled", "timed_out")
VIDEO_NAME = re.compile(r"video-(\d+)\.(mp4|webm)")
JOB_TIMEOUT = 40.0
DB_POLL = 0.1


# -- reading what happened -----------------------------------------------------------------------


def read_jobs(database: Path) -> list[dict[str, Any]]:
    """Every row of the jobs table (the bot may be running: WAL lets us read beside it)."""
    if not database.exists():
        return []
    conn = sqlite3.connect(database, timeout=5.0)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM jobs ORDER BY id")]
    finally:
        conn.close()


async def wait_for_rows(
    database: Path,
    predicate: Callable[[list[dict[str, Any]]], bool],
    timeout: float = JOB_TIMEOUT,  # noqa: ASYNC109
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = read_jobs(database)
        if predicate(rows):
            return rows
        if time.monotonic() >= deadline:
            states = [(r["id"], r["state"]) for r in rows]
            raise TimeoutError(f"jobs never matched within {timeout:.0f} s: {states}")
        await asyncio.sleep(DB_POLL)


async def wait_for_job(
    database: Path,
    job_id: int,
    state: str,
    timeout: float = JOB_TIMEOUT,  # noqa: ASYNC109
) -> dict[str, Any]:
    rows = await wait_for_rows(
        database,
        lambda rows: any(r["id"] == job_id and r["state"] == state for r in rows),
        timeout,
    )
    return next(r for r in rows if r["id"] == job_id)


def video_uploads(discord_sb: DiscordSandbox, job_id: int) -> list[RecordedRequest]:
    """Successful requests that carried this job's video file."""
    return [
        r
        for r in discord_sb.requests
        if r.status == 200 and any(_video_job(f.filename) == job_id for f in r.files)
    ]


def _video_job(filename: str) -> int | None:
    match = VIDEO_NAME.fullmatch(filename)
    return int(match.group(1)) if match else None


def messages_about(discord_sb: DiscordSandbox, text: str) -> list[Message]:
    """The bot's visible messages whose embed shows `text` (a job's prompt, or part of it)."""
    return [
        m
        for m in discord_sb.messages.values()
        if m.author.id == discord_sb.bot_user.id
        and not m.deleted
        and not m.ephemeral
        and any(text in (embed.get("description") or "") for embed in m.embeds)
    ]


def title(message: Message) -> str | None:
    return message.embeds[0].get("title") if message.embeds else None


def embed_field(message: Message, name: str) -> str | None:
    if not message.embeds:
        return None
    return next(
        (f["value"] for f in message.embeds[0].get("fields", []) if f["name"] == name), None
    )


def shows_its_end(message: Message, row: dict[str, Any]) -> bool:
    """The message shows the job's final state as the member should read it."""
    if row["state"] == "delivered":
        return title(message) == READY
    if row["state"] in ("failed", "timed_out"):
        reason = row["failure_reason"] or ""
        return title(message) in FAILED_TITLES and (embed_field(message, "Why") or "").startswith(
            reason[:900]
        )
    return True


def counts_toward_quota(row: dict[str, Any]) -> bool:
    """The README's rule: a job counts unless cancelled, timed out, or failed before
    Together accepted it."""
    if row["state"] in ("cancelled", "timed_out"):
        return False
    return not (row["state"] == "failed" and row["together_id"] is None)


def spend(row: dict[str, Any]) -> float:
    return float(row["cost_usd"] if row["cost_usd"] is not None else row["estimated_cost_usd"])


# -- the stand-ins -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stand_ins(
    *,
    discord_options: dict[str, Any] | None = None,
    together_options: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[DiscordSandbox, TogetherSandbox, Member]]:
    together_options = {"api_key": TOGETHER_KEY, **(together_options or {})}
    async with (
        DiscordSandbox(**(discord_options or {})) as discord_sb,
        TogetherSandbox(**together_options) as together_sb,
    ):
        member = discord_sb.add_member(discord_sb.guild, "member")
        yield discord_sb, together_sb, member


@contextlib.asynccontextmanager
async def bot_process(
    discord_sb: DiscordSandbox, together_sb: TogetherSandbox, workdir: Path, **settings: Any
) -> AsyncIterator[BotProcess]:
    settings.setdefault("poll_interval", 0.2)
    settings.setdefault("progress_edit_interval", 1.0)
    bot = BotProcess(discord_sb, together_sb, workdir, **settings)
    try:
        await bot.start()
        yield bot
    finally:
        await bot.close()


class ManualClock:
    """Together's clock: real time plus whatever the test adds, so a job finishes on cue."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# -- the fault switches themselves ---------------------------------------------------------------


async def test_together_fault_rate_is_off_by_default_and_never_creates_a_job() -> None:
    body = {"model": "minimax/hailuo-02", "prompt": "a fox"}
    async with (
        TogetherSandbox(api_key=TOGETHER_KEY) as quiet,
        TogetherSandbox(api_key=TOGETHER_KEY, fault_rate=1.0, rng=random.Random(3)) as noisy,
    ):
        assert quiet.fault_rate == 0.0
        headers = {"Authorization": f"Bearer {TOGETHER_KEY}"}
        async with httpx.AsyncClient(headers=headers) as client:
            created = await client.post(f"{quiet.base_url}/v2/videos", json=body)
            assert created.status_code == 200
            job_id = created.json()["id"]

            post = await client.post(f"{noisy.base_url}/v2/videos", json=body)
            assert post.status_code == 503 and post.headers["retry-after"] == "1"
            assert noisy.jobs == {}, "a faulted POST creates no job"
            statuses = set()
            for _ in range(20):
                got = await client.get(f"{noisy.base_url}/v2/videos/{job_id}")
                assert got.headers["retry-after"] == "1"
                statuses.add(got.status_code)
            assert statuses == {503, 429}
            # Authentication and validation still come first.
            bad_key = await client.post(
                f"{noisy.base_url}/v2/videos", json=body, headers={"Authorization": "Bearer x"}
            )
            assert bad_key.status_code == 401
            invalid = await client.post(f"{noisy.base_url}/v2/videos", json={"model": "nope"})
            assert invalid.status_code == 400
            assert noisy.faults_injected == 21

            noisy.fault_rate = 0.0
            assert (await client.post(f"{noisy.base_url}/v2/videos", json=body)).status_code == 200


async def test_discord_fault_rate_hits_message_writes_only() -> None:
    async with DiscordSandbox(fault_rate=1.0, rng=random.Random(5)) as discord_sb:
        channel = discord_sb.channel
        headers = {"Authorization": f"Bot {discord_sb.bot_token}"}
        async with httpx.AsyncClient(base_url=discord_sb.api_base, headers=headers) as client:
            url = f"/channels/{channel.id}/messages"
            statuses = set()
            for _ in range(12):
                answer = await client.post(url, json={"content": "hello"})
                statuses.add(answer.status_code)
                assert answer.headers["Via"] == "1.1 google"
                assert answer.headers["Content-Type"] == "application/json"
                assert answer.json()["code"] == 0 and answer.json()["message"]
            assert statuses == {500, 502}
            assert not discord_sb.messages, "a faulted create has no effect"
            assert (await client.get(f"/channels/{channel.id}")).status_code == 200
            discord_sb.fault_rate = 0.0
            assert (await client.post(url, json={"content": "hello"})).status_code == 200
    faults = RandomFaults(1.0)
    assert faults.roll("POST", "/interactions/{interaction}/{token}/callback") is None
    assert faults.roll("PATCH", "/webhooks/{app}/{token}/messages/{message}") in (500, 502)
    assert RandomFaults().roll("PATCH", "/channels/{channel}/messages/{message}") is None
    with pytest.raises(ValueError):
        RandomFaults(1.5)


# -- SIGTERM -------------------------------------------------------------------------------------


async def test_sigterm_stops_cleanly_and_the_running_job_resumes(tmp_path: Path) -> None:
    clock = ManualClock()
    script = JobScript(queue_seconds=0.2, run_seconds=600.0)
    async with (
        stand_ins(together_options={"clock": clock, "default_script": script}) as (
            discord_sb,
            together_sb,
            member,
        ),
        bot_process(discord_sb, together_sb, tmp_path) as bot,
    ):
        interaction = await discord_sb.slash_command(
            "video", {"prompt": "a lighthouse in a storm"}, member=member
        )
        row = await wait_for_rows(
            bot.database_path,
            lambda rows: bool(rows) and rows[0]["provider_status"] == "in_progress",
        )
        assert row[0]["state"] == "running"

        stopping = time.monotonic()
        code = await bot.terminate(timeout=10.0)
        took = time.monotonic() - stopping
        log = bot.log_text(1)
        assert code == 0, log
        assert took < 10.0
        assert "Stopped cleanly" in log
        assert "Traceback" not in log, log
        (job,) = read_jobs(bot.database_path)
        assert job["state"] == "running", "a stop must not fail or forget a running job"
        assert job["failure_reason"] is None
        (together_job,) = together_sb.jobs.values()
        assert job["together_id"] == together_job.id

        clock.advance(600.0)  # Together finishes while the bot is down
        await bot.start()
        delivered = await wait_for_job(bot.database_path, 1, "delivered")
        message = interaction.original_message
        assert message is not None
        await discord_sb.wait_for(lambda: title(message) == READY)
        assert [a.filename for a in message.attachments] == ["video-1.mp4"]
        assert len(video_uploads(discord_sb, 1)) == 1
        assert len(together_sb.posts()) == 1, "resuming never submits again"
        assert delivered["together_id"] == together_job.id
        assert "Resumed 1 unfinished job(s)" in bot.log_text(2)
        assert await bot.terminate() == 0


# -- secrets -------------------------------------------------------------------------------------

BOT_TOKEN = "sandbox-bot-token-XYZ123-never-log-this"
TOGETHER_SECRET = "together-key-QRS789-never-log-this"


async def test_no_secret_reaches_the_log_or_a_message(tmp_path: Path) -> None:
    async with (
        stand_ins(
            discord_options={"bot_token": BOT_TOKEN},
            together_options={
                "api_key": TOGETHER_SECRET,
                "default_script": JobScript(queue_seconds=0.3, run_seconds=1.0),
            },
        ) as (discord_sb, together_sb, member),
        bot_process(discord_sb, together_sb, tmp_path, log_level="DEBUG") as bot,
    ):
        assert bot.env["DISCORD_TOKEN"] == BOT_TOKEN
        assert bot.env["TOGETHER_API_KEY"] == TOGETHER_SECRET
        interaction = await discord_sb.slash_command(
            "video", {"prompt": "a quiet harbour at dawn"}, member=member
        )
        await wait_for_job(bot.database_path, 1, "delivered")
        assert await bot.terminate() == 0
        log = bot.log_text()

    secrets = {
        "the bot token": BOT_TOKEN,
        "the Together key": TOGETHER_SECRET,
        "the interaction token": interaction.token,
    }
    # The secrets were really in play: the key authenticated, the token edited the message.
    api = [r for r in together_sb.requests if r.path.startswith("/v2/videos")]
    assert api and all(r.auth_ok for r in api)
    # The key goes to the API only, never to the (redirected) video download.
    downloads = [r for r in together_sb.requests if not r.path.startswith("/v2/videos")]
    assert downloads and not any("authorization" in r.headers for r in downloads)
    assert any(r.route.startswith("PATCH /webhooks/") for r in discord_sb.requests)
    # The log is the real thing, at DEBUG, about this job.
    assert " DEBUG " in log and " job=1: " in log and "Stopped cleanly" in log
    stored = json.dumps(
        [
            {"content": m.content, "embeds": m.embeds, "components": m.components}
            for m in discord_sb.messages.values()
        ]
    )
    assert "a quiet harbour at dawn" in stored
    for name, secret in secrets.items():
        assert secret not in log, f"{name} is in the bot's log"
        assert secret not in stored, f"{name} is in a message"
        # A long token cut in two by a line break, or logged in part, still counts.
        assert secret[-24:] not in log, f"part of {name} is in the bot's log"


# -- crashes at the worst moments ----------------------------------------------------------------


def kill_on_upload(discord_sb: DiscordSandbox, bot: BotProcess) -> asyncio.Event:
    """SIGKILL the bot the moment the stand-in stores a video, before the bot hears back."""
    killed = asyncio.Event()

    def listener(event: str, data: dict[str, Any], intent: int) -> None:
        names = [a.get("filename", "") for a in data.get("attachments", [])]
        if not killed.is_set() and any(VIDEO_NAME.fullmatch(n) for n in names):
            bot.kill()
            killed.set()

    discord_sb.state.listeners.append(listener)
    return killed


async def test_crash_between_upload_and_database_write_does_not_post_twice(
    tmp_path: Path,
) -> None:
    async with (
        stand_ins(
            together_options={"default_script": JobScript(queue_seconds=0.2, run_seconds=0.8)}
        ) as (discord_sb, together_sb, member),
        bot_process(discord_sb, together_sb, tmp_path) as bot,
    ):
        killed = kill_on_upload(discord_sb, bot)
        interaction = await discord_sb.slash_command(
            "video", {"prompt": "a kite over the dunes"}, member=member
        )
        await asyncio.wait_for(killed.wait(), JOB_TIMEOUT)
        assert await bot.wait() < 0
        (job,) = read_jobs(bot.database_path)
        assert job["state"] == "delivering", "the kill came after the upload, before the write"
        assert len(video_uploads(discord_sb, 1)) == 1

        await bot.start()
        await wait_for_job(bot.database_path, 1, "delivered")
        message = interaction.original_message
        assert message is not None
        assert [a.filename for a in message.attachments] == ["video-1.mp4"]
        assert title(message) == READY
        assert len(video_uploads(discord_sb, 1)) == 1, "the video was uploaded twice"
        assert "already in its message; not uploading again" in bot.log_text(2)
        assert len(together_sb.posts()) == 1
        assert await bot.terminate() == 0


async def test_crash_before_the_failure_is_shown_still_shows_it_after_restart(
    tmp_path: Path,
) -> None:
    failing = JobScript(
        queue_seconds=0.2,
        run_seconds=1.5,
        outcome="failed",
        error_message="The prompt was flagged by the safety system.",
    )
    async with (
        stand_ins(together_options={"default_script": failing}) as (
            discord_sb,
            together_sb,
            member,
        ),
        # Edits only on state changes, so the failure's edit is the one after "Generating".
        bot_process(discord_sb, together_sb, tmp_path, progress_edit_interval=600.0) as bot,
    ):
        interaction = await discord_sb.slash_command(
            "video", {"prompt": "something forbidden"}, member=member
        )
        await discord_sb.wait_for(lambda: interaction.original_message is not None)
        message = interaction.original_message
        assert message is not None
        await discord_sb.wait_for(lambda: embed_field(message, "Status") == "🎬 Generating")
        # Discord loses the next edits (discord.py retries them after 1 s, 3 s, ...).
        start = len(discord_sb.requests)
        discord_sb.fail_next("PATCH", "/webhooks/*", 502, times=5)
        discord_sb.fail_next("PATCH", "/channels/*", 502, times=5)
        await wait_for_job(bot.database_path, 1, "failed")
        await discord_sb.wait_for_request(lambda r: r.status == 502, start=start)
        bot.kill()
        await bot.wait()
        discord_sb.faults.clear()
        assert title(message) not in FAILED_TITLES, "the crash came before the member was told"

        await bot.start()
        # Bounded: the bot shows it at once after the restart, or never.
        with contextlib.suppress(TimeoutError):
            await discord_sb.wait_for(lambda: title(message) in FAILED_TITLES, timeout=5.0)
        assert title(message) == "The video could not be made", (
            f"after the restart the message still reads {title(message)!r}"
        )
        assert embed_field(message, "Why") == "The prompt was flagged by the safety system."


async def test_crash_before_the_message_id_is_stored_posts_one_message(tmp_path: Path) -> None:
    async with (
        stand_ins(
            together_options={"default_script": JobScript(queue_seconds=0.3, run_seconds=1.5)}
        ) as (discord_sb, together_sb, member),
        bot_process(discord_sb, together_sb, tmp_path) as bot,
    ):
        # Discord rate-limits the first response: discord.py waits 5 s before retrying it, with
        # the job already stored and no message id yet. The bot dies in that wait.
        discord_sb.fail_next("POST", "/interactions/*", 429, retry_after=5.0)
        interaction = await discord_sb.slash_command(
            "video", {"prompt": "a snail racing a tortoise"}, member=member
        )
        await discord_sb.wait_for_request(
            lambda r: r.interaction_id == interaction.id and r.status == 429
        )
        (job,) = await wait_for_rows(bot.database_path, lambda rows: len(rows) == 1)
        assert job["state"] == "queued" and job["message_id"] is None
        bot.kill()
        await bot.wait()
        assert interaction.original_message is None

        await bot.start()
        await wait_for_job(bot.database_path, 1, "delivered")
        await discord_sb.wait_for(
            lambda: any(m.attachments for m in messages_about(discord_sb, "a snail racing"))
        )
        assert len(video_uploads(discord_sb, 1)) == 1
        posted = messages_about(discord_sb, "a snail racing")
        assert len(posted) == 1, (
            f"the job has {len(posted)} messages: "
            f"{[(title(m), embed_field(m, 'Status')) for m in posted]}"
        )


# -- chaos ---------------------------------------------------------------------------------------

CHAOS_COMMANDS = 30
CHAOS_FAULT_RATE = 0.10
# When each SIGKILL is armed (after this many commands) and what fires it: the moment Together
# creates a job (the bot never hears the answer), the moment Discord stores a video (the bot
# never records it), or a random moment.
CHAOS_KILLS = ((6, "submit"), (15, "upload"), (24, "timer"))
CHAOS_TRIGGER_TIMEOUT = 20.0
# Discord's REST API goes down for a minute, twice: armed after this many commands, each starts
# the moment a job the bot follows has finished at Together (its video not yet fetched), with
# the bot up (not in its start-up: it cannot log in during an outage).
CHAOS_OUTAGES = (4, 20)
CHAOS_OUTAGE_SECONDS = 60.0
CHAOS_OUTAGE_TRIGGER_TIMEOUT = 30.0
# Members hold command `after + CHAOS_OUTAGE_LEAD` until that outage has started, so commands
# are left to send into it however long its trigger takes.
CHAOS_OUTAGE_LEAD = 6
CHAOS_OUTAGE_WAIT = 150.0  # for an outage to start (a restart can wait out the other one)
# Members keep sending this many commands into an outage (they get no answer, as on Discord,
# and the bot cancels those jobs), then wait for Discord to come back.
CHAOS_OUTAGE_COMMANDS = 3
# For every job to reach a final state, once the commands, kills and outages are over: a
# delivery retries at least every 60 s, so within a minute of Discord's return plus the work.
CHAOS_FINISH_TIMEOUT = 120.0
# Then for every message to show it: a final state whose edit an outage lost is shown again by
# the bot's pass every 60 s.
CHAOS_SHOW_TIMEOUT = 75.0
CHAOS_MEMBERS = 4
SCENES = (
    "a red fox crossing a frozen river",
    "a paper boat drifting down a gutter",
    "a hot air balloon over green hills",
    "a robot watering a tiny garden",
    "waves breaking on a black sand beach",
    "a cat chasing leaves in autumn",
)
FAILURE_REASONS = (
    "The prompt was flagged by the content moderation system.",
    "The model is temporarily overloaded. Please try again later.",
    "The video could not be generated.",
)


def chaos_token(number: int) -> str:
    """Unique per command: "chaos job 017:" is not a prefix of any other."""
    return f"chaos job {number:03d}:"


def token_of(prompt: str) -> str:
    return prompt[: len(chaos_token(0))]


@dataclass
class KillSwitch:
    """SIGKILLs the bot when the armed trigger fires (from the stand-ins' own callbacks)."""

    bot: BotProcess | None = None
    armed: str | None = None
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    seen_videos: set[str] = field(default_factory=set)

    def arm(self, trigger: str) -> None:
        self.fired.clear()
        self.armed = trigger

    def fire(self) -> None:
        if self.bot is not None:
            self.bot.kill()
        self.armed = None
        self.fired.set()

    def on_together(self, record: TogetherRequest) -> None:
        # Called once the stand-in has created the job, before the answer is sent.
        if self.armed == "submit" and record.method == "POST" and record.status == 200:
            self.fire()

    def on_discord(self, event: str, data: dict[str, Any], intent: int) -> None:
        for attachment in data.get("attachments", []):
            if VIDEO_NAME.fullmatch(attachment.get("filename", "")):
                new = attachment["id"] not in self.seen_videos
                self.seen_videos.add(attachment["id"])
                if new and self.armed == "upload":
                    self.fire()


@dataclass
class OutageRecord:
    """One Discord outage as the run saw it."""

    after_command: int
    trigger: str
    refused_before: int  # the stand-in's refusal count when it started
    refused: int = 0
    commands: int = 0  # commands sent while it was on
    delivering: set[int] = field(default_factory=set)  # jobs seen in "delivering" during it

    def describe(self) -> str:
        return (
            f"after command {self.after_command} ({self.trigger}): {self.refused} requests "
            f"refused, {self.commands} commands sent into it, jobs delivering during it "
            f"{sorted(self.delivering)}"
        )


@dataclass
class ChaosRun:
    seed: int
    rng: random.Random
    discord: DiscordSandbox
    together: TogetherSandbox
    bot: BotProcess
    switch: KillSwitch
    members: list[Member]
    sent: list[int] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    killed_in_submission: bool = False
    outages: list[OutageRecord] = field(default_factory=list)
    starting: bool = False  # bot.start() is under way

    async def send_commands(self) -> None:
        for number in range(1, CHAOS_COMMANDS + 1):
            for index, after in enumerate(CHAOS_OUTAGES):
                if number == after + CHAOS_OUTAGE_LEAD:
                    await self.discord.wait_for(
                        partial(self._outages_started, index + 1), timeout=CHAOS_OUTAGE_WAIT
                    )
            await self._wait_out_outage()
            member = self.rng.choice(self.members)
            prompt = f"{chaos_token(number)} {self.rng.choice(SCENES)}"
            # While the bot is down the command goes nowhere, as on Discord.
            await self.discord.slash_command("video", {"prompt": prompt}, member=member)
            self.sent.append(number)
            if self.discord.in_outage and self.outages:
                self.outages[-1].commands += 1
            await asyncio.sleep(self.rng.uniform(0.3, 1.0))  # a member's pace, not a wait

    async def _wait_out_outage(self) -> None:
        """Members try a few commands while Discord is down, then wait for it to come back."""
        if self.discord.in_outage and self.outages[-1].commands >= CHAOS_OUTAGE_COMMANDS:
            await self.discord.wait_for(self._discord_up, timeout=CHAOS_OUTAGE_SECONDS + 10)

    def _sent_at_least(self, count: int) -> bool:
        return len(self.sent) >= count

    def _discord_up(self) -> bool:
        return not self.discord.in_outage

    def _bot_up(self) -> bool:
        return self.bot.running and not self.starting

    def _outages_started(self, count: int) -> bool:
        return len(self.outages) >= count

    def _job_just_finished(self) -> bool:
        """A job the bot follows has finished at Together; its video is not fetched yet."""
        done = {
            job.id
            for job in self.together.jobs.values()
            if job.status == "completed" and job.downloads == 0
        }
        # Not one whose submission the bot lost (a kill, an unanswered POST): nobody fetches it.
        return bool(done) and any(
            row["together_id"] in done and row["state"] in ("running", "delivering")
            for row in read_jobs(self.bot.database_path)
        )

    async def _outage_due(self) -> bool:
        """Waits for a job to finish at Together with the bot up; False on the timeout."""
        deadline = time.monotonic() + CHAOS_OUTAGE_TRIGGER_TIMEOUT
        while not (self._bot_up() and self._job_just_finished()):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(DB_POLL / 2)
        return True

    async def cut_discord(self) -> None:
        """The two outages: each starts as a job finishes at Together, with the bot up."""
        for after in CHAOS_OUTAGES:
            await self.discord.wait_for(partial(self._sent_at_least, after), timeout=300.0)
            trigger = "a job finished at Together"
            if not await self._outage_due():
                trigger = "no job finished: started on the timeout"
                await self.discord.wait_for(self._bot_up, timeout=CHAOS_OUTAGE_WAIT)
            record = OutageRecord(len(self.sent), trigger, self.discord.outage_refusals)
            self.outages.append(record)
            self.discord.outage_for(CHAOS_OUTAGE_SECONDS)
            while self.discord.in_outage:
                record.delivering.update(
                    row["id"]
                    for row in read_jobs(self.bot.database_path)
                    if row["state"] == "delivering"
                )
                await asyncio.sleep(DB_POLL * 2)
            record.refused = self.discord.outage_refusals - record.refused_before

    async def kill_and_restart(self) -> None:
        for after, trigger in CHAOS_KILLS:
            await self.discord.wait_for(partial(self._sent_at_least, after), timeout=300.0)
            if trigger == "timer":
                await asyncio.sleep(self.rng.uniform(0.0, 2.0))
                self.switch.fire()
            else:
                self.switch.arm(trigger)
                if await self._triggered():
                    self.killed_in_submission |= trigger == "submit"
                else:
                    trigger += " (did not come: killed on the timeout)"
                    self.switch.fire()
            code = await self.bot.wait()
            kill = f"after command {len(self.sent)}: {trigger} (exit {code})"
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # downtime: commands go unanswered
            # A restart while Discord's REST API is down waits for Discord to log in (its
            # retries back off to a minute), so such a start is given the outage and more.
            timeout = CHAOS_OUTAGE_SECONDS + 90 if self.discord.in_outage else None
            if timeout is not None:
                kill += ", restarted during the outage"
            self.kills.append(kill)
            self.starting = True  # no outage starts during a start-up
            try:
                await (self.bot.start() if timeout is None else self.bot.start(timeout=timeout))
            finally:
                self.starting = False

    async def _triggered(self) -> bool:
        """Whether the armed trigger fires within CHAOS_TRIGGER_TIMEOUT of Discord being up
        (an outage holds uploads back, and the submissions of commands it left unanswered)."""
        waited = 0.0
        while not self.switch.fired.is_set():
            if waited >= CHAOS_TRIGGER_TIMEOUT:
                return False
            await asyncio.sleep(DB_POLL)
            if not self.discord.in_outage:
                waited += DB_POLL
        return True

    def scripts(self, count: int) -> list[JobScript]:
        scripts = []
        for _ in range(count):
            failed = self.rng.random() < 0.15
            scripts.append(
                JobScript(
                    queue_seconds=self.rng.uniform(0.2, 1.0),
                    run_seconds=self.rng.uniform(1.0, 8.0),
                    outcome="failed" if failed else "completed",
                    error_message=self.rng.choice(FAILURE_REASONS),
                    cost=None if self.rng.random() < 0.3 else round(self.rng.uniform(0.1, 0.6), 2),
                )
            )
        return scripts


def failure_kind(row: dict[str, Any]) -> str:
    reason = row["failure_reason"] or ""
    if "restarted while this job was being sent" in reason:
        return "interrupted submission"
    if "did not confirm" in reason:
        return "POST unanswered"
    return "at Together" if row["together_id"] else "other"


def settled(discord_sb: DiscordSandbox, rows: list[dict[str, Any]]) -> bool:
    """Every job is final, and every final job's message says so."""
    for row in rows:
        if row["state"] not in FINAL_STATES:
            return False
        message = job_message(discord_sb, row)
        if message is not None and not shows_its_end(message, row):
            return False
    return True


def job_message(discord_sb: DiscordSandbox, row: dict[str, Any]) -> Message | None:
    """The job's progress message: by the stored id, else the newest one showing its prompt."""
    if row["message_id"] is not None:
        return discord_sb.messages.get(row["message_id"])
    about = messages_about(discord_sb, token_of(row["prompt"]))
    return about[-1] if about else None


@pytest.mark.chaos
@pytest.mark.timeout(420)
async def test_chaos_kills_faults_and_restarts_lose_nothing_and_bill_nothing_twice(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "20261121"))
    print(f"chaos seed: {seed} (replay with CHAOS_SEED={seed})")
    started = time.monotonic()
    rng = random.Random(seed)
    switch = KillSwitch()
    async with (
        stand_ins(
            discord_options={"fault_rate": CHAOS_FAULT_RATE, "rng": random.Random(seed + 1)},
            together_options={
                "fault_rate": CHAOS_FAULT_RATE,
                "rng": random.Random(seed + 2),
                "on_request": switch.on_together,
                "default_script": JobScript(queue_seconds=0.5, run_seconds=3.0),
            },
        ) as (discord_sb, together_sb, _member),
        bot_process(
            discord_sb,
            together_sb,
            tmp_path,
            poll_interval=0.5,
            progress_edit_interval=2.0,
            default_user_daily=1000,
            default_guild_daily=1000,
            default_user_concurrent=100,
            default_monthly_budget_usd=10_000,
        ) as bot,
    ):
        switch.bot = bot
        discord_sb.state.listeners.append(switch.on_discord)
        members = [
            discord_sb.add_member(discord_sb.guild, f"chaos{k}") for k in range(CHAOS_MEMBERS)
        ]
        run = ChaosRun(seed, rng, discord_sb, together_sb, bot, switch, members)
        together_sb.script_next(*run.scripts(CHAOS_COMMANDS + 10))
        await asyncio.gather(run.send_commands(), run.kill_and_restart(), run.cut_discord())
        with contextlib.suppress(TimeoutError):
            await wait_for_rows(
                bot.database_path,
                lambda rows: all(r["state"] in FINAL_STATES for r in rows),
                CHAOS_FINISH_TIMEOUT,
            )
            # The edit that shows a final state follows its database write.
            await wait_for_rows(
                bot.database_path, lambda rows: settled(discord_sb, rows), CHAOS_SHOW_TIMEOUT
            )
        exit_code = await bot.terminate()
        rows = read_jobs(bot.database_path)
        logs = bot.log_text()

    states = Counter(row["state"] for row in rows)
    failures = Counter(failure_kind(row) for row in rows if row["state"] == "failed")
    summary = (
        f"seed {seed}: {len(run.sent)} commands, {len(rows)} accepted, {dict(states)}; "
        f"failures: {dict(failures)}; "
        f"kills: {run.kills}; outages: {[o.describe() for o in run.outages]}; "
        f"faults injected: Discord {discord_sb.random_faults.injected}, "
        f"Together {together_sb.faults_injected}; tracebacks logged: {logs.count('Traceback')}; "
        f"{time.monotonic() - started:.0f} s"
    )
    print(summary)
    assert exit_code == 0, summary
    assert len(run.kills) == len(CHAOS_KILLS) and bot.starts == len(CHAOS_KILLS) + 1
    assert discord_sb.random_faults.injected > 0 and together_sb.faults_injected > 0
    assert len(run.outages) == len(CHAOS_OUTAGES), summary
    assert all(outage.refused > 0 for outage in run.outages), summary
    assert discord_sb.outage_refusals == sum(outage.refused for outage in run.outages)
    assert len(rows) >= CHAOS_COMMANDS // 3, f"too few jobs were accepted: {summary}"
    assert "Job engine tick failed" not in logs, summary

    unfinished = [(r["id"], r["state"]) for r in rows if r["state"] not in FINAL_STATES]
    assert not unfinished, f"jobs never finished: {unfinished}; {summary}"

    # Together: at most one POST per job, and none for commands the bot never accepted.
    accepted_tokens = {token_of(row["prompt"]) for row in rows}
    assert len(accepted_tokens) == len(rows), "one job per command"
    posts = Counter(token_of(str((p.body or {}).get("prompt"))) for p in together_sb.posts())
    assert set(posts) <= accepted_tokens, "Together got a job nobody accepted"
    twice = {token: count for token, count in posts.items() if count > 1}
    assert not twice, f"POSTed more than once (billed twice?): {twice}; {summary}"
    together_jobs = Counter(token_of(job.prompt or "") for job in together_sb.jobs.values())
    assert all(count == 1 for count in together_jobs.values()), together_jobs

    problems: list[str] = []
    stale: list[str] = []  # final in SQLite, but the member's message never said so
    interrupted = 0
    for row in rows:
        token = token_of(row["prompt"])
        job_id, state = row["id"], row["state"]
        at_together = [j for j in together_sb.jobs.values() if token_of(j.prompt or "") == token]
        if row["together_id"] is not None:
            if [job.id for job in at_together] != [row["together_id"]]:
                problems.append(f"job {job_id} maps to Together jobs {at_together}")
        elif state == "delivered":
            problems.append(f"job {job_id} was delivered without a Together id")
        if state == "failed" and failure_kind(row) == "interrupted submission":
            interrupted += 1
        uploads = video_uploads(discord_sb, job_id)
        message = job_message(discord_sb, row)
        about = messages_about(discord_sb, token)
        if row["message_id"] is None and len(about) > 1:
            stale.append(f"job {job_id} has no stored message id and {len(about)} messages")
        if state == "delivered":
            if len(uploads) != 1:
                problems.append(f"job {job_id}: {len(uploads)} successful uploads")
            if message is None:
                problems.append(f"job {job_id}: delivered but it has no message")
                continue
            videos = [a.filename for a in message.attachments if VIDEO_NAME.fullmatch(a.filename)]
            if videos != [f"video-{job_id}.mp4"]:
                problems.append(f"job {job_id}: its message holds {videos}")
            if title(message) != READY:
                problems.append(f"job {job_id}: delivered, its message reads {title(message)!r}")
        else:
            if uploads:
                problems.append(f"job {job_id} is {state} but its video was uploaded")
            if state == "cancelled":
                if posts.get(token):
                    problems.append(f"job {job_id} was cancelled after it was sent to Together")
                continue
            if message is None or not shows_its_end(message, row):
                shown = None if message is None else (title(message), embed_field(message, "Why"))
                stale.append(f"job {job_id} is {state} ({row['failure_reason']!r}); shows {shown}")
    # Outages: Discord merely down is a passing fault. A video Together made is never given
    # up for it: the jobs that waited in "delivering" through an outage were delivered (once,
    # as checked above) when Discord was back, every video Together made reached its message,
    # and no job failed because its video "could not be posted".
    by_id = {row["id"]: row for row in rows}
    held = sorted({job_id for outage in run.outages for job_id in outage.delivering})
    if not held:
        problems.append("no job was waiting to be delivered during an outage")
    for job_id in held:
        row = by_id[job_id]
        if row["state"] != "delivered":
            problems.append(
                f"job {job_id} waited through an outage, then ended {row['state']} "
                f"({row['failure_reason']!r})"
            )
    for row in rows:
        if "could not be posted" in (row["failure_reason"] or ""):
            problems.append(f"job {row['id']} gave its video up: {row['failure_reason']!r}")
        made = [
            j
            for j in together_sb.jobs.values()
            if j.id == row["together_id"] and j.status == "completed"
        ]
        if made and row["state"] != "delivered":
            problems.append(f"job {row['id']}: Together made its video, yet it is {row['state']}")
    assert not problems, f"{problems}; {summary}"
    if run.killed_in_submission:
        assert interrupted >= 1, f"the kill during a submission left no interrupted job; {summary}"

    # Quota: what the bot reports is what the rule gives, counted by hand from the rows.
    guild_id = discord_sb.guild.id
    now = time.time()
    counting = [row for row in rows if counts_toward_quota(row)]
    db = await open_database(bot.database_path)
    try:
        quotas = UsageRepository(db)
        report = await quotas.usage_report(guild_id, now, top=CHAOS_MEMBERS + 1)
        assert (report.day_jobs, report.month_jobs) == (len(counting), len(counting)), summary
        assert report.month_usd == pytest.approx(sum(spend(r) for r in counting))
        assert report.day_usd == pytest.approx(sum(spend(r) for r in counting))
        per_member = Counter(row["user_id"] for row in counting)
        assert {top.user_id: top.jobs for top in report.top_members} == dict(per_member)
        for top in report.top_members:
            mine = [r for r in counting if r["user_id"] == top.user_id]
            assert top.spend_usd == pytest.approx(sum(spend(r) for r in mine))
        for member in run.members:
            usage = await quotas.member_usage(guild_id, member.id, now)
            assert usage.user_day == per_member.get(member.id, 0)
            assert usage.guild_day == len(counting)
            assert usage.user_active == 0
    finally:
        await db.close()

    assert not stale, (
        "a crash between a job's final database write and its message edit left the message "
        f"stale after the restart: {stale}; {summary}"
    )
