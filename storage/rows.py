"""How a `jobs` row maps to a Job: the column lists and the row reader every SQL module shares.

No queries run here; `storage.jobs`, `storage.usage` and `storage.reservations` build theirs
from these names, so a column added to Job, NewJob or VideoParams reaches every statement at
once. A job's `params` are stored flat: one column per VideoParams field, of the same name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from storage.models import Derivation, Job, JobState, NewJob, VideoParams

# One column per generation parameter, named after its VideoParams field.
PARAM_COLUMNS = tuple(field.name for field in dataclasses.fields(VideoParams))
# Parameters that are tuples of names, stored as one comma-separated TEXT ('' for none).
LIST_COLUMNS = frozenset(
    name
    for name, hint in typing.get_type_hints(VideoParams).items()
    if typing.get_origin(hint) is tuple
)
# Parameters that are booleans (or None), stored as INTEGER 0/1 and read back as bool.
BOOL_COLUMNS = frozenset(
    name
    for name, hint in typing.get_type_hints(VideoParams).items()
    if hint is bool
    or (
        typing.get_origin(hint) in (typing.Union, types.UnionType) and bool in typing.get_args(hint)
    )
)


def _flat_columns(cls: type[Job] | type[NewJob]) -> tuple[str, ...]:
    """The dataclass's fields in order, with `params` spread into PARAM_COLUMNS."""
    columns: list[str] = []
    for field in dataclasses.fields(cls):
        columns.extend(PARAM_COLUMNS if field.name == "params" else (field.name,))
    return tuple(columns)


# Every column of a stored job, in Job's field order (the order RETURNING and SELECT use).
JOB_COLUMNS = _flat_columns(Job)
# The columns a new job is inserted with; the rest start NULL or take their defaults.
NEW_JOB_COLUMNS = _flat_columns(NewJob)

# Word for word the WHERE clause of the jobs_unfinished partial index, so SQLite uses it
# (PostgreSQL's planner proves the implication itself, but the same text serves both).
UNFINISHED = "state IN ('queued', 'submitting', 'running', 'delivering')"


def params_to_columns(params: VideoParams) -> dict[str, object]:
    """The column values of `params`, by column name."""
    values: dict[str, object] = {name: getattr(params, name) for name in PARAM_COLUMNS}
    for name in LIST_COLUMNS:
        values[name] = ",".join(typing.cast("tuple[str, ...]", values[name]))
    return values


def params_from_columns(values: Mapping[str, Any]) -> VideoParams:
    """The VideoParams stored in these columns (every name of PARAM_COLUMNS must be there)."""
    params = {name: values[name] for name in PARAM_COLUMNS}
    for name in LIST_COLUMNS:
        params[name] = tuple(params[name].split(",")) if params[name] else ()
    for name in BOOL_COLUMNS:
        if params[name] is not None:
            params[name] = bool(params[name])
    return VideoParams(**params)


def new_job_values(new_job: NewJob) -> dict[str, object]:
    """The named parameters an INSERT of NEW_JOB_COLUMNS binds."""
    values = {
        field.name: getattr(new_job, field.name)
        for field in dataclasses.fields(NewJob)
        if field.name != "params"
    }
    values.update(params_to_columns(new_job.params))
    return values


def job_from_row(row: Sequence[Any]) -> Job:
    """The Job in a row selected or returned as JOB_COLUMNS, in that order."""
    values = dict(zip(JOB_COLUMNS, row, strict=True))
    values["params"] = params_from_columns(values)
    for name in PARAM_COLUMNS:
        del values[name]
    values["state"] = JobState(values["state"])
    if values["derivation"] is not None:
        values["derivation"] = Derivation(values["derivation"])
    values["announced"] = bool(values["announced"])
    return Job(**values)
