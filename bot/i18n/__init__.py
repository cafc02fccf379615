"""Members' languages: every text the bot shows, by key, in each shipped language.

Pure (no discord): the catalogs are JSON files beside this module, one per language
(`en.json`, `de.json`, ...), mapping a key such as ``"refusal.daily_limit"`` to a text with
``{named}`` placeholders. A text may instead be ``{"one": ..., "other": ...}``: the form is
chosen by the ``count`` placeholder (languages without plurals give both the same text).

`translate(locale, key, **params)` renders a key for a Discord locale (``de``, ``pt-BR``, ...),
falling back to English for other locales and for keys a language lacks. A `Text` is a key
with its parameters, rendered later in whoever reads it; a parameter that is itself a `Text`
(or a `TextList` of them) is rendered in the same language. See ARCHITECTURE.md, "Languages",
to add a text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

FALLBACK = "en"
# The shipped languages, by catalog name.
LANGUAGES = ("en", "de", "fr", "es", "pt-BR", "ja")
# Discord's locales that share a catalog; any other locale reads English.
_ALIASES = {"en-US": "en", "en-GB": "en", "es-ES": "es", "es-419": "es"}
_CATALOG_DIR = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class Text:
    """A text to be shown in the reader's language: a catalog key and its placeholders."""

    key: str
    params: Mapping[str, object] = field(default_factory=dict)

    def render(self, locale: str | None) -> str:
        return translate(locale, self.key, **self.params)

    def to_json(self) -> str:
        """For a column (a job's failure_text): plain placeholders only (text and numbers)."""
        return json.dumps({"key": self.key, "params": dict(self.params)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | None) -> Text | None:
        """A stored Text; None for nothing stored, or for what this version cannot read."""
        try:
            data = json.loads(raw or "null")
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            return None
        params = data.get("params")
        if not isinstance(params, dict) or data["key"] not in catalog(FALLBACK):
            return None
        return cls(data["key"], params)


@dataclass(frozen=True, slots=True)
class TextList:
    """Texts shown as one list ('S1 violent crimes, S10 hate'), joined with the reader's
    language's separator (`list.separator`: ", " in English, "、" in Japanese)."""

    items: tuple[Text, ...]

    def render(self, locale: str | None) -> str:
        separator = translate(locale, "list.separator")
        return separator.join(item.render(locale) for item in self.items)


def text(key: str, **params: object) -> Text:
    return Text(key, params)


def language(locale: str | None) -> str:
    """The catalog for a Discord locale: `de` for `de`, `es` for `es-419`, `en` for `ko`."""
    if not locale:
        return FALLBACK
    name = str(locale)
    name = _ALIASES.get(name, name)
    return name if name in LANGUAGES else FALLBACK


@cache
def catalog(lang: str) -> Mapping[str, Any]:
    """One language's texts (read once; the files ship with the package)."""
    with (_CATALOG_DIR / f"{lang}.json").open(encoding="utf-8") as file:
        loaded: dict[str, Any] = json.load(file)
    return loaded


def translate(locale: str | None, key: str, **params: object) -> str:
    """The text for `key` in the locale's language (English where it has none).

    A key missing from English too is a bug; it is shown as the key itself rather than
    failing the member's command.
    """
    lang = language(locale)
    entry = catalog(lang).get(key)
    if entry is None:
        entry = catalog(FALLBACK).get(key, key)
    if isinstance(entry, dict):
        count = params.get("count")
        entry = entry["one"] if count == 1 and "one" in entry else entry["other"]
    values = {
        name: value.render(lang) if isinstance(value, Text | TextList) else value
        for name, value in params.items()
    }
    return str(entry).format(**values)


def option_name(name: str) -> Text:
    """An option's name as the reader's client shows it (the command's own localization)."""
    return Text(f"opt.{name}")
