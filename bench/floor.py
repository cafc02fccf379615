"""`python -m bench.floor`: first-response latency of N /video at once, the bot vs discord.py alone.

The burst scenario's 100 ms target assumes a bot can answer 200 commands in 100 ms. This
measures what the library costs before the bot does anything: a discord.py client that answers
"ok" at once (bench/floor_bot.py), against the same Discord stand-in, on the same machine,
alternating runs with the real bot (adaptive settings, as in the burst scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.compression import TimeScale, typical_seconds
from bench.metrics import percentile
from bench.procstats import Sampler
from bench.runner import staged
from bench.scenarios import ADAPTIVE, SCENARIOS, plan_jobs

MEMBERS = 50
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Burst:
    who: str
    p50_ms: float
    p99_ms: float
    cpu_seconds: float | None


async def burst(who: str, commands: int, workdir: Path) -> Burst:
    """Start `who` ("bot" or "floor"), send `commands` /video at once, time the answers."""
    scale = TimeScale(SCENARIOS["burst"].scale)
    planned = plan_jobs(SCENARIOS["burst"], commands, MEMBERS, typical_seconds(), seed=1)
    module = "bot" if who == "bot" else "bench.floor_bot"
    async with staged(ADAPTIVE, planned, scale, workdir, module) as (discord_sb, _, process):
        await process.start()
        try:
            assert process.pid is not None
            sampler = Sampler(process.pid)
            before = sampler.sample()
            people = [discord_sb.add_member(discord_sb.guild, f"m{i}") for i in range(MEMBERS)]
            sent = [
                await discord_sb.slash_command(
                    "video", {"prompt": job.prompt, "model": job.model}, member=people[job.member]
                )
                for job in planned
            ]
            await discord_sb.wait_for(
                lambda: all(i.responded is not None for i in sent), ANSWER_TIMEOUT
            )
            after = sampler.sample()
        finally:
            await process.terminate()
    times = [i.response_time * 1000 for i in sent if i.response_time is not None]
    cpu = after.cpu_seconds - before.cpu_seconds if before and after else None
    return Burst(who, percentile(times, 0.50) or 0.0, percentile(times, 0.99) or 0.0, cpu)


async def run(commands: int, runs: int, workdir: Path) -> list[Burst]:
    results = []
    for n in range(runs):
        for who in ("floor", "bot"):  # alternated, so machine noise falls on both alike
            print(f"bench.floor: run {n + 1}/{runs}, {who} ...", file=sys.stderr, flush=True)
            results.append(await burst(who, commands, workdir / f"{who}-{n}"))
    return results


def render(results: list[Burst], commands: int) -> str:
    lines = [
        f"{commands} /video at once; first response in real milliseconds, CPU in real seconds.",
        "",
        "| Who | Runs | p50 (ms), median of runs | p99 (ms), median of runs | p99 range "
        "| CPU (s) |",
        "|---|---|---|---|---|---|",
    ]
    names = {"floor": "discord.py alone (answers `ok`)", "bot": "this bot"}
    for who in ("floor", "bot"):
        mine = [r for r in results if r.who == who]
        p99s = [r.p99_ms for r in mine]
        cpus = [r.cpu_seconds for r in mine if r.cpu_seconds is not None]
        cpu = f"{statistics.median(cpus):.2f}" if cpus else "n/a"
        lines.append(
            f"| {names[who]} | {len(mine)} | {statistics.median(r.p50_ms for r in mine):.0f} "
            f"| {statistics.median(p99s):.0f} | {min(p99s):.0f}-{max(p99s):.0f} | {cpu} |"
        )
    lines += ["", f"{os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    if sys.platform != "linux":
        print("bench.floor: reads CPU from /proc, so it runs on Linux only", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.commands < 1 or args.runs < 1:
        parser.error("--commands and --runs must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="video-bot-floor-"))
    try:
        results = asyncio.run(run(args.commands, args.runs, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, args.commands))
    return 0


if __name__ == "__main__":
    sys.exit(main())
