"""INTERACTION_CREATE payloads: slash commands (typed from the synced schema), message context
menu commands, buttons, and modal submissions (checked against the bot's modal)."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from typing import Any

from .modals import submission_components
from .models import Channel, Interaction, Member, Message, Role, User
from .payloads import (
    attachment_payload,
    channel_payload,
    member_payload,
    message_payload,
    role_payload,
    user_payload,
)
from .permissions import member_permissions
from .state import SandboxState

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Application command types (``data.type``).
CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = (
    3, 4, 5, 6, 7, 8, 9, 10, 11,
)  # fmt: skip

FileSpec = tuple[str, bytes, str]  # filename, data, content type


def new_token(interaction_id: int) -> str:
    """Shaped like Discord's: base64 of "interaction:<id>:" plus random characters."""
    prefix = base64.urlsafe_b64encode(f"interaction:{interaction_id}:".encode()).decode()
    return prefix.rstrip("=") + secrets.token_urlsafe(96)


class OptionBuilder:
    """Turns ``{"name": value}`` into ``data.options`` (+ ``resolved``) using the command schema."""

    def __init__(self, state: SandboxState, channel: Channel, *, autocomplete: bool) -> None:
        self.state = state
        self.channel = channel
        self.autocomplete = autocomplete
        self.resolved: dict[str, dict[str, Any]] = {}

    def build(
        self,
        schema: list[dict[str, Any]],
        values: dict[str, Any],
        files: dict[str, FileSpec],
        focused: str | None = None,
    ) -> list[dict[str, Any]]:
        known = {option["name"]: option for option in schema}
        unknown = set(values) | set(files)
        unknown -= set(known)
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}; the command has {sorted(known)}")
        options = []
        for name, spec in known.items():
            if name in files or isinstance(values.get(name), tuple):
                if spec["type"] != ATTACHMENT:
                    raise ValueError(f"option {name!r} is of type {spec['type']}, not a file")
                file_spec = files.get(name) or values[name]
                options.append(self._option(spec, self._attachment(file_spec)))
            elif name in values:
                is_focused = name == focused
                value = str(values[name]) if is_focused else self._value(spec, values[name])
                options.append(self._option(spec, value, focused=is_focused))
            elif spec.get("required") and not self.autocomplete:
                raise ValueError(f"option {name!r} is required")
        return options

    @staticmethod
    def _option(spec: dict[str, Any], value: Any, *, focused: bool = False) -> dict[str, Any]:
        option = {"name": spec["name"], "type": spec["type"], "value": value}
        if focused:
            option["focused"] = True
        return option

    def _value(self, spec: dict[str, Any], value: Any) -> Any:
        kind = spec["type"]
        typed = self._typed(kind, value)
        choices = [choice["value"] for choice in spec.get("choices") or []]
        if choices and typed not in choices:
            raise ValueError(f"{value!r} is not one of the choices {choices} of {spec['name']!r}")
        return typed

    def _typed(self, kind: int, value: Any) -> Any:
        if kind == BOOLEAN and isinstance(value, str):
            return value.lower() == "true"
        scalar = {STRING: str, INTEGER: int, BOOLEAN: bool, NUMBER: float}
        if kind in scalar:
            return scalar[kind](value)
        if kind in (USER, MENTIONABLE) and isinstance(value, Member | User):
            return self._user(value)
        if kind in (ROLE, MENTIONABLE) and isinstance(value, Role):
            self._resolve("roles", value.id, role_payload(value))
            return str(value.id)
        if kind == CHANNEL and isinstance(value, Channel):
            return self._channel(value)
        raise ValueError(f"cannot send {value!r} as an option of type {kind}")

    def _resolve(self, kind: str, key: int, payload: dict[str, Any]) -> None:
        # Discord sends no resolved data with autocomplete.
        if not self.autocomplete:
            self.resolved.setdefault(kind, {})[str(key)] = payload

    def _user(self, value: Member | User) -> str:
        user = value.user if isinstance(value, Member) else value
        self._resolve("users", user.id, user_payload(user))
        if isinstance(value, Member):
            guild = self.state.guilds[value.guild_id]
            member = member_payload(value, guild, with_permissions=True)
            member.pop("user")
            self._resolve("members", user.id, member)
        return str(user.id)

    def _channel(self, channel: Channel) -> str:
        data = channel_payload(channel)
        data["permissions"] = str(self._bot_permissions(channel))
        self._resolve("channels", channel.id, data)
        return str(channel.id)

    def _attachment(self, spec: FileSpec) -> str:
        filename, data, content_type = spec
        attachment = self.state.add_attachment(self.channel.id, filename, data, content_type)
        attachment_data = attachment_payload(attachment)
        attachment_data["ephemeral"] = True  # user uploads to commands are ephemeral on Discord
        self._resolve("attachments", attachment.id, attachment_data)
        return str(attachment.id)

    def _bot_permissions(self, channel: Channel) -> int:
        guild = self.state.guilds[channel.guild_id]
        return member_permissions(guild, guild.members[self.state.bot_user.id])


class InteractionFactory:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def command(
        self,
        name: str,
        options: dict[str, Any],
        member: Member,
        channel: Channel,
        *,
        files: dict[str, FileSpec],
        subcommand: Sequence[str],
        focused: str | None = None,
    ) -> Interaction:
        command = self._registered(name, channel, CHAT_INPUT)
        if focused is not None and focused not in options:
            raise ValueError(f"the focused option {focused!r} needs a value in options")
        builder = OptionBuilder(self.state, channel, autocomplete=focused is not None)
        schema, wrap = _walk_subcommands(command, subcommand)
        if focused is not None and not _allows_autocomplete(schema, focused):
            raise ValueError(f"option {focused!r} of /{name} has no autocomplete")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": command.get("type", 1),
            "options": wrap(builder.build(schema, options, files, focused)),
        }
        if builder.resolved:
            data["resolved"] = builder.resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        kind = AUTOCOMPLETE if focused is not None else APPLICATION_COMMAND
        return self._new(kind, data, member, channel)

    def _registered(self, name: str, channel: Channel, kind: int) -> dict[str, Any]:
        command = self.state.find_command(name, channel.guild_id, kind)
        if command is None:
            scopes = [*self.state.commands_for(channel.guild_id), *self.state.global_commands]
            registered = [c["name"] for c in scopes if c.get("type", CHAT_INPUT) == kind]
            what = "message command" if kind == MESSAGE_COMMAND else "command"
            raise ValueError(f"{what} {name!r} is not registered (synced: {registered})")
        return command

    def message_command(self, name: str, target: Message, member: Member) -> Interaction:
        """A message context menu command (Apps > ``name``) run on ``target``."""
        if target.deleted:
            raise ValueError(f"message {target.id} was deleted")
        if target.ephemeral:
            raise ValueError(f"message {target.id} is ephemeral: it has no Apps menu")
        channel = self.state.channels.get(target.channel_id)
        if channel is None:
            raise ValueError(f"the channel of message {target.id} was deleted")
        if channel.guild_id != member.guild_id:
            raise ValueError(f"{member.user.username} is not in the guild of #{channel.name}")
        command = self._registered(name, channel, MESSAGE_COMMAND)
        target_id = str(target.id)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": command["name"],
            "type": MESSAGE_COMMAND,
            "target_id": target_id,
            "resolved": {"messages": {target_id: message_payload(target)}},
        }
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return self._new(APPLICATION_COMMAND, data, member, channel)

    def modal_submit(
        self, opened: Interaction, values: dict[str, str], member: Member
    ) -> Interaction:
        """The member submits the modal the bot answered ``opened`` with."""
        modal = opened.modal
        if modal is None:
            raise ValueError(f"interaction {opened.id} was not answered with a modal")
        if opened.modal_submission is not None:
            raise ValueError(f"the modal of interaction {opened.id} was already submitted")
        if member.id != opened.member.id:
            raise ValueError(
                f"only {opened.member.user.username}, who opened it, sees the modal of "
                f"interaction {opened.id}"
            )
        data = {
            "custom_id": modal["custom_id"],
            "components": submission_components(modal, values),
        }
        # A modal opened from a component on a message says which message.
        message = opened.message if opened.type == MESSAGE_COMPONENT else None
        submission = self._new(MODAL_SUBMIT, data, member, opened.channel, message)
        submission.modal_source = opened
        opened.modal_submission = submission
        return submission

    def button(self, message: Message, custom_id: str, member: Member) -> Interaction:
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        if custom_id not in message.custom_ids():
            raise ValueError(
                f"{custom_id!r} is not on message {message.id}: {message.custom_ids()}"
            )
        channel = self.state.channels[message.channel_id]
        data = {"custom_id": custom_id, "component_type": 2}
        return self._new(MESSAGE_COMPONENT, data, member, channel, message)

    def _new(
        self,
        kind: int,
        data: dict[str, Any],
        member: Member,
        channel: Channel,
        message: Message | None = None,
    ) -> Interaction:
        interaction_id = self.state.ids.next()
        interaction = Interaction(
            id=interaction_id,
            type=kind,
            token=new_token(interaction_id),
            application_id=self.state.application_id,
            guild=self.state.guilds[channel.guild_id],
            channel=channel,
            member=member,
            data=data,
            sent_at=time.monotonic(),
            message=message,
        )
        self.state.interactions[interaction_id] = interaction
        return interaction

    def payload(self, interaction: Interaction) -> dict[str, Any]:
        guild, channel = interaction.guild, interaction.channel
        member_perms = member_permissions(guild, interaction.member)
        bot = guild.members[self.state.bot_user.id]
        payload: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(interaction.application_id),
            "type": interaction.type,
            "data": interaction.data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": {**channel_payload(channel), "permissions": str(member_perms)},
            "member": member_payload(interaction.member, guild, with_permissions=True),
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(member_permissions(guild, bot)),
            "locale": interaction.member.locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.state.attachment_size_limit,
        }
        if interaction.message is not None:
            payload["message"] = message_payload(interaction.message)
        return payload


def _walk_subcommands(
    command: dict[str, Any], path: Sequence[str]
) -> tuple[list[dict[str, Any]], Any]:
    """The option schema at the end of ``path`` and a function nesting options back into it."""
    schema: list[dict[str, Any]] = command.get("options") or []
    chain: list[dict[str, Any]] = []
    for name in path:
        groups = [o for o in schema if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        spec = next((o for o in groups if o["name"] == name), None)
        if spec is None:
            found = [o["name"] for o in groups]
            raise ValueError(f"/{command['name']} has no subcommand {name!r} here (has {found})")
        chain.append(spec)
        schema = spec.get("options") or []
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema):
        names = [o["name"] for o in schema]
        raise ValueError(f"/{command['name']} needs a subcommand (one of {names})")

    def wrap(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for spec in reversed(chain):
            options = [{"name": spec["name"], "type": spec["type"], "options": options}]
        return options

    return schema, wrap


def _allows_autocomplete(schema: list[dict[str, Any]], name: str) -> bool:
    return any(o["name"] == name and o.get("autocomplete") for o in schema)
