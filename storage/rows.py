"""How a `jobs` row maps to a Job: the column lists and the row reader every SQL module shares.

No queries run here; `storage.jobs`, `storage.usage` and `storage.reservations` build theirs
from these names, so a column added to Job or NewJob reaches every statement at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import aiosqlite

from storage.models import Job, JobState, NewJob

# Every column of a stored job, in Job's field order (the order RETURNING and SELECT use).
JOB_COLUMNS = tuple(field.name for field in dataclasses.fields(Job))
# The columns a new job is inserted with; the rest start NULL or take their defaults.
NEW_JOB_COLUMNS = tuple(field.name for field in dataclasses.fields(NewJob))

# Word for word the WHERE clause of the jobs_unfinished partial index, so SQLite uses it.
UNFINISHED = "state IN ('queued', 'submitting', 'running', 'delivering')"


def job_from_row(row: aiosqlite.Row | tuple[Any, ...]) -> Job:
    """The Job in a row selected or returned as JOB_COLUMNS, in that order."""
    values = dict(zip(JOB_COLUMNS, row, strict=True))
    values["state"] = JobState(values["state"])
    values["announced"] = bool(values["announced"])
    return Job(**values)
