"""Safety policy with no I/O: folding text, matching blocked words, reading Llama Guard's answer,
and deciding what a screen's answer (or its absence) means for a prompt.

Matching works on folded text: invisible format characters removed (so "a\u200bss" is "ass"),
compatibility forms and accents undone ("Ａ", "á" -> "a"), case folded, and every run of
whitespace made one space. A blocked entry matches only as whole words: "ass" refuses
"ASS!" but not "class".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Protocol

from bot.i18n import Text, TextList
from storage.models import ScreenPolicy

# Bounds on a server's list: every entry is shown to moderators in one reply.
MAX_ENTRIES = 80
MAX_ENTRY_CHARS = 40

# Characters that render as nothing (or as a blank) and so can hide inside a word. Unicode's
# format category (Cf: U+200B-U+200F, U+2060-U+2064, U+FEFF, U+00AD, U+180E, U+061C, tags ...)
# is removed wholesale; these are the invisible ones from other categories.
_INVISIBLE_OTHERS = frozenset(
    {
        "\u034f",  # combining grapheme joiner (Mn)
        "\u115f",  # Hangul choseong filler
        "\u1160",  # Hangul jungseong filler
        "\u17b4",  # Khmer vowel inherent aq
        "\u17b5",  # Khmer vowel inherent aa
        "\u3164",  # Hangul filler
        "\uffa0",  # halfwidth Hangul filler
        "\u2800",  # Braille pattern blank
    }
)
# Variation selectors: they only pick a glyph.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_WHITESPACE = re.compile(r"\s+")


def _visible(char: str) -> bool:
    return char not in _INVISIBLE_OTHERS and unicodedata.category(char) != "Cf"


def fold(text: str) -> str:
    """`text` as it is compared: no invisible characters, no accents, case folded, and every
    run of whitespace one space (leading and trailing trimmed)."""
    if text.isascii():  # most prompts: nothing invisible, nothing to decompose
        return _WHITESPACE.sub(" ", text.lower()).strip()
    visible = _VARIATION_SELECTORS.sub("", "".join(c for c in text if _visible(c)))
    decomposed = unicodedata.normalize("NFKD", visible)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    # casefold can produce new combinable forms ("ß" -> "ss" is fine; "İ" -> "i̇"): fold again.
    folded = unicodedata.normalize("NFKD", bare.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return _WHITESPACE.sub(" ", folded).strip()


class EntryProblem(ValueError):
    """A blocked entry a moderator typed cannot be kept; `text` says why (in their language)."""

    def __init__(self, reason: Text) -> None:
        super().__init__(reason.render(None))
        self.text = reason


def normalize_entry(raw: str) -> str:
    """The form a blocked word or phrase is kept in (folded), or EntryProblem."""
    entry = fold(raw)
    if not entry:
        raise EntryProblem(Text("safety.entry_empty"))
    if len(entry) > MAX_ENTRY_CHARS:
        raise EntryProblem(Text("safety.entry_long", {"limit": MAX_ENTRY_CHARS}))
    if not any(c.isalnum() for c in entry):
        raise EntryProblem(Text("safety.entry_no_letter"))
    return entry


@lru_cache(maxsize=256)
def _pattern(entries: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern for a list (cached: a server's list changes rarely, prompts often)."""
    folded = {fold(entry) for entry in entries} - {""}
    if not folded:
        return None
    # Longest first, so a phrase wins over a word inside it; a space in an entry matches the
    # one space folding leaves of any run.
    alternatives = sorted(folded, key=lambda entry: (-len(entry), entry))
    body = "|".join(re.escape(entry) for entry in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


def first_blocked(texts: Iterable[str | None], entries: Iterable[str]) -> str | None:
    """The first blocked entry (in its kept form) found as whole words in any of `texts`."""
    pattern = _pattern(tuple(entries))
    if pattern is None:
        return None
    for text in texts:
        if not text:
            continue
        found = pattern.search(fold(text))
        if found is not None:
            return found.group(0)
    return None


# --- the moderation model -------------------------------------------------------------------

# The MLCommons hazard taxonomy Llama Guard 3 and 4 answer with (English, for logs and the
# audit log; members read the catalog's `hazard.S1` ...).
HAZARDS: dict[str, str] = {
    "S1": "violent crimes",
    "S2": "non-violent crimes",
    "S3": "sex-related crimes",
    "S4": "child sexual exploitation",
    "S5": "defamation",
    "S6": "specialized advice",
    "S7": "privacy",
    "S8": "intellectual property",
    "S9": "indiscriminate weapons",
    "S10": "hate",
    "S11": "suicide and self-harm",
    "S12": "sexual content",
    "S13": "elections",
    "S14": "code interpreter abuse",
}
_CODE = re.compile(r"^S\d{1,2}$")


def hazard_name(code: str) -> str:
    return HAZARDS.get(code, f"category {code}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the moderation model said: safe, or unsafe with its category codes (may be empty)."""

    safe: bool
    categories: tuple[str, ...] = ()

    def describe(self) -> str:
        """In English, for logs and the audit log."""
        if not self.categories:
            return "unspecified"
        return ", ".join(f"{code} {hazard_name(code)}" for code in self.categories)

    def categories_text(self) -> TextList:
        """The categories as the member reads them, in their language."""
        if not self.categories:
            return TextList((Text("hazard.unspecified"),))
        return TextList(tuple(_hazard_text(code) for code in self.categories))


def _hazard_text(code: str) -> Text:
    name = Text(f"hazard.{code}") if code in HAZARDS else Text("hazard.other", {"code": code})
    return Text("hazard.item", {"code": code, "name": name})


def parse_guard_answer(text: str) -> Verdict | None:
    """Llama Guard's answer ("safe", or "unsafe" then a line like "S1,S10"); None when it is
    neither, which counts as the screen being unavailable."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    head = lines[0].lower()
    if head == "safe" and len(lines) == 1:
        return Verdict(safe=True)
    if head != "unsafe" or len(lines) > 2:
        return None
    if len(lines) == 1:
        return Verdict(safe=False)
    codes = tuple(code.strip().upper() for code in lines[1].split(",") if code.strip())
    if not codes or not all(_CODE.match(code) for code in codes):
        return None
    return Verdict(safe=False, categories=tuple(dict.fromkeys(codes)))


class ScreenUnavailable(Exception):
    """The screen gave no usable answer (timeout, 5xx, 429, refused, unreadable)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PromptScreen(Protocol):
    """A moderation model: the raw answer for a prompt, or ScreenUnavailable."""

    async def screen(self, prompt: str) -> str: ...


class Outcome(Enum):
    PASS = "pass"
    FLAGGED = "flagged"
    UNAVAILABLE_REFUSED = "unavailable_refused"
    UNAVAILABLE_ALLOWED = "unavailable_allowed"


def judge(verdict: Verdict | None, when_unavailable: ScreenPolicy) -> Outcome:
    """A verdict (None: no usable answer) under the server's choice for an unavailable screen."""
    if verdict is None:
        if when_unavailable == "allow":
            return Outcome.UNAVAILABLE_ALLOWED
        return Outcome.UNAVAILABLE_REFUSED
    return Outcome.PASS if verdict.safe else Outcome.FLAGGED
