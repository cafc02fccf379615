"""Files picked with a message menu, kept until the menu's form is submitted (PendingForms)."""

from __future__ import annotations

import dataclasses

from storage.driver import Database
from storage.models import DAY_SECONDS, PendingFile

FIELDS = tuple(f.name for f in dataclasses.fields(PendingFile))
INSERT = f"""
INSERT INTO pending_forms ({", ".join(FIELDS[1:])})
VALUES ({", ".join("?" for _ in FIELDS[1:])})
RETURNING id
"""
SELECT = f"SELECT {', '.join(FIELDS)} FROM pending_forms WHERE id = ?"
DELETE = "DELETE FROM pending_forms WHERE id = ?"
DELETE_STALE = "DELETE FROM pending_forms WHERE created_at < ?"


class PendingForms:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, file: PendingFile) -> int:
        """Keep `file` (its id is ignored); returns the id its form's custom id carries.

        Forms older than a day are dropped in the same transaction: nobody submits them now.
        """
        values = [getattr(file, name) for name in FIELDS[1:]]
        async with self._db.transaction() as conn:
            await conn.execute(DELETE_STALE, (file.created_at - DAY_SECONDS,))
            row = await conn.fetch_one(INSERT, values)
        assert row is not None
        return int(row[0])

    async def get(self, form_id: int) -> PendingFile | None:
        """The file kept for this form, or None (submitted already, or dropped)."""
        row = await self._db.fetch_one(SELECT, (form_id,))
        return PendingFile(*row) if row else None

    async def forget(self, form_id: int) -> None:
        """Drop the kept file once its job is stored (or refused for good)."""
        async with self._db.transaction() as conn:
            await conn.execute(DELETE, (form_id,))
