"""The driver contract on both drivers (any_db), and the placeholder translation (no server)."""

from __future__ import annotations

import pytest

from storage.driver import Database
from storage.placeholders import PlaceholderError, translate


async def test_execute_counts_changed_rows_and_execute_many_runs_each(any_db: Database) -> None:
    async with any_db.transaction() as conn:
        await conn.execute_many(
            "INSERT INTO allowed_channels (guild_id, channel_id) VALUES (?, ?)",
            [(1, 10), (1, 11), (2, 12)],
        )
        await conn.execute_many("INSERT INTO allowed_channels VALUES (?, ?)", [])
    async with any_db.access() as conn:
        assert await conn.execute("DELETE FROM allowed_channels WHERE guild_id = ?", (1,)) == 2
        assert await conn.execute("DELETE FROM allowed_channels WHERE guild_id = :g", {"g": 9}) == 0
        assert await conn.fetch_all("SELECT channel_id FROM allowed_channels") == [(12,)]
        assert await conn.fetch_one("SELECT channel_id FROM allowed_channels WHERE 1 = 0") is None


async def test_a_transaction_that_raises_leaves_nothing(any_db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with any_db.transaction() as conn:
            await conn.execute("INSERT INTO allowed_channels VALUES (?, ?)", (1, 10))
            raise RuntimeError("boom")
    assert await any_db.fetch_one("SELECT COUNT(*) FROM allowed_channels") == (0,)


async def test_serialize_needs_a_transaction(any_db: Database) -> None:
    async with any_db.transaction() as conn:
        await conn.serialize("quota", 2**63 - 1)  # a Discord snowflake's range
    async with any_db.access() as conn:
        with pytest.raises(RuntimeError, match="needs a transaction"):
            await conn.serialize("quota", 1)


async def test_a_null_named_parameter_is_typed_by_its_cast(any_db: Database) -> None:
    # PostgreSQL cannot infer `:x IS NULL` alone; the shared SQL casts it.
    sql = "SELECT COUNT(*) FROM jobs WHERE CAST(:user_id AS BIGINT) IS NULL OR user_id = :user_id"
    assert await any_db.fetch_one(sql, {"user_id": None}) == (0,)
    assert await any_db.fetch_one(sql, {"user_id": 5}) == (0,)


@pytest.mark.parametrize(
    ("sql", "expected", "names"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2", ()),
        (
            "UPDATE t SET a = :a WHERE id = :id AND a <> :a",
            "UPDATE t SET a = $1 WHERE id = $2 AND a <> $1",
            ("a", "id"),
        ),
        (
            "SELECT ':no', 'it''s ?', \"col:x\", x::text FROM t -- :nor ?\nWHERE y = :y",
            "SELECT ':no', 'it''s ?', \"col:x\", x::text FROM t -- :nor ?\nWHERE y = $1",
            ("y",),
        ),
        ("SELECT 1 /* ? :z */", "SELECT 1 /* ? :z */", ()),
    ],
)
def test_placeholders_become_numbered(sql: str, expected: str, names: tuple[str, ...]) -> None:
    translated = translate(sql)
    assert (translated.sql, translated.names) == (expected, names)


def test_named_values_follow_the_numbers_and_mixed_styles_are_refused() -> None:
    translated = translate("SELECT :b, :a, :b")
    assert translated.arguments({"a": 1, "b": 2, "unused": 3}) == [2, 1]
    assert translate("SELECT ?, ?").arguments((1, 2)) == [1, 2]
    assert translate("SELECT 1").arguments(()) == []
    with pytest.raises(PlaceholderError, match="mixes"):
        translate("SELECT ?, :a")
    with pytest.raises(PlaceholderError, match="no value for :a"):
        translated.arguments({"b": 1})
    with pytest.raises(PlaceholderError, match="1 values for 2 placeholders"):
        translate("SELECT ?, ?").arguments((1,))
    assert translate("SELECT :a") is translate("SELECT :a"), "translated once, then cached"


def test_without_a_server_postgresql_tests_skip_but_fail_on_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.databases import server_url

    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="need TEST_DATABASE_URL"):
        server_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run them, not skip them"):
        server_url()
    monkeypatch.setenv("TEST_DATABASE_URL", " postgresql://u@/d?host=/tmp/s ")
    assert server_url() == "postgresql://u@/d?host=/tmp/s"
