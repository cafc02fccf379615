"""Run the Together stand-in alone: `python -m sandbox.together --port 8700`.

Any non-empty API key works. Prompts with `[fail]` end failed, `[cancel]` cancelled; `[paused]`
report the status "paused" for a while before running; `[slow]` take 10x longer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from sandbox.together.app import TogetherSandbox
from sandbox.together.scripts import JobScript, RecordedRequest


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.together", description="Local stand-in for Together's video API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8700, help="port (0 picks a free one)")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="seconds a job spends in_progress"
    )
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="fraction of jobs that end failed (0..1)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fraction of requests answered 503/429 without effect (0..1)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.fail_rate <= 1.0:
        parser.error("--fail-rate must be between 0 and 1")
    if not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be between 0 and 1")
    if args.duration < 0:
        parser.error("--duration must not be negative")
    return args


def log_request(record: RecordedRequest) -> None:
    # Method, path and status only: never headers, so no API key reaches the terminal.
    print(f"{record.method} {record.path} {record.status}", flush=True)


async def serve(args: argparse.Namespace) -> None:
    sandbox = TogetherSandbox(
        api_key=None,
        default_script=JobScript(run_seconds=args.duration),
        fail_rate=args.fail_rate,
        fault_rate=args.fault_rate,
        on_request=log_request,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows has no signal handlers
            loop.add_signal_handler(sig, stop.set)
    await sandbox.start(args.host, args.port)
    print(f"Together sandbox at {sandbox.base_url} (any API key; Ctrl-C stops)", flush=True)
    try:
        await stop.wait()
    finally:
        await sandbox.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
