"""One run: fresh stand-ins and database, the bot as a subprocess, the scenario's commands.

Everything measured comes from the stand-ins' records (time.monotonic, one clock for both)
and from /proc; nothing is read from the bot's own logs or database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.compression import TimeScale, bot_settings, write_models_file
from bench.procstats import ProcStats, Sampler
from bench.scenarios import PlannedJob, Scenario, Strategy, job_index
from bench.stands import PlannedTogether, job_script, limit_discord, new_account_limit
from sandbox.discord_api import DiscordSandbox, Interaction, Member, RecordedRequest
from sandbox.process import STOP_TIMEOUT, BotProcess
from sandbox.together import TogetherSandbox
from sandbox.together.app import VIDEOS_PATH
from sandbox.together.limits import DynamicLimit

READY_TITLE = "Your video is ready"
FAILED_TITLES = ("The video could not be made", "The video took too long", "Cancelled")
VIDEO_FILE = re.compile(r"video-\d+\.(mp4|webm)")
CALLBACK = "POST /interactions/{interaction}/{token}/callback"
CHANNEL_MESSAGE = re.compile(r"^/channels/\d+/messages/(\d+)$")
SLACK = 60.0  # real seconds added to a run's time limit


@dataclass
class RunRecord:
    """What one run produced, in real (compressed) time; metrics.py turns it into figures."""

    scenario: Scenario
    strategy: Strategy
    scale: float
    planned: list[PlannedJob]
    budget: float  # the bot's TOGETHER_REQUESTS_PER_SECOND in this run (real), 0: none
    first_response: dict[int, float] = field(default_factory=dict)  # job -> seconds
    # Commands the bot answered after Discord's 3 s (refused as unknown) or never answered.
    missed_deadline: set[int] = field(default_factory=set)
    refused: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    completed_at: dict[int, float] = field(default_factory=dict)  # job -> done at Together
    delivered_at: dict[int, float] = field(default_factory=dict)  # job -> video in Discord
    together_times: list[float] = field(default_factory=list)  # every /v2/videos request
    together_429_times: list[float] = field(default_factory=list)  # those answered 429
    polls: dict[int, list[float]] = field(default_factory=dict)  # job -> its GETs
    discord_requests: int = 0
    discord_429s: int = 0
    # One entry per bot process, in start order (one process unless the run is sharded).
    process_stats: list[ProcStats | None] = field(default_factory=list)
    process_cpu_at_first_command: list[float | None] = field(default_factory=list)
    wall_seconds: float = 0.0
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def stats(self) -> ProcStats | None:
        """The first (in a one-process run: the only) bot process's figures."""
        return self.process_stats[0] if self.process_stats else None

    @property
    def cpu_at_first_command(self) -> float | None:
        return self.process_cpu_at_first_command[0] if self.process_cpu_at_first_command else None


class DeliveryWatch:
    """Follows the Discord stand-in's requests: which job's video arrived, and when."""

    def __init__(
        self,
        interactions: dict[int, Interaction],
        requests: list[RecordedRequest],
        deadline: float,
    ):
        self._jobs = {interaction.id: index for index, interaction in interactions.items()}
        self._interactions = interactions
        self._requests = requests
        self._deadline = deadline
        self._seen = 0
        self.delivered: dict[int, float] = {}
        self.failed: set[int] = set()

    def refused(self) -> set[int]:
        return {i for i, it in self._interactions.items() if it.responded and it.ephemeral}

    def missed(self) -> set[int]:
        """Commands with no first response within Discord's deadline: the member saw an error,
        and the bot cancels the job when its late answer is refused."""
        now = time.monotonic()
        return {
            index
            for index, it in self._interactions.items()
            if it.responded is None and now - it.sent_at > self._deadline
        }

    def finished(self) -> bool:
        self.scan()
        ended = set(self.delivered) | self.failed | self.refused() | self.missed()
        return len(ended) >= len(self._interactions)

    def scan(self) -> None:
        new = self._requests[self._seen :]
        self._seen += len(new)
        for request in new:
            index = self._job_of(request)
            if index is None or request.status >= 300 or request.method not in ("PATCH", "POST"):
                continue
            title = _embed_title(request)
            video = any(VIDEO_FILE.fullmatch(f.filename) for f in request.files)
            if (video or title == READY_TITLE) and index not in self.delivered:
                self.delivered[index] = request.time
            elif title in FAILED_TITLES:
                self.failed.add(index)

    def _job_of(self, request: RecordedRequest) -> int | None:
        if request.interaction_id is not None:
            return self._jobs.get(request.interaction_id)
        # After the interaction token, edits go through the channel: match the message id.
        match = CHANNEL_MESSAGE.match(request.path)
        if match is None:
            return None
        for index, interaction in self._interactions.items():
            message = interaction.original_message
            if message is not None and message.id == int(match.group(1)):
                return index
        return None


def _embed_title(request: RecordedRequest) -> str | None:
    body = request.json if isinstance(request.json, dict) else {}
    embeds = body.get("embeds") or []
    first = embeds[0] if embeds and isinstance(embeds[0], dict) else {}
    title = first.get("title")
    return title if isinstance(title, str) else None


def time_limit(scenario: Scenario, strategy: Strategy, planned: list[PlannedJob]) -> float:
    """Virtual seconds a run may take before its unfinished jobs are reported as stuck."""
    longest = max((job.length for job in planned), default=0.0)
    # Under a budget every job needs its POST and a dozen or so polls, in turn.
    rate = strategy.start or strategy.budget  # a learning budget starts at its start rate
    queued = len(planned) * 15 / rate if rate else 0.0
    return scenario.arrival_window + 1.5 * longest + queued + 120.0


@contextlib.asynccontextmanager
async def stand_ins(
    strategy: Strategy,
    planned: list[PlannedJob],
    scale: TimeScale,
    workdir: Path,
    dynamic_limit: DynamicLimit | None = None,
) -> AsyncIterator[tuple[DiscordSandbox, PlannedTogether, dict[str, Any]]]:
    """A fresh workdir, both stand-ins set up for the planned jobs, and the bot's settings."""
    # A database left from an earlier run would be resumed by the bot: start from nothing.
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    models_file = write_models_file(workdir / "models.json", scale)
    settings = bot_settings(strategy, scale, len(planned), models_file)
    scripts = {job.index: job_script(job, scale) for job in planned}
    async with (
        DiscordSandbox() as discord_sb,
        PlannedTogether(scripts, dynamic_limit=dynamic_limit) as together_sb,
    ):
        limit_discord(discord_sb, scale)
        yield discord_sb, together_sb, settings


@contextlib.asynccontextmanager
async def staged(
    strategy: Strategy,
    planned: list[PlannedJob],
    scale: TimeScale,
    workdir: Path,
    module: str = "bot",
    dynamic_limit: DynamicLimit | None = None,
) -> AsyncIterator[tuple[DiscordSandbox, PlannedTogether, BotProcess]]:
    """The stand-ins, as stand_ins sets them up, and one (unstarted) bot on SQLite."""
    async with stand_ins(strategy, planned, scale, workdir, dynamic_limit) as (
        discord_sb,
        together_sb,
        settings,
    ):
        yield (
            discord_sb,
            together_sb,
            BotProcess(discord_sb, together_sb, workdir, module=module, **settings),
        )


async def run_case(
    scenario: Scenario,
    strategy: Strategy,
    planned: list[PlannedJob],
    scale: TimeScale,
    workdir: Path,
    members: int,
) -> RunRecord:
    limit = new_account_limit(scale) if scenario.new_account else None
    async with staged(strategy, planned, scale, workdir, dynamic_limit=limit) as (
        discord_sb,
        together_sb,
        bot,
    ):
        budget = bot.settings.together_requests_per_second
        record = RunRecord(scenario, strategy, scale.factor, planned, budget)
        try:
            await bot.start()
            first_request = len(discord_sb.requests)
            guild = discord_sb.guild
            people = [discord_sb.add_member(guild, f"member-{i}") for i in range(members)]
            interactions = await drive(record, [bot], discord_sb, people, scale)
        finally:
            await bot.close()
        collect(record, interactions, discord_sb, together_sb, first_request)
    return record


async def drive(
    record: RunRecord,
    bots: Sequence[BotProcess],
    discord_sb: DiscordSandbox,
    people: Sequence[Member],
    scale: TimeScale,
) -> dict[int, Interaction]:
    """Send the commands on schedule (job.member picks who), wait until every job has ended,
    stop the bots."""
    samplers = []
    for bot in bots:
        assert bot.pid is not None
        samplers.append(Sampler(bot.pid))
        samplers[-1].start()
        at_start = samplers[-1].sample()
        record.process_cpu_at_first_command.append(at_start.cpu_seconds if at_start else None)
    started = time.monotonic()
    interactions: dict[int, Interaction] = {}
    for job in record.planned:
        wait = started + scale.real(job.arrival) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        interactions[job.index] = await discord_sb.slash_command(
            "video", {"prompt": job.prompt, "model": job.model}, member=people[job.member]
        )
    watch = DeliveryWatch(interactions, discord_sb.requests, discord_sb.first_response_deadline)
    limit = scale.real(time_limit(record.scenario, record.strategy, record.planned)) + SLACK
    with contextlib.suppress(TimeoutError):
        await discord_sb.wait_for(
            lambda: watch.finished() or not all(bot.running for bot in bots), limit
        )
    record.wall_seconds = time.monotonic() - started
    # The last reading before SIGTERM: VmHWM and CPU time die with the process.
    record.process_stats = [await sampler.stop() for sampler in samplers]
    for number, bot in enumerate(bots, 1):
        name = "the bot" if len(bots) == 1 else f"bot process {number}"
        if not bot.running:
            record.problems.append(f"{name} exited early with code {bot.returncode}")
        try:
            code = await bot.terminate()
        except TimeoutError:
            # Reported, not raised: the other runs' figures still count.
            record.problems.append(f"{name} did not stop within {STOP_TIMEOUT:g} s of SIGTERM")
            await bot.close()
            code = bot.returncode if bot.returncode is not None else -9
        if code != 0:
            record.problems.append(f"{name}'s exit code was {code}")
        record.exit_code = code if record.exit_code in (0, None) else record.exit_code
    return interactions


def collect(
    record: RunRecord,
    interactions: dict[int, Interaction],
    discord_sb: DiscordSandbox,
    together_sb: TogetherSandbox,
    first_request: int,
) -> None:
    watch = DeliveryWatch(interactions, discord_sb.requests, discord_sb.first_response_deadline)
    watch.scan()
    record.delivered_at = dict(watch.delivered)
    record.failed = set(watch.failed)
    record.refused = watch.refused()
    record.missed_deadline = watch.missed()
    # A late answer is refused (404) but still timed: the first callback attempt counts.
    attempts: dict[int, float] = {}
    for sent in discord_sb.requests:
        if sent.route == CALLBACK and sent.interaction_id is not None:
            attempts.setdefault(sent.interaction_id, sent.time)
    for index, interaction in interactions.items():
        if interaction.response_time is not None:
            record.first_response[index] = interaction.response_time
        elif interaction.id in attempts:
            record.first_response[index] = attempts[interaction.id] - interaction.sent_at
    rest = discord_sb.requests[first_request:]
    record.discord_requests = len(rest)
    record.discord_429s = sum(1 for r in discord_sb.requests if r.status == 429)
    job_of: dict[str, int] = {}
    for sandbox_job in together_sb.jobs.values():
        planned = job_index(sandbox_job.prompt)
        if planned is None:
            continue
        job_of[sandbox_job.id] = planned
        # The stand-in's job timeline is on time.monotonic, like the Discord stand-in's records.
        record.completed_at[planned] = sandbox_job.created_at + sandbox_job.script.done_after
    polls: dict[int, list[float]] = defaultdict(list)
    for request in together_sb.requests:
        if not (request.auth_ok and request.path.startswith(VIDEOS_PATH)):
            continue
        record.together_times.append(request.time)
        if request.status == 429:
            record.together_429_times.append(request.time)
        if request.method == "GET":
            polled = job_of.get(request.path.rsplit("/", 1)[-1])
            if polled is not None:
                polls[polled].append(request.time)
    record.together_times.sort()
    record.together_429_times.sort()
    record.polls = {index: sorted(times) for index, times in polls.items()}
    missing = len(interactions) - len(record.delivered_at | dict.fromkeys(record.refused))
    if missing:
        record.problems.append(
            f"{missing} of {len(interactions)} jobs not delivered ({len(record.failed)} failed, "
            f"{len(record.refused)} refused, {len(record.missed_deadline)} not answered within "
            f"Discord's {discord_sb.first_response_deadline:g} s)"
        )
