"""Modals: Discord's checks on a type 9 response, and the MODAL_SUBMIT data a client sends.

A modal's ``data`` is ``{custom_id, title, components}``; each top-level component is an action
row (type 1) holding exactly one text input (type 4), or a label (type 18) wrapping one text
input (discord.py's ``ui.Label``). Selects, file uploads and text displays, which Discord also
allows in modals now, are not modelled: the stand-in refuses them with a 400 that says so.

A submission's ``data.components`` mirrors the modal: ``{type: 1, id, components: [{type: 4,
id, custom_id, value}]}`` per row, ``{type: 18, id, component: {type: 4, id, custom_id,
value}}`` per label.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .errors import DiscordError, invalid_form

ACTION_ROW, TEXT_INPUT, LABEL = 1, 4, 18
SHORT, PARAGRAPH = 1, 2
MAX_ROWS = 5
MAX_CUSTOM_ID = 100
MAX_TITLE = 45
MAX_LABEL = 45
MAX_LABEL_DESCRIPTION = 100
MAX_PLACEHOLDER = 100
MAX_INPUT = 4000


def _required(field: str) -> DiscordError:
    return invalid_form(field, "BASE_TYPE_REQUIRED", "This field is required")


def _too_long(field: str, limit: int) -> DiscordError:
    return invalid_form(field, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _text(data: Mapping[str, Any], key: str, field: str, limit: int, *, required: bool) -> None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise _required(field)
        return
    if not isinstance(value, str):
        raise invalid_form(field, "BASE_TYPE_STRING", "Must be a string.")
    if len(value) > limit:
        raise _too_long(field, limit)


def _length(data: Mapping[str, Any], key: str, field: str, low: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_form(field, "NUMBER_TYPE_COERCE", f"Value {value!r} is not int.")
    if value > MAX_INPUT:
        raise invalid_form(field, "NUMBER_TYPE_MAX", f"int value should be <= {MAX_INPUT}.")
    if value < low:
        raise invalid_form(field, "NUMBER_TYPE_MIN", f"int value should be >= {low}.")
    return value


def check_modal(data: Mapping[str, Any]) -> None:
    """Raises Discord's 400 (50035) for a modal Discord would refuse."""
    _text(data, "custom_id", "data.custom_id", MAX_CUSTOM_ID, required=True)
    _text(data, "title", "data.title", MAX_TITLE, required=True)
    rows = data.get("components")
    if not isinstance(rows, list) or not rows:
        raise _required("data.components")
    if len(rows) > MAX_ROWS:
        raise _too_long("data.components", MAX_ROWS)
    seen: set[str] = set()
    for index, row in enumerate(rows):
        field = f"data.components.{index}"
        kind = row.get("type") if isinstance(row, dict) else None
        if kind == ACTION_ROW:
            inner = row.get("components")
            if not isinstance(inner, list) or len(inner) != 1:
                text = "An action row in a modal holds exactly one text input."
                raise invalid_form(f"{field}.components", "BASE_TYPE_BAD_LENGTH", text)
            _check_input(inner[0], f"{field}.components.0", labelled=False)
            custom_id = inner[0]["custom_id"]
        elif kind == LABEL:
            _text(row, "label", f"{field}.label", MAX_LABEL, required=True)
            _text(row, "description", f"{field}.description", MAX_LABEL_DESCRIPTION, required=False)
            component = row.get("component")
            _check_input(component, f"{field}.component", labelled=True)
            custom_id = component["custom_id"]
        else:
            text = f"Component type {kind} in a modal is not modelled by the stand-in."
            raise invalid_form(f"{field}.type", "UNION_TYPE_CHOICES", text)
        if custom_id in seen:
            text = "Component custom id cannot be duplicated"
            raise invalid_form(field, "COMPONENT_CUSTOM_ID_DUPLICATED", text)
        seen.add(custom_id)


def _check_input(component: Any, field: str, *, labelled: bool) -> None:
    if not isinstance(component, dict) or component.get("type") != TEXT_INPUT:
        text = "Only text inputs (type 4) are modelled in the stand-in's modals."
        raise invalid_form(f"{field}.type", "UNION_TYPE_CHOICES", text)
    if component.get("style") not in (SHORT, PARAGRAPH):
        text = f"Value must be one of {{{SHORT}, {PARAGRAPH}}}."
        raise invalid_form(f"{field}.style", "BASE_TYPE_CHOICES", text)
    _text(component, "custom_id", f"{field}.custom_id", MAX_CUSTOM_ID, required=True)
    # Inside a label the text input's own (deprecated) label is left out.
    _text(component, "label", f"{field}.label", MAX_LABEL, required=not labelled)
    _text(component, "placeholder", f"{field}.placeholder", MAX_PLACEHOLDER, required=False)
    _text(component, "value", f"{field}.value", MAX_INPUT, required=False)
    low = _length(component, "min_length", f"{field}.min_length", 0)
    high = _length(component, "max_length", f"{field}.max_length", 1)
    if low is not None and high is not None and low > high:
        text = "min_length must be less than or equal to max_length."
        raise invalid_form(f"{field}.min_length", "BASE_TYPE_BAD_INT", text)


def text_inputs(modal: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The modal's text inputs, in order."""
    for row in modal.get("components") or []:
        if row.get("type") == LABEL:
            yield row["component"]
        else:
            yield from row.get("components") or []


def submission_components(
    modal: Mapping[str, Any], values: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``data.components`` of the MODAL_SUBMIT a client sends for ``values``.

    Raises ValueError where a real client would not let the member submit: an unknown input,
    an empty required one, a value outside min/max length.
    """
    inputs = {component["custom_id"]: component for component in text_inputs(modal)}
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise ValueError(f"the modal has no inputs {unknown}; it has {sorted(inputs)}")
    ids = _ComponentIds()
    components = []
    for row in modal.get("components") or []:
        row_id = ids.of(row)
        if row.get("type") == LABEL:
            submitted = _submitted(row["component"], values, ids)
            components.append({"type": LABEL, "id": row_id, "component": submitted})
        else:
            inner = [_submitted(c, values, ids) for c in row.get("components") or []]
            components.append({"type": ACTION_ROW, "id": row_id, "components": inner})
    return components


class _ComponentIds:
    """Discord numbers the components that have no ``id`` in order (depth first)."""

    def __init__(self) -> None:
        self.next = 0

    def of(self, component: Mapping[str, Any]) -> int:
        self.next += 1
        given = component.get("id")
        return int(given) if given is not None else self.next


def _submitted(
    component: Mapping[str, Any], values: Mapping[str, str], ids: _ComponentIds
) -> dict[str, Any]:
    custom_id = component["custom_id"]
    value = values.get(custom_id, component.get("value") or "")
    if not isinstance(value, str):
        raise ValueError(f"the value of {custom_id!r} must be a string, not {value!r}")
    required = component.get("required", True)
    if required and not value:
        raise ValueError(f"input {custom_id!r} is required")
    low = component.get("min_length") or 0
    high = component.get("max_length") or MAX_INPUT
    if value and not low <= len(value) <= high:
        raise ValueError(f"input {custom_id!r} takes {low} to {high} characters, not {len(value)}")
    return {"type": TEXT_INPUT, "id": ids.of(component), "custom_id": custom_id, "value": value}
