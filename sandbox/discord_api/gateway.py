"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY, RESUME with replay, dispatches.

Frames are plain JSON text: discord.py asks for zlib-stream but inflates only binary frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .payloads import bot_user_payload, guild_create_payload, member_payload
from .state import SandboxState

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE = 0, 1, 2, 3, 4
RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 6, 7, 8, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
INTENT_GUILD_PRESENCES = 1 << 8
CLOSE_UNKNOWN_ERROR, CLOSE_DECODE_ERROR, CLOSE_AUTH_FAILED, CLOSE_ALREADY_AUTHED = (
    4000, 4002, 4004, 4005,
)  # fmt: skip
CLOSE_INVALID_SHARD = 4010
BACKLOG = 5000  # dispatches kept per session for RESUME replay


class _Connection:
    """One websocket; frames go through a queue so dispatching never awaits."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.session: GatewaySession | None = None
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())

    def send(self, frame: dict[str, Any]) -> None:
        if not self._writer.done():
            self._outbox.put_nowait(json.dumps(frame, separators=(",", ":")))

    async def _write(self) -> None:
        while (text := await self._outbox.get()) is not None:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int, message: str = "") -> None:
        """Sends what is queued, then the close frame."""
        await self.stop_writer()
        await self.ws.close(code=code, message=message.encode())

    async def stop_writer(self) -> None:
        """Drains the queue and ends the writer; later frames are dropped."""
        self._outbox.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


@dataclass
class GatewaySession:
    id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    backlog: deque[tuple[int, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=BACKLOG)
    )
    connection: _Connection | None = None

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Numbered and kept for replay; sent now if a socket is attached."""
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.backlog.append((self.seq, frame))
        if self.connection is not None:
            self.connection.send(frame)


class Gateway:
    def __init__(self, state: SandboxState, bot_token: str) -> None:
        self.state = state
        self.bot_token = bot_token
        self.url = ""  # "ws://127.0.0.1:PORT/gateway", set once the server listens
        self.sessions: dict[str, GatewaySession] = {}
        self.connected = asyncio.Event()  # a session has IDENTIFYed (or RESUMEd) on a live socket
        self.identifies = 0
        self.resumes = 0
        # While set, new websockets are refused with 503: the gateway is out of reach.
        self.refusing = False
        self.refused = 0
        self._connections: set[_Connection] = set()
        self._closing: set[asyncio.Task[None]] = set()  # sockets being closed in the background
        state.listeners.append(self._on_state_event)

    # -- dispatching ---------------------------------------------------------------------------

    def live_sessions(self) -> list[GatewaySession]:
        """The newest session per shard: the ones a real gateway would deliver to."""
        latest: dict[int, GatewaySession] = {}
        for session in self.sessions.values():
            latest[session.shard[0]] = session
        return list(latest.values())

    def session_for_guild(self, guild_id: int) -> GatewaySession | None:
        for session in self.live_sessions():
            shard_id, shard_count = session.shard
            if (guild_id >> 22) % shard_count == shard_id:
                return session
        return None

    def dispatch_to_guild(self, guild_id: int, event: str, data: dict[str, Any]) -> None:
        session = self.session_for_guild(guild_id)
        if session is None:
            raise RuntimeError("the bot has no gateway session: connect it first")
        session.dispatch(event, data)

    def _on_state_event(self, event: str, data: dict[str, Any], intent: int) -> None:
        guild_id = int(data.get("guild_id") or data.get("id") or 0)
        session = self.session_for_guild(guild_id)
        if session is not None and session.intents & intent:
            session.dispatch(event, data)

    # -- websocket -----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refusing:
            self.refused += 1
            return web.Response(status=503, text="Sandbox gateway outage.")
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        connection = _Connection(ws)
        self._connections.add(connection)
        connection.send({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_frame(connection, message.data)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._detach(connection)
            await connection.stop_writer()
        return ws

    async def _on_frame(self, connection: _Connection, text: str) -> None:
        try:
            frame = json.loads(text)
            op, data = frame["op"], frame.get("d")
        except (ValueError, KeyError, TypeError):
            await connection.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        if op == HEARTBEAT:
            connection.send({"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(connection, data or {})
        elif op == RESUME:
            await self._resume(connection, data or {})
        elif op == REQUEST_MEMBERS:
            self._request_members(connection, data or {})
        else:
            # Presence and voice updates (and anything newer) need no answer here.
            _log.debug("gateway: ignoring op %s", op)

    def _token_ok(self, token: Any) -> bool:
        return isinstance(token, str) and token.removeprefix("Bot ") == self.bot_token

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        if not self._token_ok(data.get("token")):
            await connection.close(CLOSE_AUTH_FAILED, "Authentication failed.")
            return
        if connection.session is not None:
            await connection.close(CLOSE_ALREADY_AUTHED, "Already authenticated.")
            return
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < shard_count:
            await connection.close(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        session = GatewaySession(
            secrets.token_hex(16), int(data.get("intents", 0)), (shard_id, shard_count)
        )
        self.sessions[session.id] = session
        self._attach(connection, session)
        self.identifies += 1
        guilds = [g for g in self.state.guilds.values() if (g.id >> 22) % shard_count == shard_id]
        session.dispatch("READY", self._ready_payload(session, [g.id for g in guilds]))
        all_members = bool(session.intents & INTENT_GUILD_PRESENCES)
        for guild in guilds:
            payload = guild_create_payload(
                guild, self.state.bot_user, all_members=all_members, unavailable=False
            )
            session.dispatch("GUILD_CREATE", payload)
        self.connected.set()

    def _ready_payload(self, session: GatewaySession, guild_ids: list[int]) -> dict[str, Any]:
        return {
            "v": 10,
            "user": bot_user_payload(self.state.bot_user),
            "user_settings": {},
            "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "shard": list(session.shard),
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["sandbox"],
            "_trace": ['["sandbox-gateway",{"micros":0}]'],
        }

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        if not self._token_ok(data.get("token")):
            await connection.close(CLOSE_AUTH_FAILED, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            # Not resumable: the client must IDENTIFY afresh.
            connection.send({"op": INVALID_SESSION, "d": False})
            return
        if session.connection is not None and session.connection is not connection:
            old = session.connection
            self._detach(old)
            task = asyncio.create_task(old.close(CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere."))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._attach(connection, session)
        after = int(data.get("seq") or 0)
        for seq, frame in list(session.backlog):
            if seq > after:
                connection.send(frame)
        self.resumes += 1
        session.dispatch("RESUMED", {"_trace": ['["sandbox-gateway",{"micros":0}]']})
        self.connected.set()

    def _request_members(self, connection: _Connection, data: dict[str, Any]) -> None:
        session = connection.session
        if session is None:
            return
        raw_ids = data.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        query = str(data.get("query") or "").lower()
        user_ids = {str(u) for u in data.get("user_ids") or []}
        for raw_guild_id in guild_ids:
            guild = self.state.guilds.get(int(raw_guild_id or 0))
            if guild is None:
                continue
            members = [
                m
                for m in guild.members.values()
                if (str(m.id) in user_ids)
                or (not user_ids and m.user.username.lower().startswith(query))
            ]
            limit = int(data.get("limit") or 0)
            chunk = {
                "guild_id": str(guild.id),
                "members": [member_payload(m, guild) for m in members[: limit or None]],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": sorted(user_ids - {str(m.id) for m in members}),
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def _attach(self, connection: _Connection, session: GatewaySession) -> None:
        connection.session = session
        session.connection = connection

    def _detach(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        session = connection.session
        if session is not None and session.connection is connection:
            session.connection = None
        if not any(s.connection is not None for s in self.sessions.values()):
            self.connected.clear()

    # -- control -------------------------------------------------------------------------------

    async def disconnect(self, *, resumable: bool) -> None:
        """Drop the bot's sockets: resumable ones close with 4000, others get INVALID_SESSION."""
        for session in self.live_sessions():
            connection = session.connection
            if connection is None:
                continue
            if resumable:
                self._detach(connection)
                await connection.close(CLOSE_UNKNOWN_ERROR, "Sandbox disconnect.")
            else:
                del self.sessions[session.id]
                self._detach(connection)
                connection.send({"op": INVALID_SESSION, "d": False})

    async def close(self) -> None:
        for connection in list(self._connections):
            self._detach(connection)
            await connection.close(1001, "Sandbox closing.")
