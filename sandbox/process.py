"""Run the real bot as a subprocess (`python -m bot`) against in-process stand-ins.

The in-process harness (sandbox.harness) cannot be killed mid-write or sent SIGTERM; this can.
The child gets its settings from the environment only, and runs in `workdir`, so no `.env` is
read. Its output (stdout and stderr) goes to one log file per start in `workdir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import SecretStr

from bot.settings import Settings
from bot.sharding import syncs_commands
from sandbox.discord_api import DiscordSandbox
from sandbox.harness import TOGETHER_KEY, sandbox_settings
from sandbox.together import TogetherSandbox

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_POLL = 0.02
# Only these are inherited from the test's environment: no stray DISCORD_TOKEN or the like.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_PR_SET_PDEATHSIG = 1
_COMMANDS_SYNC = "PUT /applications/{app}/commands"
_LOGGED_IN = "Logged in as"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make `python -m bot` read exactly these settings."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, tuple):  # SHARD_IDS
            value = ",".join(str(item) for item in value)
        env[name.upper()] = str(value)
    return env


class BotProcess:
    """`python -m bot` as a child process, pointed at the given stand-ins.

    ``settings`` override the sandbox defaults of ``sandbox.harness.sandbox_settings`` (same
    names as ``Settings`` fields, e.g. ``poll_interval=0.2``, ``log_level="DEBUG"``). The
    Together key defaults to the stand-in's own key. The database is ``workdir/bot.sqlite3``
    unless overridden, so a new start picks up where the last one stopped.
    """

    def __init__(
        self,
        discord_sb: DiscordSandbox,
        together_sb: TogetherSandbox,
        workdir: Path,
        *,
        module: str = "bot",
        **settings: Any,
    ) -> None:
        settings.setdefault("together_api_key", together_sb.api_key or TOGETHER_KEY)
        self.module = module  # run as `python -m <module>`; the bench also runs its floor bot
        self.discord = discord_sb
        self.together = together_sb
        self.workdir = workdir
        self.settings = sandbox_settings(discord_sb, together_sb, workdir, **settings)
        self.env = self._environment()
        self.starts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._log_paths: list[Path] = []
        self._log_file: IO[bytes] | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def database_path(self) -> Path:
        return self.settings.database_path

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def log_text(self, start: int | None = None) -> str:
        """Everything the bot printed: over all starts, or of start number `start` (1-based)."""
        paths = self._log_paths if start is None else [self._log_paths[start - 1]]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, timeout: float = START_TIMEOUT) -> None:  # noqa: ASYNC109
        """Spawn the bot; return once it has synced its commands (if it is the process that
        does, see SYNC_COMMANDS) and identified on the gateway."""
        if self.running:
            raise RuntimeError("the bot process is already running")
        self._close_log()
        self.starts += 1
        log_path = self.workdir / f"bot-{self.starts}.log"
        self._log_paths.append(log_path)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log_file = log_path.open("wb")
        identifies = self.discord.gateway.identifies
        first_request = len(self.discord.requests)
        syncs = syncs_commands(self.settings.sync_commands, self.settings.shard_ids)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            cwd=self.workdir,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

        def ready() -> bool:
            if not self.running:
                return True  # stop waiting: reported below
            synced = not syncs or any(
                r.route == _COMMANDS_SYNC and r.status == 200
                for r in self.discord.requests[first_request:]
            )
            connected = self.discord.gateway.identifies > identifies and (
                self.discord.connected.is_set()
            )
            logged_in = self.settings.log_level_number > 20 or _LOGGED_IN in self.log_text(
                self.starts
            )
            return synced and connected and logged_in

        try:
            await _wait_until(ready, timeout)
        except TimeoutError:
            self.kill()
            await self.wait(STOP_TIMEOUT)
            raise TimeoutError(
                f"the bot was not ready within {timeout:.0f} s; its log:\n{self._tail()}"
            ) from None
        if not self.running:
            raise RuntimeError(
                f"the bot exited with code {self.returncode} while starting; its log:\n"
                f"{self._tail()}"
            )

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-write if need be. Safe to call from callbacks."""
        if self.running:
            assert self._proc is not None
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def wait(self, timeout: float = STOP_TIMEOUT) -> int:  # noqa: ASYNC109
        """Wait for the process to exit; its exit code (negative: the signal that ended it)."""
        if self._proc is None:
            raise RuntimeError("the bot process was never started")
        code = await asyncio.wait_for(self._proc.wait(), timeout)
        self._close_log()
        return code

    async def terminate(self, timeout: float = STOP_TIMEOUT) -> int:  # noqa: ASYNC109
        """SIGTERM, as `docker stop` sends; returns the exit code. Raises if it takes longer."""
        if self._proc is None:
            raise RuntimeError("the bot process was never started")
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def close(self) -> None:
        """Make sure the process is gone (SIGKILL if it still runs)."""
        if self._proc is not None:
            self.kill()
            with contextlib.suppress(TimeoutError):
                await self.wait(STOP_TIMEOUT)
        self._close_log()

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        env.update(settings_env(self.settings))
        env["PYTHONPATH"] = str(REPO_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _tail(self, lines: int = 40) -> str:
        if not self._log_paths:
            return ""
        return "\n".join(self.log_text(self.starts).splitlines()[-lines:])


async def run_bot_once(
    env: dict[str, str],
    cwd: Path,
    *args: str,
    timeout: float,  # noqa: ASYNC109
) -> tuple[int, str, str]:
    """`python -m bot <args>` in `cwd` with exactly `env`, until it exits by itself (killed
    after `timeout` seconds): its exit code, stdout and stderr. For the commands that stop on
    their own: a refused start, `health`, `backup`. `cwd` must exist."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _die_with_parent() -> None:
    """In the child, Linux only: SIGKILL it if the test process dies first (no orphan bots)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def _wait_until(predicate: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError
        await asyncio.sleep(_POLL)
