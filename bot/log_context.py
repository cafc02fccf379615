"""Which job, server and member a log line is about.

A context variable holds the ids; `bot.logs.JobFields` copies them onto every record. It is set
where work on a job starts: the engine's tasks (`task_context`, since a task keeps the context
it was created with, and one job's task often starts another job's work) and the cogs while
they handle a job's interaction (`about_job`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class JobLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def guild_id(self) -> int: ...
    @property
    def user_id(self) -> int: ...


@dataclass(frozen=True)
class LogIds:
    job_id: int | None = None
    guild_id: int | None = None
    user_id: int | None = None


NOBODY = LogIds()
_current: contextvars.ContextVar[LogIds] = contextvars.ContextVar("log_ids", default=NOBODY)


def current_ids() -> LogIds:
    return _current.get()


def ids_of(job: JobLike | None) -> LogIds:
    return NOBODY if job is None else LogIds(job.id, job.guild_id, job.user_id)


@contextlib.contextmanager
def about(ids: LogIds) -> Iterator[None]:
    """Log lines inside the block are about `ids` (restored on the way out)."""
    token = _current.set(ids)
    try:
        yield
    finally:
        _current.reset(token)


def about_job(job: JobLike) -> contextlib.AbstractContextManager[None]:
    return about(ids_of(job))


def about_member(
    guild_id: int | None, user_id: int | None
) -> contextlib.AbstractContextManager[None]:
    """A member's command before it has a job: the server and the member are known."""
    return about(LogIds(guild_id=guild_id, user_id=user_id))


def task_context(job: JobLike | None) -> contextvars.Context:
    """The context for a new task about `job` (None: about no job), whoever creates it."""
    context = contextvars.copy_context()
    context.run(_current.set, ids_of(job))
    return context
