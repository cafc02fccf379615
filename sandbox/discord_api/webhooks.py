"""Interaction routes: the callback, and the token webhook (``@original``, followups).

Rules enforced: one first response within ``first_response_deadline`` (else 10062), a second
one gets 40060, tokens die after ``token_ttl`` or ``expire_interaction`` (401 / 50027). The
response type must suit the interaction type (``ALLOWED_RESPONSES``); a modal (type 9) must be
the first response (so never after a defer) and pass ``modals.check_modal`` (400 / 50035).
A modal submission may be answered with a message, a defer, or, when the modal was opened from
a component on a message, an update of that message; a DEFERRED_UPDATE of a modal submission
without a message only closes the modal.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from .errors import (
    DiscordError,
    already_acknowledged,
    invalid_form,
    invalid_webhook_token,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)
from .interaction_events import CHAT_INPUT
from .messages import EDIT_FLAGS, RESPONSE_FLAGS, MessageStore, check_upload_sizes
from .modals import check_modal
from .models import EPHEMERAL, LOADING, Interaction, Message
from .multipart import Upload
from .payloads import interaction_metadata, message_payload
from .request_utils import body_of, payload_of
from .responses import json_response, no_content
from .state import SandboxState

MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
MODAL_SUBMIT = 5
# Message types of response messages.
DEFAULT, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND = 0, 20, 23
# Interaction type -> callback types Discord accepts for it.
ALLOWED_RESPONSES = {
    2: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    3: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL},
    4: {AUTOCOMPLETE_RESULT},
    5: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE},
}
MAX_CHOICES = 25
_TRUE = ("true", "True", "1")


def _flag_query(request: web.Request, name: str) -> bool:
    return request.query.get(name) in _TRUE


class InteractionApi:
    def __init__(self, state: SandboxState, store: MessageStore) -> None:
        self.state = state
        self.store = store

    def routes(self, prefix: str) -> list[web.RouteDef]:
        message_path = prefix + "/webhooks/{app}/{token}/messages/{message}"
        return [
            web.post(prefix + "/interactions/{interaction}/{token}/callback", self.callback),
            web.post(prefix + "/webhooks/{app}/{token}", self.followup),
            web.get(message_path, self.get_message),
            web.patch(message_path, self.edit_message),
            web.delete(message_path, self.delete_message),
        ]

    # -- the callback --------------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        interaction = self.state.interactions.get(_int(request.match_info["interaction"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise unknown_interaction()
        if interaction.responded is not None:
            raise already_acknowledged()
        elapsed = time.monotonic() - interaction.sent_at
        if interaction.expired or elapsed > self.state.first_response_deadline:
            raise unknown_interaction()
        payload = payload_of(request)
        kind = payload.get("type")
        if kind not in ALLOWED_RESPONSES.get(interaction.type, set()):
            text = f"Callback type {kind} is not valid for interaction type {interaction.type}."
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", text)
        uploads = body_of(request).uploads
        check_upload_sizes(uploads, self.state.attachment_size_limit)
        message = self._respond(interaction, kind, payload.get("data") or {}, uploads)
        interaction.responded = kind
        interaction.response_time = elapsed
        if not _flag_query(request, "with_response"):
            return no_content()
        return json_response(_callback_body(interaction, kind, message))

    def _respond(
        self, interaction: Interaction, kind: int, data: dict[str, Any], uploads: list[Upload]
    ) -> Message | None:
        """Applies the response; returns the message it created or updated."""
        if kind == MESSAGE:
            message = self._new_message(interaction, data, uploads, RESPONSE_FLAGS, 0)
        elif kind == DEFERRED_MESSAGE:
            # Only EPHEMERAL may accompany a defer, and that choice is final.
            flags = int(data.get("flags") or 0) & EPHEMERAL
            message = self._new_message(interaction, {}, [], 0, LOADING | flags, allow_empty=True)
        elif kind == DEFERRED_UPDATE and interaction.message is None:
            if interaction.type != MODAL_SUBMIT:
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "No message.")
            return None  # the modal closes; nothing is posted
        elif kind in (DEFERRED_UPDATE, UPDATE):
            if interaction.message is None:
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "No message.")
            message = interaction.message
            if kind == UPDATE:
                self.store.edit(message, data, uploads, allowed_flags=EDIT_FLAGS)
        elif kind == AUTOCOMPLETE_RESULT:
            choices = list(data.get("choices") or [])
            if len(choices) > MAX_CHOICES:
                text = f"Must be {MAX_CHOICES} or fewer in length."
                raise invalid_form("data.choices", "BASE_TYPE_MAX_LENGTH", text)
            interaction.autocomplete_choices = choices
            return None
        else:  # MODAL
            check_modal(data)
            interaction.modal = data
            return None
        interaction.original_message = message
        interaction.ephemeral = message.ephemeral
        return message

    def _new_message(
        self,
        interaction: Interaction,
        data: dict[str, Any],
        uploads: list[Upload],
        allowed_flags: int,
        extra_flags: int,
        *,
        allow_empty: bool = False,
    ) -> Message:
        """A message authored by the bot through the interaction's webhook."""
        return self.store.create(
            interaction.channel,
            self.state.bot_user,
            data,
            uploads,
            allowed_flags=allowed_flags,
            extra_flags=extra_flags,
            message_type=_message_type(interaction),
            allow_empty=allow_empty,
            interaction_metadata=interaction_metadata(interaction),
            webhook_id=interaction.application_id,
            application_id=interaction.application_id,
            interaction_id=interaction.id,
        )

    # -- the token webhook ---------------------------------------------------------------------

    def _interaction(self, request: web.Request) -> Interaction:
        if request.match_info["app"] != str(self.state.application_id):
            raise unknown_webhook()
        interaction = self.state.interaction_by_token(request.match_info["token"])
        if interaction is None:
            raise invalid_webhook_token()
        age = time.monotonic() - interaction.sent_at
        if interaction.expired or age > self.state.token_ttl:
            raise invalid_webhook_token()
        if interaction.responded is None:
            # The webhook exists only once the interaction has been acknowledged.
            raise unknown_webhook()
        return interaction

    def _message(self, request: web.Request, interaction: Interaction) -> Message:
        raw = request.match_info["message"]
        original = interaction.original_message
        if raw == "@original":
            message = original
        else:
            candidates = [m for m in (original, *interaction.followups) if m is not None]
            message = next((m for m in candidates if str(m.id) == raw), None)
        if message is None or message.deleted:
            raise unknown_message()
        return message

    async def get_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        return json_response(message_payload(self._message(request, interaction)))

    async def edit_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        message = self._message(request, interaction)
        self.store.edit(message, payload_of(request), body_of(request).uploads)
        return json_response(message_payload(message))

    async def delete_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        self.store.delete(self._message(request, interaction))
        return no_content()

    async def followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        payload, uploads = payload_of(request), body_of(request).uploads
        original = interaction.original_message
        filling = original is not None and original.loading and not original.deleted
        if filling and original is not interaction.message:
            # After a defer, the first followup fills in the "thinking" message (keeping its
            # ephemeral choice) instead of posting a new one; once that message is deleted, a
            # followup is a new message again.
            assert original is not None
            message = self.store.edit(original, payload, uploads)
        else:
            message = self._new_message(interaction, payload, uploads, RESPONSE_FLAGS, 0)
            interaction.followups.append(message)
        if _flag_query(request, "wait"):
            return json_response(message_payload(message))
        return no_content()


def _callback_body(interaction: Interaction, kind: int, message: Message | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"type": kind}
    if message is not None and kind in (MESSAGE, UPDATE):
        resource["message"] = message_payload(message)
    return {
        "interaction": {
            "id": str(interaction.id),
            "type": interaction.type,
            "activity_instance_id": None,
            "response_message_id": None if message is None else str(message.id),
            "response_message_loading": kind == DEFERRED_MESSAGE,
            "response_message_ephemeral": message is not None and message.ephemeral,
        },
        "resource": resource,
    }


def _message_type(interaction: Interaction) -> int:
    """CHAT_INPUT_COMMAND for slash command answers, CONTEXT_MENU_COMMAND for context menu
    ones, DEFAULT for the rest."""
    if interaction.type != 2:
        return DEFAULT
    if interaction.data.get("type", CHAT_INPUT) == CHAT_INPUT:
        return CHAT_INPUT_COMMAND
    return CONTEXT_MENU_COMMAND


def _int(raw: str) -> int:
    if not raw.isdigit():
        raise DiscordError(404, 10062, "Unknown interaction")
    return int(raw)
