"""The database: repositories over one driver protocol (SQLite or PostgreSQL); the only
package that imports aiosqlite or asyncpg, and only in its drivers."""
