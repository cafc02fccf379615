"""SQLite's placeholders (`?`, `:name`) in PostgreSQL's form (`$1`, `$2` ...), once per text.

The repositories write one SQL text for both drivers (storage.driver); the PostgreSQL driver
translates it here. A text is translated once and the result cached: the same few dozen
statements run again and again, and asyncpg caches the prepared statement per translated text.

Quoted strings ('it''s :not a parameter'), quoted names, comments and PostgreSQL's own `::`
casts are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from storage.driver import Params

_TOKEN = re.compile(
    r"""
      (?P<skip>'(?:[^']|'')*' | "(?:[^"]|"")*" | --[^\n]* | /\*.*?\*/ | ::)
    | (?P<positional>\?)
    | :(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)


class PlaceholderError(ValueError):
    """A statement mixes `?` and `:name`, or its parameters do not match its placeholders."""


@dataclass(frozen=True)
class Translated:
    """A statement in PostgreSQL's form; `names` is the named parameter behind each `$n`
    (empty for a statement with `?` placeholders, whose parameters keep their order)."""

    sql: str
    positional: int
    names: tuple[str, ...]

    def arguments(self, params: Params) -> list[Any]:
        """The values for `$1, $2 ...` from a mapping (named) or a sequence (positional)."""
        if self.names:
            if not isinstance(params, Mapping):
                raise PlaceholderError(f"named parameters need a mapping: {self.sql!r}")
            missing = [name for name in self.names if name not in params]
            if missing:
                raise PlaceholderError(f"no value for :{', :'.join(missing)}")
            return [params[name] for name in self.names]
        if isinstance(params, Mapping):
            if params and self.positional:
                raise PlaceholderError(f"? placeholders need a sequence: {self.sql!r}")
            return []
        values = list(params)
        if len(values) != self.positional:
            raise PlaceholderError(
                f"{len(values)} values for {self.positional} placeholders: {self.sql!r}"
            )
        return values


@lru_cache(maxsize=512)
def translate(sql: str) -> Translated:
    """`sql` with `$n` placeholders; raises PlaceholderError when it mixes the two styles."""
    names: list[str] = []
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group("skip"):
            return match.group(0)
        if match.group("positional"):
            positional += 1
            return f"${positional}"
        name = match.group("name")
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    translated = _TOKEN.sub(replace, sql)
    if positional and names:
        raise PlaceholderError(f"a statement mixes ? and :name placeholders: {sql!r}")
    return Translated(translated, positional, tuple(names))


def arguments(sql: str, params: Params) -> tuple[str, Sequence[Any]]:
    """The translated text of `sql` and its arguments in `$n` order."""
    translated = translate(sql)
    return translated.sql, translated.arguments(params)
