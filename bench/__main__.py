"""`python -m bench`: each scenario with the adaptive scheduler and the 5 s baseline; one table."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.compression import TimeScale, typical_seconds
from bench.metrics import Metrics, compute, job_lines
from bench.report import render
from bench.runner import run_case
from bench.scenarios import SCENARIOS, plan_jobs

DEFAULT_MEMBERS = 50
DEFAULT_OUT = Path("bench/results.md")


@dataclass
class BenchResult:
    rows: list[Metrics]
    markdown: str
    notes: list[str] = field(default_factory=list)


async def run_bench(
    scenarios: Sequence[str],
    *,
    scale: float | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 1,
    jobs: int | None = None,
    workdir: Path,
) -> BenchResult:
    started = time.monotonic()
    typical = typical_seconds()
    rows: list[Metrics] = []
    notes: list[str] = []
    for name in scenarios:
        scenario = SCENARIOS[name]
        timescale = TimeScale(scale or scenario.scale)
        planned = plan_jobs(scenario, jobs or scenario.jobs, members, typical, seed)
        for strategy in scenario.strategies:
            label = f"{scenario.name}/{strategy.name}"
            print(f"bench: {label}: {len(planned)} jobs ...", file=sys.stderr, flush=True)
            slug = f"{scenario.name}-{strategy.folder}"
            record = await run_case(scenario, strategy, planned, timescale, workdir / slug, members)
            metrics = compute(record)
            (workdir / slug / "jobs.csv").write_text("\n".join(job_lines(record)) + "\n")
            rows.append(metrics)
            print(
                f"bench: {label}: done in {metrics.wall_seconds:.0f} s, "
                f"{metrics.delivered}/{metrics.jobs} delivered",
                file=sys.stderr,
                flush=True,
            )
            notes.append(
                f"{label}: {metrics.wall_seconds:.0f} s real; most Together requests in any "
                f"one virtual second: {metrics.peak_in_virtual_second}"
                + "".join(f"; PROBLEM: {p}" for p in metrics.problems)
            )
        notes += [f"{scenario.name}: {floor}" for floor in timescale.floors]
    notes.append(
        f"Seed {seed}, {members} members; {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}; "
        f"whole run {time.monotonic() - started:.0f} s."
    )
    return BenchResult(rows, render(rows, notes), notes)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="time compression for every scenario (default: each its own, see the table)",
    )
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=None, help="override each scenario's jobs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep databases and bot logs here"
    )
    args = parser.parse_args(argv)
    if (
        (args.scale is not None and args.scale <= 0)
        or args.members < 1
        or (args.jobs is not None and args.jobs < 1)
    ):
        parser.error("--scale, --members and --jobs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    if sys.platform != "linux":
        print("bench: reads CPU and memory from /proc, so it runs on Linux only", file=sys.stderr)
        return 2
    args = parse_args(argv)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="video-bot-bench-"))
    try:
        result = asyncio.run(
            run_bench(
                names,
                scale=args.scale,
                members=args.members,
                seed=args.seed,
                jobs=args.jobs,
                workdir=workdir,
            )
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(result.markdown)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(result.markdown, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
