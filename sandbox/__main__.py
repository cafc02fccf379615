"""`python -m sandbox demo --prompt "..."`: the whole /video flow, no tokens, no network."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox import demo


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="send one /video through the real bot and print it")
    run.add_argument("--prompt", default="a cat surfing a wave at sunset")
    run.add_argument("--model", default=None, help="a model id; default: the bot's default")
    run.add_argument(
        "--out", type=Path, default=Path("sandbox-demo"), help="where to save the video"
    )
    run.add_argument(
        "--seconds", type=float, default=6.0, help="how long Together's stand-in takes"
    )
    run.add_argument(
        "--extend",
        type=int,
        default=0,
        choices=range(0, 6),
        metavar="N",
        help="then press Extend N times (0 to 5) and Join the parts",
    )
    run.add_argument("--verbose", action="store_true", help="also print the bot's own log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return demo.main(args.prompt, args.model, args.out, args.seconds, args.verbose, args.extend)


if __name__ == "__main__":
    sys.exit(main())
