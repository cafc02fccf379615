"""The modals' custom ids carry what their submissions need, and submissions are read back."""

from __future__ import annotations

from cogs.modals import (
    Form,
    animate_modal,
    edit_modal,
    extend_modal,
    parse_form,
    remix_modal,
    submitted,
)


def test_custom_ids_round_trip() -> None:
    assert parse_form(str(remix_modal(12, "p", None).custom_id)) == Form("remix", 12)
    assert parse_form(str(extend_modal(7, "p").custom_id)) == Form("extend", 7)
    assert parse_form(str(animate_modal(3).custom_id)) == Form("animate", 3)
    assert parse_form(str(edit_modal(5).custom_id)) == Form("edit", 5)
    for other in ("video:remix:1", "form:remix:x", "form:nope:1", "form:remix:1:2", ""):
        assert parse_form(other) is None


def test_remix_modal_is_filled_in_within_discord_limits() -> None:
    modal = remix_modal(1, "p" * 5000, "n")
    prompt, negative = modal.children
    assert len(str(getattr(prompt, "default", ""))) == 4000
    assert getattr(negative, "default", None) == "n"
    assert len(str(modal.title)) <= 45 and len(str(modal.custom_id)) <= 100


def test_submitted_values_are_read_by_input() -> None:
    data = {
        "custom_id": "form:remix:1",
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": "prompt", "value": "a"}]},
            {"type": 1, "components": [{"type": 4, "custom_id": "negative_prompt", "value": ""}]},
        ],
    }
    assert submitted(data) == {"prompt": "a", "negative_prompt": ""}
    assert submitted(None) == {}
