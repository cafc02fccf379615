"""bot.i18n: every text in every shipped language, with the same placeholders; the locale
mapping and the English fallback."""

from __future__ import annotations

import re
import string

import pytest

from bot.i18n import FALLBACK, LANGUAGES, Text, catalog, language, translate


def placeholders(entry: object) -> set[str]:
    """The {names} of a text, or of every form of a plural text."""
    forms = entry.values() if isinstance(entry, dict) else [entry]
    return {
        name
        for form in forms
        for _, name, _, _ in string.Formatter().parse(str(form))
        if name is not None
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_exists_in_every_language(lang: str) -> None:
    english, other = set(catalog(FALLBACK)), set(catalog(lang))
    assert english - other == set(), f"{lang} lacks these texts"
    assert other - english == set(), f"{lang} has texts English does not"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_match_english(lang: str) -> None:
    wrong = {
        key: (placeholders(catalog(FALLBACK)[key]), placeholders(text))
        for key, text in catalog(lang).items()
        if placeholders(text) != placeholders(catalog(FALLBACK).get(key))
    }
    assert wrong == {}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_texts_are_not_empty_and_plural_forms_are_complete(lang: str) -> None:
    for key, entry in catalog(lang).items():
        if isinstance(entry, dict):
            assert set(entry) == {"one", "other"}, key
            assert "count" in placeholders(catalog(FALLBACK)[key]), key
        assert all(
            str(form).strip() for form in (entry.values() if isinstance(entry, dict) else [entry])
        ), key


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", "en"),
        ("en-GB", "en"),
        ("de", "de"),
        ("fr", "fr"),
        ("es-ES", "es"),
        ("es-419", "es"),
        ("pt-BR", "pt-BR"),
        ("ja", "ja"),
        ("ko", "en"),
        ("zh-CN", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_discord_locales_map_to_a_catalog(locale: str | None, expected: str) -> None:
    assert language(locale) == expected


def test_unshipped_locale_reads_english() -> None:
    assert translate("ko", "button.cancel") == "Cancel"
    assert translate("de", "button.cancel") == "Abbrechen"


def test_a_key_missing_from_a_language_falls_back_to_english(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    german = dict(catalog("de"))
    del german["button.cancel"]
    monkeypatch.setattr("bot.i18n.catalog", lambda lang: german if lang == "de" else catalog(lang))
    assert translate("de", "button.cancel") == "Cancel"
    assert translate("de", "button.retry") == "Nochmal"


def test_plural_forms_follow_count() -> None:
    assert translate("en", "admin.unfinished", count=1) == "**1 unfinished video**"
    assert translate("en", "admin.unfinished", count=3) == "**3 unfinished videos**"
    assert translate("de", "admin.unfinished", count=3) == "**3 unfertige Videos**"


def test_nested_texts_render_in_the_same_language() -> None:
    refusal = Text("option.prompt_empty", {"prompt": Text("opt.prompt")})
    assert refusal.render("de").startswith("`beschreibung` ist leer")
    assert refusal.render("ja").startswith("`プロンプト` が空です")
    assert refusal.render("ko").startswith("`prompt` is empty")


# A "/command" named in a text (not a URL, not "$0.10/s").
COMMAND_MENTION = re.compile(r"(?<![\w/:}])/([^\s`*:;,.!?()（）、。]+)")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_texts_name_commands_as_that_languages_client_shows_them(lang: str) -> None:
    """A German member types /videomodelle: the texts must not tell them /videomodels."""
    texts = catalog(lang)
    commands = {
        text
        for key, text in texts.items()
        if key.startswith("cmd.") and key.endswith(".name") and key.count(".") == 2
    }
    assert "/video" in catalog(FALLBACK)["refusal.blocked"]  # the pattern finds mentions
    mentioned = {
        (match[1], key)
        for key, entry in texts.items()
        for form in (entry.values() if isinstance(entry, dict) else [entry])
        for match in COMMAND_MENTION.finditer(str(form))
    }
    assert {(name, key) for name, key in mentioned if name not in commands} == set()
    assert mentioned, "no command mentioned at all: the pattern is broken"


def test_a_stored_text_comes_back_and_anything_else_reads_as_none() -> None:
    reason = Text("reason.timed_out", {"minutes": 30})
    assert Text.from_json(reason.to_json()) == reason
    for raw in (None, "", "not json", "[1]", '{"key": 3}', '{"key": "no.such.key", "params": {}}'):
        assert Text.from_json(raw) is None, raw
    assert Text.from_json('{"key": "reason.timed_out", "params": []}') is None
