"""BudgetSync: this process's request budget as its share of the account's shared one.

Together's limit belongs to the account, so every bot process on one database runs at a share
of one learned rate, kept in the database (storage/together_budget.py). Every `INTERVAL`
seconds of the engine's clock, driven by its loop, the sync reads that rate, its pause and the
live processes (`processes` rows with a heartbeat within LEASE_SECONDS) and hands them to the
budget (AdaptiveBudget.adopt): a cut or pause another process wrote is followed within one
sync, and a process that died gives its share back once it stops being live. A process that
joins others sends nothing for `JOIN_WAIT`, until they have made room for it.

What this process learns goes the other way at once (the loop is woken for it): a cut or a
pause with one lower-only statement, a rise with a compare-and-set on the version the last
sync saw, so two processes cannot both raise the same rate; the loser adopts the winner's.
"""

from __future__ import annotations

import logging
import math

from bot.engine.budget import RequestBudget
from bot.engine.ports import BudgetTable, ProcessTable
from bot.engine.runtime import Runtime
from bot.outages import FailureRun
from storage.models import SharedRate

log = logging.getLogger("bot.engine")

INTERVAL = 1.0
JOIN_WAIT = INTERVAL + 1.0  # a joining process's wait: one sync of the others, one window


class BudgetSync:
    def __init__(
        self, runtime: Runtime, table: BudgetTable, processes: ProcessTable, budget: RequestBudget
    ) -> None:
        self._runtime = runtime
        self._table = table
        self._processes = processes
        self._budget = budget
        self._version = 0  # of the row as last read: a rise must start from it
        self._pending: bool | None = None  # learned, not yet written: True a cut, False a rise
        self._next = math.inf
        self._syncing = False
        self._failures = FailureRun(log, "Sharing the Together request budget")
        budget.on_learned = self._learned

    def _learned(self, lowered: bool) -> None:
        # A cut outranks a rise waiting with it: the rate written is the budget's, now.
        self._pending = lowered or bool(self._pending)
        self._next = -math.inf  # written at the loop's next pass
        self._runtime.wake.set()

    async def start(self) -> None:
        """The shared row at start: this process's share of it, or (alone) the start rate."""
        now = self._runtime.now()
        live = await self._live(now)
        alone = all(row == self._processes.me for row in live)
        shared = await self._table.start(self._budget.rates.start, now, alone)
        self._adopt(now, shared, live)
        self._next = now + INTERVAL
        if not alone:
            # The others learn of this process at their next sync (within INTERVAL), and the
            # requests they sent at their old share leave the window a second later: only
            # then is this share free in every window.
            self._budget.rates.held_until = now + JOIN_WAIT

    def tick(self, now: float) -> None:
        """Start a sync when one is due (at once when something learned waits to be written)."""
        if now >= self._next and not self._syncing:
            self._syncing = True
            self._next = now + INTERVAL
            self._runtime.spawn(self._run(), "budget-sync")

    def next_due(self) -> float:
        return self._next

    async def _run(self) -> None:
        try:
            await self._failures.attempt(self.sync())
        finally:
            self._syncing = False

    async def sync(self) -> None:
        """Write what this process learned, then follow the account's row."""
        now = self._runtime.now()
        pending, self._pending = self._pending, None
        rates = self._budget.rates
        shared: SharedRate | None = None
        try:
            if pending is True:
                shared = await self._table.lower(rates.rate, rates.paused_until, now)
            elif pending is False:
                shared = await self._table.raise_from(self._version, rates.rate, now)
        except Exception:
            # Not written: kept for the next sync (a second from now, not the next pass).
            self._pending = pending or bool(self._pending)
            raise
        if shared is None:  # nothing to write, or another process raised first
            shared = await self._table.read()
        if shared is None:  # the row is gone (an emptied database): write it again
            shared = await self._table.start(rates.rate, now, alone=False)
        live = await self._live(now)
        if self._pending is not None:
            return  # learned more meanwhile: the next pass writes it before following the row
        self._adopt(self._runtime.now(), shared, live)

    async def _live(self, now: float) -> list[str]:
        rows = await self._processes.live(now, self._runtime.config.lease_seconds)
        return [row.id for row in rows]

    def _adopt(self, now: float, shared: SharedRate, live: list[str]) -> None:
        self._version = shared.version
        me = self._processes.me
        # A process whose own heartbeat is late still counts itself, last.
        rank = live.index(me) if me in live else len(live)
        processes = len(live) + (me not in live)
        change = self._budget.rates.adopt(now, shared.rate, shared.paused_until, processes, rank)
        self._budget.log(change)
