"""SQLite storage: the only package that imports aiosqlite."""
