"""Chaos across processes: three bot processes on one PostgreSQL, one shard each, one killed.

Three real bot processes (sandbox.process.BotProcess, `python -m bot`) share one PostgreSQL
database (DATABASE_URL; a fresh database per run, on TEST_DATABASE_URL's server) with
SHARD_COUNT=3 and SHARD_IDS=0, 1 and 2, LEASE_SECONDS=5, each with its own DATABASE_PATH
folder. Six servers, two on each shard, three members each, send 60 /video commands on a
seeded schedule, while Together takes each job for a varied time, fails some, and answers a
few requests 503/429. A seeded schedule SIGKILLs a process twice (a seeded pick each time, so
the same process or two different ones; the figures line says which) while it holds jobs:

- the first kill comes the moment Together has created a job that process sent, before the
  process hears the answer (its job is left in `submitting`: whoever takes it over must fail
  it as interrupted, never send it again);
- the second comes once the process holds a job that is being submitted, generated or
  delivered (a random moment of work in flight).

Each time the process is started again after a short downtime, so its shard comes back; the
jobs it held are taken over by whichever process claims them first once their lease runs out.

Commands and dead shards: a command sent to a server whose shard's process is dead reaches no
one (the stand-in keeps it for a session nobody resumes), as on Discord. So the 60 counted
commands go only to servers whose shard is up; during each downtime one more command is sent
to the dead shard and counted apart: it must get no answer and no job. A counted command sent
just before its process died may also never be stored; such a command must have gone to a
process that was then killed, and got no answer.

At the end Together's clock is moved on so it finishes everything, and the checks read the
database (storage.postgres.open_postgres, the repositories) and the stand-ins: every job ended
delivered (its video uploaded once, in its message) or failed with a reason; at most one
POST per job, never a second (a POST answered 503 fails its job; a job whose POST Together
took just as its process was killed is failed as interrupted: Together made that one, the bot
never heard of it), and each job the bot follows at Together was made there once; quota usage
per member and server as the jobs table says; no unfinished job; every job a killed process
held was finished under another process's lease.

The seed is printed; replay a run with CHAOS_SEED=<seed> (the kill plan and Together's scripts
replay exactly; which shard each command goes to depends on which shards are up, so timing
moves the rest a little). Deselect it with `-m "not chaos"`.

Figures of one run (seed 20261202, 2 shared cores, PostgreSQL 15): 60 commands, 60 jobs:
delivered 49, failed 11 (Together's POST answered 503, not sent again: 6; failed at Together:
4; interrupted submission: 1); POSTs accepted 54, answered 503 6, none twice; one job created
at Together whose process was killed before hearing of it (failed as interrupted, refunded);
kills: shard 2 after command 8 (in its POST) holding jobs 5, 7, 8, then shard 2 again after
command 31 (work in flight) holding 7, 24, 28; 3 jobs taken over by a running process and 3
resumed by the restarted one (logs); 2 commands sent to the dead shard, unanswered, no job;
no traceback; 48 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sandbox.discord_api import DiscordSandbox, Guild, Interaction, Member
from sandbox.harness import TOGETHER_KEY
from sandbox.process import BotProcess
from sandbox.together import JobScript, TogetherSandbox
from sandbox.together import RecordedRequest as TogetherRequest
from storage.driver import Database
from storage.postgres import open_postgres
from storage.usage import UsageRepository
from tests.databases import own_database
from tests.e2e.test_resilience import (
    FAILURE_REASONS,
    READY,
    SCENES,
    VIDEO_NAME,
    ManualClock,
    counts_toward_quota,
    failure_kind,
    spend,
    title,
    video_uploads,
)

CHAOS_JOBS = 60
SHARDS = 3
SERVERS_PER_SHARD = 2
MEMBERS_PER_SERVER = 3
LEASE_SECONDS = 5  # the shortest allowed: a takeover waits for it to run out
TOGETHER_FAULT_RATE = 0.05
# The two kills: armed after a seeded number of commands within these ranges, fired by what.
KILLS = (((8, 20), "submit"), ((30, 44), "in flight"))
KILL_TRIGGER_TIMEOUT = 25.0  # then the kill fires anyway, and the figures say so
DOWNTIME = (1.0, 3.0)
FINISH_TIMEOUT = 150.0
DB_POLL = 0.1
IN_FLIGHT = ("submitting", "running", "delivering")
FINAL = ("delivered", "failed", "cancelled", "timed_out")
COLUMNS = (
    "id",
    "state",
    "guild_id",
    "user_id",
    "prompt",
    "message_id",
    "together_id",
    "failure_reason",
    "cost_usd",
    "estimated_cost_usd",
    "lease_owner",
)
TOOK_OVER = re.compile(r"Took over (\d+) job\(s\) whose lease had expired")
RESUMED = re.compile(r"Resumed (\d+) unfinished job\(s\) from the database")


def token(number: int, kind: str = "job") -> str:
    """Unique per command, all of one length ("job": counted, "off": to a dead shard)."""
    return f"x-{kind} {number:03d}:"


def token_of(prompt: str) -> str:
    return prompt[: len(token(0))]


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with own_database("chaos") as url:
        yield url


async def read_rows(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetch_all(f"SELECT {', '.join(COLUMNS)} FROM jobs ORDER BY id")
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


async def owner_of(db: Database, bot: BotProcess) -> str | None:
    """The process id (the lease owner's name) of the running `bot`, from its processes row."""
    row = await db.fetch_one(
        "SELECT id FROM processes WHERE pid = :pid ORDER BY started_at DESC", {"pid": bot.pid}
    )
    return None if row is None else str(row[0])


async def held(db: Database, owner: str, states: tuple[str, ...]) -> list[int]:
    marks = ", ".join(f"'{s}'" for s in states)
    rows = await db.fetch_all(
        f"SELECT id FROM jobs WHERE lease_owner = :owner AND state IN ({marks}) ORDER BY id",
        {"owner": owner},
    )
    return [int(row[0]) for row in rows]


@dataclass
class Command:
    number: int
    token: str
    member: Member
    shard: int
    start: int  # which start of its shard's process it was sent to
    interaction: Interaction


@dataclass
class Kill:
    after: int  # commands sent when it is armed
    trigger: str
    shard: int  # whose process it kills
    owner: str | None = None
    start: int = 0  # the start of the process it ended
    held: list[int] = field(default_factory=list)  # unfinished jobs its lease held
    how: str = ""

    def describe(self) -> str:
        return f"shard {self.shard} after command {self.after} ({self.how}), holding {self.held}"


@dataclass
class Run:
    rng: random.Random
    db: Database
    discord: DiscordSandbox
    bots: list[BotProcess]
    members: dict[int, list[Member]]  # by shard
    commands: list[Command] = field(default_factory=list)
    unheard: list[Command] = field(default_factory=list)  # sent to a dead shard
    plan: list[Kill] = field(default_factory=list)  # drawn from the seed alone, up front
    kills: list[Kill] = field(default_factory=list)
    shard_of_token: dict[str, int] = field(default_factory=dict)
    down: set[int] = field(default_factory=set)  # shards dead or starting
    armed: Kill | None = None
    fired: asyncio.Event = field(default_factory=asyncio.Event)

    def up(self) -> list[int]:
        return [
            s
            for s in range(SHARDS)
            if s not in self.down and self.discord.gateway.shard_connected(s)
        ]

    async def send_commands(self) -> None:
        for number in range(1, CHAOS_JOBS + 1):
            await self.discord.wait_for(lambda: bool(self.up()), timeout=60.0)
            shard = self.rng.choice(self.up())
            self.commands.append(await self._send(token(number), shard))
            await asyncio.sleep(self.rng.uniform(0.2, 0.8))  # members' pace, not a wait

    def _sent_at_least(self, count: int) -> bool:
        return len(self.commands) >= count

    async def _send(self, mark: str, shard: int) -> Command:
        member = self.rng.choice(self.members[shard])
        prompt = f"{mark} {self.rng.choice(SCENES)}"
        self.shard_of_token[mark] = shard
        interaction = await self.discord.slash_command("video", {"prompt": prompt}, member=member)
        return Command(int(mark[-4:-1]), mark, member, shard, self.bots[shard].starts, interaction)

    def on_together(self, record: TogetherRequest) -> None:
        """Fires a "submit" kill once Together has created a job sent by the armed shard's
        process (the job's server is on its shard), before the answer leaves."""
        kill = self.armed
        if kill is None or kill.trigger != "submit" or record.status != 200:
            return
        if record.method != "POST" or not isinstance(record.body, dict):
            return
        if self.shard_of_token.get(token_of(str(record.body.get("prompt")))) == kill.shard:
            self.bots[kill.shard].kill()
            self.down.add(kill.shard)
            self.fired.set()

    async def kill_and_restart(self) -> None:
        for kill in self.plan:
            await self.discord.wait_for(partial(self._sent_at_least, kill.after), timeout=120.0)
            shard, trigger = kill.shard, kill.trigger
            bot = self.bots[shard]
            kill.owner = await owner_of(self.db, bot)
            assert kill.owner is not None, f"shard {shard}'s process has no processes row"
            self.fired.clear()
            if trigger == "submit":
                self.armed = kill
            fired = await self._fire(kill)
            self.armed = None
            bot.kill()  # no-op when the trigger already killed it
            kill.how = trigger if fired else f"{trigger} did not come: killed on the timeout"
            kill.start = bot.starts
            self.down.add(shard)
            code = await bot.wait()
            assert code < 0, f"shard {shard} exited with {code} instead of being killed"
            kill.held = await held(self.db, kill.owner, ("queued", *IN_FLIGHT))
            self.kills.append(kill)
            # While it is down, one command goes to its shard: nobody hears it.
            self.unheard.append(await self._send(token(len(self.kills), "off"), shard))
            await asyncio.sleep(self.rng.uniform(*DOWNTIME))
            await bot.start()
            await self.discord.wait_for_shards(shard)
            self.down.discard(shard)

    async def _fire(self, kill: Kill) -> bool:
        """Waits for the kill's trigger; False when it did not come in time."""
        deadline = time.monotonic() + KILL_TRIGGER_TIMEOUT
        while time.monotonic() < deadline:
            if kill.trigger == "submit" and self.fired.is_set():
                return True
            if kill.trigger == "in flight" and await held(self.db, kill.owner or "", IN_FLIGHT):
                return True
            await asyncio.sleep(DB_POLL / 2)
        return False


def kill_plan(rng: random.Random) -> list[Kill]:
    """When (after which command) and which process (a seeded pick: maybe the same twice)."""
    return [
        Kill(rng.randint(low, high), trigger, rng.randrange(SHARDS))
        for (low, high), trigger in KILLS
    ]


def scripts(rng: random.Random, count: int) -> list[JobScript]:
    """Together's jobs: varied durations, some failures, some without a reported cost."""
    return [
        JobScript(
            queue_seconds=rng.uniform(0.2, 1.0),
            run_seconds=rng.uniform(1.0, 10.0),
            outcome="failed" if rng.random() < 0.12 else "completed",
            error_message=rng.choice(FAILURE_REASONS),
            cost=None if rng.random() < 0.3 else round(rng.uniform(0.1, 0.6), 2),
        )
        for _ in range(count)
    ]


async def until_final(db: Database) -> list[dict[str, Any]]:
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        rows = await read_rows(db)
        if all(row["state"] in FINAL for row in rows) or time.monotonic() >= deadline:
            return rows
        await asyncio.sleep(DB_POLL * 5)


@contextlib.asynccontextmanager
async def processes(
    discord_sb: DiscordSandbox, together_sb: TogetherSandbox, root: Path, url: str
) -> AsyncIterator[list[BotProcess]]:
    bots = [
        BotProcess(
            discord_sb,
            together_sb,
            root / f"shard-{shard}",  # each its own DATABASE_PATH folder: heartbeat, downloads
            poll_interval=0.5,
            progress_edit_interval=2.0,
            database_url=url,
            shard_count=SHARDS,
            shard_ids=(shard,),
            lease_seconds=LEASE_SECONDS,
            default_user_daily=1000,
            default_guild_daily=1000,
            default_user_concurrent=100,
            default_monthly_budget_usd=10_000,
        )
        for shard in range(SHARDS)
    ]
    try:
        for bot in bots:
            await bot.start()
        yield bots
    finally:
        for bot in bots:
            await bot.close()


@pytest.mark.chaos
@pytest.mark.timeout(420)
async def test_three_processes_on_one_postgres_lose_nothing_when_one_is_killed_twice(
    tmp_path: Path, database_url: str
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "20261202"))
    print(f"chaos seed: {seed} (replay with CHAOS_SEED={seed})")
    started = time.monotonic()
    rng = random.Random(seed)  # the kill plan and Together's scripts
    send_rng = random.Random(seed + 1)  # the members: who sends what, when (shards up vary)
    clock = ManualClock()
    hooks: list[Callable[[TogetherRequest], None]] = []  # the kill trigger, once there is one
    async with (
        DiscordSandbox() as discord_sb,
        TogetherSandbox(
            api_key=TOGETHER_KEY,
            clock=clock,
            fault_rate=TOGETHER_FAULT_RATE,
            rng=random.Random(seed + 2),
            on_request=lambda record: [hook(record) for hook in hooks],
        ) as together_sb,
    ):
        servers: dict[int, list[Guild]] = {
            shard: [
                discord_sb.add_guild(f"shard {shard} server {k}", shard=(shard, SHARDS))
                for k in range(SERVERS_PER_SHARD)
            ]
            for shard in range(SHARDS)
        }
        members = {
            shard: [
                discord_sb.add_member(guild, f"s{shard}-{guild.id % 1000}-m{m}")
                for guild in guilds
                for m in range(MEMBERS_PER_SERVER)
            ]
            for shard, guilds in servers.items()
        }
        together_sb.script_next(*scripts(rng, CHAOS_JOBS + 20))
        db = await open_postgres(database_url)  # the test's own look
        try:
            async with processes(discord_sb, together_sb, tmp_path, database_url) as bots:
                run = Run(send_rng, db, discord_sb, bots, members, plan=kill_plan(rng))
                hooks.append(run.on_together)
                await asyncio.gather(run.send_commands(), run.kill_and_restart())
                clock.advance(600.0)  # Together finishes whatever is still in its queue
                rows = await until_final(db)
                codes = [await bot.terminate() for bot in bots]
                logs = {shard: bot.log_text() for shard, bot in enumerate(bots)}
            usage = UsageRepository(db)
            now = time.time()
            reports = {
                guild.id: await usage.usage_report(guild.id, now, top=100)
                for guilds in servers.values()
                for guild in guilds
            }
            member_usage = {
                member.id: await usage.member_usage(member.guild_id, member.id, now)
                for shard_members in members.values()
                for member in shard_members
            }
            rows = await read_rows(db)
        finally:
            await db.close()

    # -- the figures -------------------------------------------------------------------------
    states = Counter(row["state"] for row in rows)
    failures = Counter(failure_kind(row) for row in rows if row["state"] == "failed")
    posts = together_sb.posts()
    accepted = Counter(
        token_of(str((p.body or {}).get("prompt"))) for p in posts if p.status == 200
    )
    sent = Counter(token_of(str((post.body or {}).get("prompt"))) for post in posts)
    refused_posts = sum(1 for p in posts if p.status != 200)
    orphans = sum(
        1 for row in rows if row["together_id"] is None and accepted.get(token_of(row["prompt"]))
    )
    takeovers = sum(int(n) for log in logs.values() for n in TOOK_OVER.findall(log))
    resumed = sum(int(n) for log in logs.values() for n in RESUMED.findall(log))
    by_token = {token_of(row["prompt"]): row for row in rows}
    unstored = [c for c in run.commands if c.token not in by_token]
    all_logs = "".join(logs.values())
    summary = (
        f"seed {seed}: {len(run.commands)} commands to live shards, {len(rows)} jobs: "
        f"delivered {states['delivered']}, failed {states['failed']} {dict(failures)}, "
        f"other {dict((s, n) for s, n in states.items() if s not in ('delivered', 'failed'))}; "
        f"commands never stored (sent just before a kill) {[c.number for c in unstored]}; "
        f"sent to a dead shard {len(run.unheard)}; POSTs accepted {sum(accepted.values())}, "
        f"answered 503 (failed, not sent again) {refused_posts}, accepted but unheard "
        f"(the bot was killed) {orphans}; Together faults {together_sb.faults_injected}; "
        f"kills: {[k.describe() for k in run.kills]}; "
        f"jobs taken over by a running process {takeovers}, "
        f"resumed by a restarted one {resumed} (logs); "
        f"tracebacks {all_logs.count('Traceback')}; {time.monotonic() - started:.0f} s"
    )
    print(summary)

    # -- the processes -----------------------------------------------------------------------
    assert codes == [0] * SHARDS, summary
    assert len(run.kills) == len(KILLS), summary
    assert sum(bot.starts for bot in bots) == SHARDS + len(KILLS), summary
    assert "Job engine tick failed" not in all_logs, summary
    assert len(run.commands) == CHAOS_JOBS

    # -- every command: a job, or lost with its process ---------------------------------------
    killed_starts = {(k.shard, k.start) for k in run.kills}
    for command in unstored:
        assert (command.shard, command.start) in killed_starts, (
            f"command {command.number} went to a process that lived on, yet has no job; {summary}"
        )
        assert command.interaction.responded is None, f"{command.number} was answered, unstored"
    assert len(unstored) <= len(KILLS) * 3, f"too many commands lost: {summary}"
    for command in run.unheard:
        assert command.token not in by_token, f"a command to a dead shard was stored: {summary}"
        assert command.interaction.responded is None
    assert set(by_token) <= {c.token for c in run.commands}, "a job nobody asked for"
    assert len(by_token) == len(rows), "one job per command"

    # -- every job ended, once ---------------------------------------------------------------
    unfinished = [(row["id"], row["state"]) for row in rows if row["state"] not in FINAL]
    assert not unfinished, f"jobs never finished: {unfinished}; {summary}"
    problems: list[str] = []
    for row in rows:
        job_id, state, mark = row["id"], row["state"], token_of(row["prompt"])
        uploads = video_uploads(discord_sb, job_id)
        if state == "delivered":
            message = discord_sb.messages.get(row["message_id"] or 0)
            videos = [] if message is None else message.attachments
            names = [a.filename for a in videos if VIDEO_NAME.fullmatch(a.filename)]
            if len(uploads) != 1 or names != [f"video-{job_id}.mp4"]:
                problems.append(f"job {job_id}: {len(uploads)} uploads, its message holds {names}")
            elif message is None or title(message) != READY:
                problems.append(f"job {job_id}: delivered, its message does not say so")
        elif state == "failed":
            if not (row["failure_reason"] or "").strip():
                problems.append(f"job {job_id} failed without a reason")
            if uploads:
                problems.append(f"job {job_id} failed, yet its video was uploaded")
        else:
            problems.append(f"job {job_id} ended {state} ({row['failure_reason']!r})")
        # One POST per job at most, never a second one (a POST answered 503 may have
        # created a job: it is failed, not sent again); Together's own job, if any, is the
        # one the bot follows, or, for a submission cut off by a kill, one it never heard of.
        if sent.get(mark, 0) > 1:
            problems.append(f"job {job_id} was POSTed {sent[mark]} times")
        made = [j.id for j in together_sb.jobs.values() if token_of(j.prompt or "") == mark]
        if row["together_id"] is not None:
            if made != [row["together_id"]] or accepted.get(mark) != 1:
                problems.append(f"job {job_id} maps to Together jobs {made}")
        elif made and failure_kind(row) != "interrupted submission":
            problems.append(f"job {job_id} is unknown to the bot at Together: {made}")
        if state == "delivered" and row["together_id"] is None:
            problems.append(f"job {job_id} delivered without reaching Together")
    assert not problems, f"{problems}; {summary}"
    assert set(accepted) <= set(by_token), "Together made a job nobody accepted"

    # -- no job held by a dead process -------------------------------------------------------
    # Final writes need the lease: each job a killed process held was ended by another
    # process, after claiming it (that one may have been killed later in turn).
    for kill in run.kills:
        for job_id in kill.held:
            row = next(r for r in rows if r["id"] == job_id)
            assert row["lease_owner"] != kill.owner, (
                f"job {job_id}, held by a killed process, was never taken over: {row}; {summary}"
            )
    if run.kills[0].how == "submit":  # its job was cut off in its POST, and said so
        assert orphans >= 1 and failures["interrupted submission"] >= 1, summary
    held_at_kills = {job_id for kill in run.kills for job_id in kill.held}
    assert takeovers + resumed >= len(held_at_kills), f"takeovers missing from logs: {summary}"

    # -- quota: what the bot reports is what the jobs table gives ----------------------------
    counting = [row for row in rows if counts_toward_quota(row)]
    for guild_id, report in reports.items():
        mine = [row for row in counting if row["guild_id"] == guild_id]
        assert (report.day_jobs, report.month_jobs) == (len(mine), len(mine)), summary
        assert report.month_usd == pytest.approx(sum(spend(r) for r in mine))
        per_member = Counter(row["user_id"] for row in mine)
        assert {top.user_id: top.jobs for top in report.top_members} == dict(per_member)
        for top in report.top_members:
            theirs = [r for r in mine if r["user_id"] == top.user_id]
            assert top.spend_usd == pytest.approx(sum(spend(r) for r in theirs))
    member_guild = {m.id: m.guild_id for ms in members.values() for m in ms}
    for member_id, usage_now in member_usage.items():
        assert usage_now.user_day == sum(1 for r in counting if r["user_id"] == member_id)
        assert usage_now.user_active == 0
        assert usage_now.guild_day == sum(
            1 for r in counting if r["guild_id"] == member_guild[member_id]
        )
