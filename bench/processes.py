"""`python -m bench.processes`: burst and overload with 1, 2 and 3 bot processes on PostgreSQL.

Each run: N processes, one shard each, on a new database of their own on the server that
--database-url names (the login needs CREATEDB; the database is dropped after the run). Only
the bot's own strategy (the adaptive scheduler, a fixed budget of 5 requests per virtual
second in every process) is run. The section is written into bench/results.md (--out),
replacing an earlier one; the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.compression import TimeScale, typical_seconds
from bench.metrics import job_lines
from bench.runner import run_case
from bench.scenarios import ADAPTIVE, SCENARIOS, plan_jobs
from bench.sharded import run_sharded_case
from bench.sharded_report import EXPLANATION, ProcessesMetrics, compute_processes, table

DEFAULT_MEMBERS = 50
DEFAULT_OUT = Path("bench/results.md")
HEADING = "## Several processes on PostgreSQL"
CHOICES = ("burst", "overload")  # the scenarios that load the budget and the first response
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ProcessesResult:
    rows: list[ProcessesMetrics]
    markdown: str
    notes: list[str] = field(default_factory=list)


async def run_processes_bench(
    scenarios: Sequence[str],
    process_counts: Sequence[int],
    server_url: str,
    *,
    workdir: Path,
    scale: float | None = None,
    members: int = DEFAULT_MEMBERS,
    seed: int = 1,
    jobs: int | None = None,
    sqlite: bool = False,
    command: str = "",
) -> ProcessesResult:
    started = time.monotonic()
    measured = revision()  # the code that runs, before anything may be committed meanwhile
    typical = typical_seconds()
    rows: list[ProcessesMetrics] = []
    notes: list[str] = []
    for name in scenarios:
        scenario = SCENARIOS[name]
        timescale = TimeScale(scale or scenario.scale)
        planned = plan_jobs(scenario, jobs or scenario.jobs, members, typical, seed)
        if sqlite:
            print(f"bench: {name} on SQLite: {len(planned)} jobs ...", file=sys.stderr, flush=True)
            record = await run_case(
                scenario, ADAPTIVE, planned, timescale, workdir / f"{name}-sqlite", members
            )
            rows.append(compute_processes(record, 1, "SQLite"))
            notes += [f"{name} on SQLite: PROBLEM: {problem}" for problem in record.problems]
        for count in process_counts:
            label = f"{name} with {count} process{'es' if count > 1 else ''}"
            print(f"bench: {label}: {len(planned)} jobs ...", file=sys.stderr, flush=True)
            folder = workdir / f"{name}-{count}p"
            record = await run_sharded_case(
                scenario, ADAPTIVE, planned, timescale, folder, members, count, server_url
            )
            (folder / "jobs.csv").write_text("\n".join(job_lines(record)) + "\n")
            metrics = compute_processes(record, count)
            rows.append(metrics)
            print(
                f"bench: {label}: done in {metrics.base.wall_seconds:.0f} s, "
                f"{metrics.base.delivered}/{metrics.base.jobs} delivered",
                file=sys.stderr,
                flush=True,
            )
            notes += [f"{label}: PROBLEM: {problem}" for problem in record.problems]
        notes += [f"{name}: {floor}" for floor in timescale.floors]
    notes.append(
        f"Seed {seed}, {members} members spread over one server per shard; whole run "
        f"{time.monotonic() - started:.0f} s."
    )
    return ProcessesResult(rows, render(rows, notes, command, measured), notes)


def shared_budget_present() -> bool:
    """Whether this checkout has the shared Together budget across processes."""
    return importlib.util.find_spec("bot.engine.shared_budget") is not None


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip() + ", "
                break
    return (
        f"{model}{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def revision() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return found.stdout.strip()


def render(
    rows: Sequence[ProcessesMetrics], notes: Sequence[str], command: str, commit: str
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shared = (
        "yes (bot/engine/shared_budget.py: the processes share the account's rate)"
        if shared_budget_present()
        else "no: each process keeps its own TOGETHER_REQUESTS_PER_SECOND, so N processes "
        "may send up to N times the account's budget"
    )
    parts = [
        HEADING,
        "",
        f"`{command}` on {now}, commit {commit}; {machine()}.",
        f"Shared Together budget across processes in this checkout: {shared}.",
        "",
        EXPLANATION,
        "",
        table(rows),
    ]
    if notes:
        parts += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(parts) + "\n"


def write_section(path: Path, section: str) -> None:
    """Put `section` at the end of `path`, in place of an earlier one under the same heading."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    kept = text.split(HEADING, 1)[0].rstrip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((kept + "\n\n" if kept else "") + section, encoding="utf-8")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give process counts like 1,2,3") from None
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: process counts must be 1 or more")
    return counts


def _scenarios(text: str) -> list[str]:
    names = text.split(",")
    unknown = [name for name in names if name not in CHOICES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown)}: choose from {', '.join(CHOICES)}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.processes", description=__doc__)
    parser.add_argument("--processes", type=_counts, default=[1, 2, 3], help="e.g. 1,2,3")
    parser.add_argument("--scenario", type=_scenarios, default=list(CHOICES))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", ""),
        help="a PostgreSQL server whose login may CREATE DATABASE (default: TEST_DATABASE_URL)",
    )
    parser.add_argument("--scale", type=float, default=None)
    parser.add_argument("--members", type=int, default=DEFAULT_MEMBERS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=None, help="override each scenario's jobs")
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="also run each scenario with one process on SQLite, for comparison",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=None, help="keep bot logs here")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url (or TEST_DATABASE_URL) must be a postgresql:// URL")
    if (
        (args.scale is not None and args.scale <= 0)
        or args.members < 1
        or (args.jobs is not None and args.jobs < 1)
    ):
        parser.error("--scale, --members and --jobs must be positive")
    return args


def shown_command(argv: Sequence[str]) -> str:
    """The command line as run, with the database URL (it may hold a password) left out."""
    shown, hide = ["python -m bench.processes"], False
    for arg in argv:
        if hide:
            shown.append("URL")
        elif arg.startswith("--database-url="):
            shown.append("--database-url=URL")
        else:
            shown.append(arg)
        hide = arg == "--database-url"
    return " ".join(shown)


def main(argv: Sequence[str] | None = None) -> int:
    if sys.platform != "linux":
        print("bench: reads CPU from /proc, so it runs on Linux only", file=sys.stderr)
        return 2
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="video-bot-bench-processes-"))
    try:
        result = asyncio.run(
            run_processes_bench(
                args.scenario,
                args.processes,
                args.database_url,
                workdir=workdir,
                scale=args.scale,
                members=args.members,
                seed=args.seed,
                jobs=args.jobs,
                sqlite=args.sqlite,
                command=shown_command(argv),
            )
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(result.markdown)
    write_section(args.out, result.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
