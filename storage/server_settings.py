"""Per-server moderator settings (limits, role quotas, model rules, channels, blocked members)
and the audit log that records every change to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from storage.driver import Connection, Database
from storage.models import (
    FLOWS,
    LIMIT_NAMES,
    AuditEntry,
    Flow,
    GuildLimits,
    ModelRule,
    SafetyRules,
    ServerRules,
)
from storage.safety_settings import (
    WordChange,
    add_word,
    check_safety,
    read_safety,
    remove_word,
    write_safety,
)

SELECT_LIMITS = """
SELECT user_daily, guild_daily, user_concurrent, monthly_budget_usd, max_seconds
FROM guild_settings WHERE guild_id = ?
"""
UPSERT_LIMITS = """
INSERT INTO guild_settings
    (guild_id, user_daily, guild_daily, user_concurrent, monthly_budget_usd, max_seconds,
     updated_at)
VALUES
    (:guild_id, :user_daily, :guild_daily, :user_concurrent, :monthly_budget_usd, :max_seconds,
     :updated_at)
ON CONFLICT (guild_id) DO UPDATE SET
    user_daily = excluded.user_daily,
    guild_daily = excluded.guild_daily,
    user_concurrent = excluded.user_concurrent,
    monthly_budget_usd = excluded.monthly_budget_usd,
    max_seconds = excluded.max_seconds,
    updated_at = excluded.updated_at
"""
SELECT_ROLE_QUOTAS = "SELECT role_id, user_daily FROM role_quotas WHERE guild_id = ?"
UPSERT_ROLE_QUOTA = """
INSERT INTO role_quotas (guild_id, role_id, user_daily) VALUES (?, ?, ?)
ON CONFLICT (guild_id, role_id) DO UPDATE SET user_daily = excluded.user_daily
"""
DELETE_ROLE_QUOTA = "DELETE FROM role_quotas WHERE guild_id = ? AND role_id = ?"
SELECT_MODEL_RULES = "SELECT model_id, rule FROM model_rules WHERE guild_id = ?"
UPSERT_MODEL_RULE = """
INSERT INTO model_rules (guild_id, model_id, rule) VALUES (?, ?, ?)
ON CONFLICT (guild_id, model_id) DO UPDATE SET rule = excluded.rule
"""
DELETE_MODEL_RULE = "DELETE FROM model_rules WHERE guild_id = ? AND model_id = ?"
SELECT_FLOW_MODELS = "SELECT flow, model_id FROM flow_models WHERE guild_id = ?"
UPSERT_FLOW_MODEL = """
INSERT INTO flow_models (guild_id, flow, model_id) VALUES (?, ?, ?)
ON CONFLICT (guild_id, flow) DO UPDATE SET model_id = excluded.model_id
"""
DELETE_FLOW_MODEL = "DELETE FROM flow_models WHERE guild_id = ? AND flow = ?"
SELECT_CHANNELS = "SELECT channel_id FROM allowed_channels WHERE guild_id = ?"
DELETE_CHANNELS = "DELETE FROM allowed_channels WHERE guild_id = ?"
INSERT_CHANNEL = "INSERT INTO allowed_channels (guild_id, channel_id) VALUES (?, ?)"
SELECT_BLOCKED_IDS = "SELECT user_id FROM blocked_members WHERE guild_id = ?"
INSERT_BLOCKED = """
INSERT INTO blocked_members (guild_id, user_id, blocked_by, blocked_at) VALUES (?, ?, ?, ?)
ON CONFLICT (guild_id, user_id) DO NOTHING
"""
DELETE_BLOCKED = "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?"
INSERT_AUDIT = """
INSERT INTO audit_log (guild_id, actor_id, action, detail, created_at) VALUES (?, ?, ?, ?, ?)
"""
# Every change takes the next number of one counter and marks its server with it, in the change's
# own transaction (migration 013): other processes learn what changed by asking for numbers past
# the last they saw. Two statements, not UPDATE ... RETURNING, so that any SQL database runs them.
# An upsert, so a counter row lost (emptied by hand, or by a test) starts again instead of
# failing every change; the row's write lock is held until commit either way.
BUMP_CHANGE_COUNTER = """
INSERT INTO settings_change_counter (id, value) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET value = settings_change_counter.value + 1
RETURNING value
"""
UPSERT_VERSION = """
INSERT INTO settings_versions (guild_id, version) VALUES (?, ?)
ON CONFLICT (guild_id) DO UPDATE SET version = excluded.version
"""
SELECT_VERSION = "SELECT version FROM settings_versions WHERE guild_id = ?"
SELECT_CHANGES_SINCE = "SELECT guild_id, version FROM settings_versions WHERE version > ?"
SELECT_AUDIT = """
SELECT id, guild_id, actor_id, action, detail, created_at FROM audit_log
WHERE guild_id = ? ORDER BY id DESC LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class _Cached:
    rules: ServerRules
    version: int  # the server's settings version when they were read (0: never changed)


def _check_limit(name: str, value: float | None) -> float | None:
    if name not in LIMIT_NAMES:
        raise ValueError(f"unknown limit {name!r}")
    if value is None:
        return None
    if isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be 0 or more, or None for the default")
    if name == "monthly_budget_usd":
        return float(value)
    if not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number")
    return value


def _onoff(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def _describe(name: str, value: object) -> str:
    return f"{name}={'default' if value is None else value}"


class GuildSettingsRepository:
    """Moderator settings per server. Every change is audited in its own transaction.

    The settings are kept in memory per server once read, and every change made through this
    repository drops that copy: /video reads them on every command, and under a burst the
    trips to SQLite, not the queries, are what each member waits for.

    Changes made by another process (several processes share one database when the gateway
    shards are split) are learnt by `catch_up`, which bot.rules_refresh calls every 2 s: one
    indexed query that finds nothing most of the time. A push (PostgreSQL's LISTEN/NOTIFY) can
    hand the same facts to `forget_changed` instead.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rules: dict[int, _Cached] = {}
        self._loading: dict[int, asyncio.Future[ServerRules]] = {}
        # The highest change number seen, and per server the latest version heard of: a read
        # that started before a change and ends after its news is not kept.
        self._last_change = 0
        self._latest: dict[int, int] = {}
        # Changes made through this repository, per server (see _change).
        self._changes: dict[int, int] = {}

    async def rules(self, guild_id: int) -> ServerRules:
        """The server's rules, read once with the connection held, then served from memory.

        Commands that ask at once before the first read share it. The copy is dropped by every
        change made through this repository, and by `catch_up` for a change made elsewhere.
        """
        cached = self._rules.get(guild_id)
        if cached is not None:
            return cached.rules
        # A burst of commands on a server not yet read shares one read, not one each.
        loading = self._loading.get(guild_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load_rules(guild_id))
            self._loading[guild_id] = loading
        return await asyncio.shield(loading)

    async def _load_rules(self, guild_id: int) -> ServerRules:
        try:
            return await self._read_rules(guild_id)
        finally:
            self._loading.pop(guild_id, None)

    async def _read_rules(self, guild_id: int) -> ServerRules:
        # SQLite: changes take the same lock as this read, and the copy is kept in the step the
        # read ends in, so no change can land between the two and be missed. PostgreSQL: a
        # change can commit while this read runs; the change counter tells, and then the copy
        # is served to the commands waiting for it but not kept.
        changes_before = self._changes.get(guild_id, 0)
        async with self._db.access() as conn:
            # The version first: a change landing during the reads below makes the copy older
            # than that change's version, so catch_up drops it.
            version_row = await conn.fetch_one(SELECT_VERSION, (guild_id,))
            limits = await self._read_limits(conn, guild_id)
            roles = await conn.fetch_all(SELECT_ROLE_QUOTAS, (guild_id,))
            models = await conn.fetch_all(SELECT_MODEL_RULES, (guild_id,))
            channels = await conn.fetch_all(SELECT_CHANNELS, (guild_id,))
            blocked = await conn.fetch_all(SELECT_BLOCKED_IDS, (guild_id,))
            flows = await conn.fetch_all(SELECT_FLOW_MODELS, (guild_id,))
            safety = await read_safety(conn, guild_id)
        rules = ServerRules(
            limits=limits,
            role_quotas={int(role_id): int(user_daily) for role_id, user_daily in roles},
            model_rules={str(model_id): str(rule) for model_id, rule in models},
            channels=frozenset(int(channel_id) for (channel_id,) in channels),
            blocked=frozenset(int(user_id) for (user_id,) in blocked),
            flow_models={str(flow): str(model_id) for flow, model_id in flows},
            safety=safety,
        )
        version = int(version_row[0]) if version_row else 0
        # Kept only if no newer version was heard of, and no change made through this
        # repository overtook the read (possible with PostgreSQL's pool).
        unchanged = self._changes.get(guild_id, 0) == changes_before
        if unchanged and version >= self._latest.get(guild_id, 0):
            self._rules[guild_id] = _Cached(rules, version)
        return rules

    # --- other processes' changes -------------------------------------------------------

    async def catch_up(self) -> int:
        """Drops the copies of servers changed since the last look, by any process.

        Returns how many copies were dropped. The first call reads every server ever changed
        (one row each); later ones only the changes since.
        """
        rows = await self._db.fetch_all(SELECT_CHANGES_SINCE, (self._last_change,))
        return self.forget_changed((int(guild_id), int(version)) for guild_id, version in rows)

    def forget_changed(self, changes: Iterable[tuple[int, int]]) -> int:
        """(server, version) pairs of changes: older copies of those servers are dropped.

        The seam for pushed changes (a LISTEN/NOTIFY payload carries the same pair); the
        number of copies dropped is returned.
        """
        dropped = 0
        for guild_id, version in changes:
            self._last_change = max(self._last_change, version)
            self._latest[guild_id] = max(self._latest.get(guild_id, 0), version)
            cached = self._rules.get(guild_id)
            if cached is not None and cached.version < version:
                del self._rules[guild_id]
                dropped += 1
        return dropped

    @asynccontextmanager
    async def _change(self, guild_id: int) -> AsyncIterator[Connection]:
        """A transaction that changes the server's settings; its copy is dropped before and
        after it. A read that began before the commit sees the counter move and is not kept
        (on SQLite the shared lock already keeps reads and changes apart)."""
        self._forget(guild_id)
        try:
            async with self._db.transaction() as conn:
                yield conn
        finally:
            self._forget(guild_id)

    def _forget(self, guild_id: int) -> None:
        self._changes[guild_id] = self._changes.get(guild_id, 0) + 1
        self._rules.pop(guild_id, None)

    # --- limits -------------------------------------------------------------------------

    async def limits(self, guild_id: int) -> GuildLimits:
        """The server's own limits (None: the bot-wide default), from the same copy as rules."""
        return (await self.rules(guild_id)).limits

    async def set_limits(
        self, guild_id: int, actor_id: int, now: float, **changes: float | None
    ) -> GuildLimits:
        """Change only the given limits (None = back to the default); returns all of them.

        Raises ValueError, before writing anything, for an unknown limit or a value that is
        negative, or not a whole number where one is needed. The change and its audit entry are
        one transaction. With no changes, nothing is written or audited.
        """
        checked = {name: _check_limit(name, value) for name, value in changes.items()}
        async with self._change(guild_id) as conn:
            # Read-modify-write: two moderators at once must not undo each other's change.
            await conn.serialize("guild_settings", guild_id)
            current = await self._read_limits(conn, guild_id)
            if not checked:
                return current
            updated = replace(current, **checked)  # type: ignore[arg-type]
            params = {name: getattr(updated, name) for name in LIMIT_NAMES}
            await conn.execute(UPSERT_LIMITS, {**params, "guild_id": guild_id, "updated_at": now})
            detail = ", ".join(_describe(name, value) for name, value in checked.items())
            await self._audit(conn, guild_id, actor_id, "quota", detail, now)
        return updated

    @staticmethod
    async def _read_limits(conn: Connection, guild_id: int) -> GuildLimits:
        row = await conn.fetch_one(SELECT_LIMITS, (guild_id,))
        return GuildLimits(*row) if row else GuildLimits()

    # --- role quotas --------------------------------------------------------------------

    async def role_quotas(self, guild_id: int) -> dict[int, int]:
        """role_id -> that role's daily limit per member."""
        return dict((await self.rules(guild_id)).role_quotas)

    async def set_role_quota(
        self, guild_id: int, role_id: int, user_daily: int | None, actor_id: int, now: float
    ) -> None:
        """Give a role its own daily limit, or remove it with None.

        Raises ValueError, before writing anything, for a negative or fractional limit. The
        change and its audit entry are one transaction.
        """
        _check_limit("user_daily", user_daily)
        async with self._change(guild_id) as conn:
            if user_daily is None:
                await conn.execute(DELETE_ROLE_QUOTA, (guild_id, role_id))
            else:
                await conn.execute(UPSERT_ROLE_QUOTA, (guild_id, role_id, user_daily))
            detail = f"<@&{role_id}> {_describe('user_daily', user_daily)}"
            await self._audit(conn, guild_id, actor_id, "role_quota", detail, now)

    # --- models -------------------------------------------------------------------------

    async def set_model_rule(
        self, guild_id: int, model_id: str, rule: ModelRule | None, actor_id: int, now: float
    ) -> None:
        """Allow or deny a model on the server; None removes the rule.

        Raises ValueError, before writing anything, for another rule. The change and its audit
        entry are one transaction.
        """
        if rule not in ("allow", "deny", None):
            raise ValueError(f"unknown model rule {rule!r}")
        async with self._change(guild_id) as conn:
            if rule is None:
                await conn.execute(DELETE_MODEL_RULE, (guild_id, model_id))
            else:
                await conn.execute(UPSERT_MODEL_RULE, (guild_id, model_id, rule))
            detail = f"{model_id} {rule or 'default'}"
            await self._audit(conn, guild_id, actor_id, "model_rule", detail, now)

    async def set_flow_model(
        self, guild_id: int, flow: Flow, model_id: str | None, actor_id: int, now: float
    ) -> None:
        """The server's own model for a flow ("animate", "edit"); None: the bot-wide default.

        Raises ValueError, before writing anything, for another flow. The change and its audit
        entry are one transaction. The model id is not checked here (the caller knows the
        catalog).
        """
        if flow not in FLOWS:
            raise ValueError(f"unknown flow {flow!r}")
        async with self._change(guild_id) as conn:
            if model_id is None:
                await conn.execute(DELETE_FLOW_MODEL, (guild_id, flow))
            else:
                await conn.execute(UPSERT_FLOW_MODEL, (guild_id, flow, model_id))
            detail = f"{flow} model {model_id or 'default'}"
            await self._audit(conn, guild_id, actor_id, "flow_model", detail, now)

    # --- channels -----------------------------------------------------------------------

    async def set_channels(
        self, guild_id: int, channel_ids: Iterable[int], actor_id: int, now: float
    ) -> None:
        """Replace the allowed channels; an empty set allows every channel.

        The old set is replaced, and the change audited, in one transaction.
        """
        wanted = sorted(set(channel_ids))
        async with self._change(guild_id) as conn:
            await conn.execute(DELETE_CHANNELS, (guild_id,))
            await conn.execute_many(INSERT_CHANNEL, [(guild_id, c) for c in wanted])
            detail = ", ".join(f"<#{c}>" for c in wanted) or "all"
            await self._audit(conn, guild_id, actor_id, "channels", detail, now)

    # --- blocked members ----------------------------------------------------------------

    async def set_blocked(
        self, guild_id: int, user_id: int, blocked: bool, actor_id: int, now: float
    ) -> bool:
        """Block or unblock a member. Returns False (and audits nothing) if nothing changed.

        False also when another moderator made the same change first: the member was already
        blocked, or not blocked. The change and its audit entry are one transaction.
        """
        async with self._change(guild_id) as conn:
            if blocked:
                changed = await conn.execute(INSERT_BLOCKED, (guild_id, user_id, actor_id, now))
            else:
                changed = await conn.execute(DELETE_BLOCKED, (guild_id, user_id))
            if changed != 1:
                return False
            action = "block" if blocked else "unblock"
            await self._audit(conn, guild_id, actor_id, action, f"<@{user_id}>", now)
        return True

    # --- safety -------------------------------------------------------------------------

    async def set_safety(
        self, guild_id: int, actor_id: int, now: float, **changes: object
    ) -> SafetyRules:
        """Change only the given safety settings; returns them all (words included).

        Raises ValueError, before writing anything, for an unknown setting or a wrong value.
        The change and its audit entry are one transaction; with no changes, nothing is written.
        """
        check_safety(changes)
        async with self._change(guild_id) as conn:
            # Read-modify-write: two moderators at once must not undo each other's change.
            await conn.serialize("guild_settings", guild_id)
            current = await read_safety(conn, guild_id)
            if not changes:
                return current
            updated = replace(current, **changes)  # type: ignore[arg-type]
            await write_safety(conn, guild_id, updated, now)
            detail = ", ".join(f"{name}={_onoff(value)}" for name, value in changes.items())
            await self._audit(conn, guild_id, actor_id, "safety", detail, now)
        return updated

    async def change_blocked_word(
        self, guild_id: int, entry: str, add: bool, limit: int, actor_id: int, now: float
    ) -> WordChange:
        """Add (up to `limit` entries) or remove one blocked entry, kept as given (the caller
        folds it). Audited only when the list changed, in the same transaction."""
        async with self._change(guild_id) as conn:
            # The count and the insert must agree: no other change to the list in between.
            await conn.serialize("guild_settings", guild_id)
            if add:
                change = await add_word(conn, guild_id, entry, limit, actor_id, now)
            else:
                change = await remove_word(conn, guild_id, entry)
            if change is WordChange.DONE:
                action = "blocked_word_add" if add else "blocked_word_remove"
                await self._audit(conn, guild_id, actor_id, action, entry, now)
        return change

    async def record_refusal(
        self, guild_id: int, user_id: int, rule: str, detail: str, now: float
    ) -> None:
        """A safety refusal in the audit log, the member as actor; the settings are unchanged,
        so the cached copy stays."""
        async with self._db.access() as conn:
            await conn.execute(INSERT_AUDIT, (guild_id, user_id, rule, detail, now))

    # --- audit --------------------------------------------------------------------------

    async def audit(self, guild_id: int, limit: int = 20) -> list[AuditEntry]:
        """The server's latest moderator changes, newest first."""
        rows = await self._db.fetch_all(SELECT_AUDIT, (guild_id, limit))
        return [AuditEntry(*row) for row in rows]

    async def _audit(
        self,
        conn: Connection,
        guild_id: int,
        actor_id: int,
        action: str,
        detail: str,
        now: float,
    ) -> None:
        await conn.execute(INSERT_AUDIT, (guild_id, actor_id, action, detail, now))
        # Every change is audited, in its own transaction: the version goes with it.
        counter = await conn.fetch_one(BUMP_CHANGE_COUNTER)
        assert counter is not None  # an upsert with RETURNING always returns its row
        await conn.execute(UPSERT_VERSION, (guild_id, int(counter[0])))
        self._rules.pop(guild_id, None)
