"""Pure policy: the model catalog, option checks, quota rules, scheduling, member-facing errors.

No I/O and no discord, aiosqlite or httpx (an import-linter contract holds this).
"""
