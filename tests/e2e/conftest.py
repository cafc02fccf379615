"""Fixtures that run the real bot against the Discord and Together stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.harness import Stack, running_stack
from sandbox.together import JobScript

# Fast jobs: queued briefly at Together, then generating for a couple of seconds.
FAST_JOB = JobScript(queue_seconds=0.3, run_seconds=1.5)

TEARDOWN_TIMEOUT = 30.0

StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def make_stack(tmp_path: Path) -> AsyncIterator[StackFactory]:
    """Start a stack with chosen options: make_stack(discord_options=..., **settings)."""
    stacks = contextlib.AsyncExitStack()

    async def start(**options: Any) -> Stack:
        options.setdefault("together_options", {"default_script": FAST_JOB})
        return await stacks.enter_async_context(running_stack(tmp_path, **options))

    yield start
    try:
        await asyncio.wait_for(stacks.aclose(), TEARDOWN_TIMEOUT)
    except TimeoutError:
        # Say what is stuck instead of hanging until pytest-timeout.
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
        raise


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    return await make_stack()
