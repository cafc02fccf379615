"""bot.domain.safety: folding, blocked-word matching, Llama Guard's answers, the decision."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.safety import (
    HAZARDS,
    MAX_ENTRY_CHARS,
    EntryProblem,
    Outcome,
    Verdict,
    first_blocked,
    fold,
    judge,
    normalize_entry,
    parse_guard_answer,
)

INVISIBLES = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u200e",
    "\u200f",
    "\u2060",
    "\u2061",
    "\u2062",
    "\u2063",
    "\u2064",
    "\ufeff",
    "\u00ad",
    "\u034f",
    "\u180e",
    "\u061c",
    "\u3164",
    "\ufe0f",
]


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Hello", "hello"),
        ("  Crème   Brûlée\t\n", "creme brulee"),
        ("ＡＳＳ", "ass"),  # fullwidth
        ("Straße", "strasse"),
        ("ﬁre", "fire"),  # ligature
        ("a\u200bs\u00ads", "ass"),
        ("İstanbul", "istanbul"),
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize("mark", INVISIBLES)
def test_every_invisible_mark_is_removed(mark: str) -> None:
    assert fold(f"b{mark}a{mark}d") == "bad"


BLOCKED = ["ass", "bad phrase", "naïve"]


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("an ass in the field", "ass"),
        ("ASS!", "ass"),
        ("Ássés", None),  # a different word once folded ("asses")
        ("a classy class", None),
        ("assassin", None),
        ("(ass)", "ass"),
        ("a\u200bss", "ass"),
        ("a bad   phrase here", "bad phrase"),
        ("a bad\n\u200bphrase", "bad phrase"),
        ("Bad Phrasebook", None),
        ("badphrase", None),
        ("so naive", "naïve"),
        ("so NAÏVE", "naïve"),
        ("nothing here", None),
    ],
)
def test_first_blocked(text: str, matched: str | None) -> None:
    entries = [normalize_entry(entry) for entry in BLOCKED]
    expected = normalize_entry(matched) if matched else None
    assert first_blocked([text], entries) == expected


def test_negative_prompt_is_checked_and_none_skipped() -> None:
    assert first_blocked(["fine", None, "no ass"], ["ass"]) == "ass"
    assert first_blocked(["fine", None], ["ass"]) is None
    assert first_blocked(["ass"], []) is None


def test_a_phrase_wins_over_a_word_inside_it() -> None:
    assert first_blocked(["a bad phrase"], ["bad", "bad phrase"]) == "bad phrase"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("  Bad   Word ", "bad word"), ("Ünïcode", "unicode"), ("c++", "c++")],
)
def test_normalize_entry(raw: str, kept: str) -> None:
    assert normalize_entry(raw) == kept


@pytest.mark.parametrize("raw", ["", "   ", "\u200b\u200b", "!!!", "x" * (MAX_ENTRY_CHARS + 1)])
def test_normalize_entry_refuses(raw: str) -> None:
    with pytest.raises(EntryProblem):
        normalize_entry(raw)


words = st.text(alphabet=st.characters(categories=["Ll", "Lu"]), min_size=1, max_size=12)


@given(
    word=words,
    before=st.sampled_from(["", "some ", "(", "x. "]),
    after=st.sampled_from(["", " now", "!", ", y"]),
    hidden=st.lists(st.sampled_from(INVISIBLES), max_size=3),
    upper=st.booleans(),
    accents=st.booleans(),
)
def test_hidden_recased_and_accented_words_are_still_found(
    word: str, before: str, after: str, hidden: list[str], upper: bool, accents: bool
) -> None:
    entry = fold(word)
    if not entry.isalpha() or len(entry) > MAX_ENTRY_CHARS:
        return  # folding made it something else (a letter can fold to a mark or to digits)
    disguised = entry.upper() if upper and fold(entry.upper()) == entry else entry
    if accents:
        disguised = "".join(c + "\u0301" for c in disguised)  # an acute on every letter
    for index, mark in enumerate(hidden):  # invisible marks inside the word
        at = min(len(disguised), index + 1)
        disguised = disguised[:at] + mark + disguised[at:]
    assert first_blocked([before + disguised + after], [entry]) == entry
    # Glued to other letters, it is part of another word.
    assert first_blocked([f"zz{disguised}zz"], [entry]) is None


@given(st.text(max_size=80))
def test_fold_is_idempotent_and_leaves_no_invisibles(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert not any(unicodedata.category(c) == "Cf" for c in once)
    assert "  " not in once and once == once.strip()


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("safe", Verdict(safe=True)),
        ("  Safe \n", Verdict(safe=True)),
        ("unsafe\nS1", Verdict(safe=False, categories=("S1",))),
        ("unsafe\nS1,S10", Verdict(safe=False, categories=("S1", "S10"))),
        ("unsafe\n s2 , S2 ", Verdict(safe=False, categories=("S2",))),
        ("unsafe", Verdict(safe=False)),
        ("\n\nunsafe\n\nS14\n", Verdict(safe=False, categories=("S14",))),
        ("", None),
        ("I cannot help with that.", None),
        ("safe\nS1", None),
        ("unsafe\nviolence", None),
        ("unsafe\nS1\nmore", None),
        ("unsafe\n,", None),
    ],
)
def test_parse_guard_answer(answer: str, verdict: Verdict | None) -> None:
    assert parse_guard_answer(answer) == verdict


def test_every_hazard_has_a_name_and_describe_names_them() -> None:
    assert set(HAZARDS) == {f"S{n}" for n in range(1, 15)}
    assert Verdict(False, ("S1", "S10")).describe() == "S1 violent crimes, S10 hate"
    assert Verdict(False, ("S15",)).describe() == "S15 category S15"
    assert Verdict(False).describe() == "unspecified"


@pytest.mark.parametrize(
    ("verdict", "policy", "outcome"),
    [
        (Verdict(True), "refuse", Outcome.PASS),
        (Verdict(True), "allow", Outcome.PASS),
        (Verdict(False, ("S1",)), "refuse", Outcome.FLAGGED),
        (Verdict(False, ("S1",)), "allow", Outcome.FLAGGED),
        (None, "refuse", Outcome.UNAVAILABLE_REFUSED),
        (None, "allow", Outcome.UNAVAILABLE_ALLOWED),
    ],
)
def test_judge(verdict: Verdict | None, policy: str, outcome: Outcome) -> None:
    assert judge(verdict, policy) == outcome  # type: ignore[arg-type]
