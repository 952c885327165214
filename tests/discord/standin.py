"""A loopback Discord: the REST API and the gateway websocket, enough for the unmodified discord.py
client to log in, connect, receive interactions and reactions, answer them and post to channels.

REST under ``/api/v10``: ``/users/@me``, ``/users/{id}``, ``/users/@me/channels`` (direct messages),
``/oauth2/applications/@me``, ``/gateway/bot``,
``/channels/{id}`` and its ``/messages`` (with ``enforce_nonce``), interaction callbacks, webhook
follow-ups and application command sync. The gateway speaks op codes HELLO, IDENTIFY, READY,
GUILD_CREATE, HEARTBEAT/ACK, RESUME/RESUMED and dispatches events the test sends. It enforces the
platform's rules the tests care about (embeds ≤ 10 and ≤ 6,000 characters a message, content ≤ 2,000,
5 messages per 5 s in a channel (429 with retry_after), an interaction answered within 3 s, 401 for a
refused token, 403 for channels the bot may not post in) and records everything it received,
including any message sent without ``allowed_mentions`` set to ping nobody.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback import LoopbackServer
from tests.specs import discord as discord_spec

BOT_ID = 1249000000000000042
APP_ID = 1249000000000000043
GUILD = 1249000000000000007
CHANNEL = 1249000000000000005
BOT_USER = {"id": str(BOT_ID), "username": "paperbot", "discriminator": "0", "avatar": None, "bot": True, "global_name": None}


def _user(user_id: int) -> dict[str, Any]:
    return {"id": str(user_id), "username": f"reader{user_id % 1000}", "discriminator": "0", "avatar": None, "global_name": None}


def embed_size(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 of a message's embeds."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len((embed.get("footer") or {}).get("text", "")) + len((embed.get("author") or {}).get("name", ""))
    return size + sum(len(f.get("name", "")) + len(f.get("value", "")) for f in embed.get("fields", []))


class DiscordStandIn(LoopbackServer):
    """Discord on 127.0.0.1, in a thread of its own; ``api_url`` is what ``DISCORD_API_URL`` takes."""

    def __init__(self, nonce_seconds: float = 120.0, heartbeat_ms: int = 41250) -> None:
        super().__init__()
        self.heartbeat_ms = heartbeat_ms  # HELLO's heartbeat_interval (Discord's is about 41 s)
        self.acking = True  # False: heartbeats go unanswered (a zombie connection the client must leave)
        # Discord remembers a message's nonce for a few minutes only (enforce_nonce): a repeat after that
        # is a new message. Tests that exercise the time after the window shorten it.
        self.nonce_seconds = nonce_seconds
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, JSON body or form fields)
        self.messages: list[dict[str, Any]] = []  # channel messages created
        self.edits: list[dict[str, Any]] = []  # channel messages edited (PATCH), as they are after the edit
        self.arrivals: list[float] = []  # when each of them arrived (monotonic seconds)
        self.followups: list[dict[str, Any]] = []  # interaction callbacks and webhook follow-ups
        self.synced: list[tuple[str, list[dict[str, Any]]]] = []  # (path, commands) of each sync
        self.forbidden: set[int] = set()  # channels answering 403 Missing Permissions
        self.deleted: set[int] = set()  # channels that no longer exist: 404 Unknown Channel (code 10003)
        self.history_reads = 0  # GET /channels/{id}/messages (a crash recovery's look at the channel)
        self.removed: list[dict[str, Any]] = []  # messages deleted (DELETE /channels/{id}/messages/{id})
        self.kinds: dict[int, int] = {}  # channel id → channel type, where not a text channel (0)
        self.refuse_titles: set[str] = set()  # cards with these titles get 400 Invalid Form Body (a poisoned card)
        self.identified = 0  # IDENTIFY received (new sessions)
        self.most_at_once = 0  # the most gateway sockets open at the same time
        self.unauthorized = False  # True: the token is refused (401), as after a reset
        self.limited = 0  # messages refused with 429 (more than 5 in 5 s in a channel)
        self.closed_dms: set[int] = set()  # users who accept no direct messages (403, code 50007)
        self.dm_channels: dict[int, int] = {}  # user id → their DM channel with the bot (POST /users/@me/channels)
        self.late = 0  # interaction callbacks after Discord's 3 s
        self.pinging: list[dict[str, Any]] = []  # messages sent without allowed_mentions {"parse": []}
        self._posted: dict[str, list[float]] = {}
        self._dispatched: dict[str, float] = {}
        self.resumed = 0
        self.heartbeats = 0
        self._seq = 0
        self._next_id = 1249000000000001000
        self._nonces: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.violations: list[str] = []  # requests Discord's spec refuses (tests/specs/discord.py)
        self.expect_violations = False  # a test that sends refused requests on purpose reads `violations` itself

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.violations and not self.expect_violations and exc[0] is None:
            raise AssertionError("requests Discord's spec refuses:\n" + "\n".join(dict.fromkeys(self.violations)))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)

    # ------------------------------------------------------------------------------------------ REST

    def _id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _message(self, channel_id: str, body: dict[str, Any], author: dict[str, Any] = BOT_USER) -> dict[str, Any]:
        return {
            "id": self._id(),
            "channel_id": channel_id,
            "author": author,
            "content": body.get("content") or "",
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [self._attachment(n, a, body) for n, a in enumerate(body.get("attachments", []))],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
            "nonce": body.get("nonce"),
        }

    def _attachment(self, n: int, announced: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """An attachment as Discord's message object has it (id, filename, size, url, proxy_url)."""
        files = body.get("files") or []
        size = len(files[n]["content"]) if n < len(files) else 0
        attachment_id, name = self._id(), announced.get("filename", "")
        url = f"https://cdn.discordapp.com/attachments/{CHANNEL}/{attachment_id}/{name}"
        return {"id": attachment_id, "filename": name, "size": size, "url": url, "proxy_url": url}

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type.startswith("multipart/"):
            fields: dict[str, Any] = {"files": []}
            async for part in await request.multipart():
                if part.name == "payload_json":
                    fields.update(json.loads(await part.text()))
                else:
                    fields["files"].append({"filename": part.filename, "content": await part.read()})  # type: ignore[union-attr]
            return fields
        raw = await request.read()
        return json.loads(raw) if raw else {}

    def _refused(self, body: dict[str, Any]) -> str | None:
        titles = {e.get("title") for e in body.get("embeds") or []}
        return "embeds.0.title: refused by the test" if titles & self.refuse_titles else None

    @staticmethod
    def _limits(body: dict[str, Any]) -> str | None:
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            return "embeds: Must be 10 or fewer in length."
        if sum(embed_size(e) for e in embeds) > 6000:
            return "embeds: Embed size exceeds maximum size of 6000"
        if len(body.get("content") or "") > 2000:
            return "content: Must be 2000 or fewer in length."
        return None

    async def _rest(self, request: web.Request) -> web.Response:
        path, method = "/" + request.match_info["path"], request.method
        body = await self._body(request) if method in ("POST", "PUT", "PATCH") else {}
        self.requests.append((method, path, body))
        if self.unauthorized and path not in ("/gateway",):  # a revoked token: 401 on every endpoint
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        checked = {k: v for k, v in body.items() if k != "files"} if isinstance(body, dict) else body  # files: parts
        found = discord_spec.problems(method, path, dict(request.query), request.content_type, checked)
        self.violations.extend(found)
        parts = path.strip("/").split("/")
        if path in ("/users/@me", "/oauth2/applications/@me", "/gateway/bot", "/gateway"):
            return self._about(path)
        if parts[0] == "users":  # a user (GET /users/{id}), or a direct-message channel with one
            return self._open_dm(int(body["recipient_id"])) if method == "POST" else _json(_user(int(parts[1])))
        if parts[0] == "channels":
            return self._channels(method, parts, body, dict(request.query))
        if parts[0] == "interactions" and parts[-1] == "callback":
            return self._callback(parts[1], body)
        if parts[0] == "webhooks" and method == "POST":
            if problem := self._limits(body):
                return _json({"code": 50035, "message": f"Invalid Form Body: {problem}"}, status=400)
            self.followups.append({"kind": "followup", **body})
            return _json(self._message(str(CHANNEL), body))
        if parts[0] == "applications" and parts[-1] == "commands" and method == "GET":
            registered = [commands for where, commands in self.synced if where == path]
            return _json(
                [{**c, "id": self._id(), "application_id": str(APP_ID), "version": "1"} for c in (registered or [[]])[-1]]
            )
        if parts[0] == "applications" and parts[-1] == "commands" and method == "PUT":
            self.synced.append((path, body if isinstance(body, list) else []))
            return _json([{**c, "id": self._id(), "application_id": str(APP_ID), "version": "1"} for c in body])
        return _json({"code": 0, "message": f"404: {method} {path} is not in the stand-in"}, status=404)

    def _channels(self, method: str, parts: list[str], body: dict[str, Any], query: dict[str, str]) -> web.Response:
        if int(parts[1]) in self.deleted:
            return _json({"code": 10003, "message": "Unknown Channel"}, status=404)
        if len(parts) == 2:
            return _json(self.channel(int(parts[1])))
        if parts[2:] == ["messages"] and method == "POST":
            return self._create_message(parts[1], body)
        if parts[2:] == ["messages"] and method == "GET":  # needs Read Message History; newest first
            limit = min(100, int(query.get("limit", 50)))
            mine = [m for m in reversed(self.messages) if m["channel_id"] == parts[1]]
            self.history_reads += 1
            return _json(mine[:limit])
        if parts[2:3] == ["messages"] and len(parts) == 4 and method == "PATCH":
            return self._edit_message(parts[1], parts[3], body)
        if parts[2:3] == ["messages"] and len(parts) == 4 and method == "DELETE":
            gone = [m for m in self.messages if m["id"] == parts[3] and m["channel_id"] == parts[1]]
            if not gone:
                return _json({"code": 10008, "message": "Unknown Message"}, status=404)
            self.messages.remove(gone[0])
            self.removed.append(gone[0])
            return web.Response(status=204)
        return _json({"code": 0, "message": f"404: {method} /{'/'.join(parts)} is not in the stand-in"}, status=404)

    def _about(self, path: str) -> web.Response:
        # Who the bot is, its application, and where its gateway is.
        if path == "/users/@me":
            if self.unauthorized:  # a revoked token
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
            return _json(BOT_USER)
        if path == "/oauth2/applications/@me":
            return _json(
                {"id": str(APP_ID), "name": "paperbot", "description": "", "icon": None, "bot_public": True}
                | {"bot_require_code_grant": False, "owner": BOT_USER, "verify_key": "0" * 64, "flags": 0}
            )
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1, "session_start_limit": limit})

    def _callback(self, interaction_id: str, body: dict[str, Any]) -> web.Response:
        if time.monotonic() - self._dispatched.get(interaction_id, time.monotonic()) > 3.0:  # answered too late
            self.late += 1
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        self.followups.append({"kind": "callback", **body})
        # with_response=true (as discord.py asks): the interaction callback response object
        flags = (body.get("data") or {}).get("flags", 0)
        interaction = {"id": interaction_id, "type": 2, "response_message_loading": body.get("type") == 5}
        return _json({"interaction": interaction | {"response_message_ephemeral": bool(flags & 64)}})

    def _open_dm(self, user_id: int) -> web.Response:
        channel = self.dm_channels.setdefault(user_id, int(self._id()))
        return _json({"id": str(channel), "type": 1, "recipients": [_user(user_id)], "last_message_id": None})

    def _create_message(self, channel_id: str, body: dict[str, Any]) -> web.Response:
        if int(channel_id) in self.forbidden:
            return _json({"code": 50013, "message": "Missing Permissions"}, status=403)
        if any(channel == int(channel_id) and user in self.closed_dms for user, channel in self.dm_channels.items()):
            return _json({"code": 50007, "message": "Cannot send messages to this user"}, status=403)
        if body.get("allowed_mentions") != {"parse": []}:
            self.pinging.append(body)  # a message that could ping someone, had its text a mention
        now = time.monotonic()
        recent = [t for t in self._posted.get(channel_id, []) if now - t < 5.0]
        if len(recent) >= 5:  # Discord's per-channel limit: 5 messages in 5 seconds
            self.limited += 1
            retry = round(5.0 - (now - recent[0]), 3)
            limited = _json({"message": "You are being rate limited.", "retry_after": retry, "global": False}, status=429)
            limited.headers.update(
                {"Via": "1.1 google", "X-RateLimit-Scope": "user", "Retry-After": str(retry)}
            )  # as Discord's edge sends it
            return limited
        self._posted[channel_id] = [*recent, now]
        if problem := self._limits(body) or self._refused(body):
            return _json({"code": 50035, "message": f"Invalid Form Body: {problem}"}, status=400)
        nonce = body.get("nonce")
        earlier = self._nonces.get((channel_id, nonce)) if nonce and body.get("enforce_nonce") else None
        if earlier is not None and now - earlier[0] < self.nonce_seconds:
            return _json(earlier[1])  # the message it already made, while the nonce is remembered
        message = self._message(channel_id, body)
        self.messages.append(message)
        self.arrivals.append(time.monotonic())
        if nonce:
            self._nonces[(channel_id, nonce)] = (now, message)
        return _json(message)

    def _edit_message(self, channel_id: str, message_id: str, body: dict[str, Any]) -> web.Response:
        # Edits share the channel's rate limit with posts, and the same limits on what a message holds.
        message = next((m for m in self.messages if m["id"] == message_id and m["channel_id"] == channel_id), None)
        if message is None:
            return _json({"code": 10008, "message": "Unknown Message"}, status=404)
        if problem := self._limits(body):
            return _json({"code": 50035, "message": f"Invalid Form Body: {problem}"}, status=400)
        if body.get("allowed_mentions") not in (None, {"parse": []}):
            self.pinging.append(body)
        message.update({k: v for k, v in body.items() if k in ("embeds", "components", "content")})
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        self.edits.append(dict(message))
        return _json(message)

    def channel(self, channel_id: int) -> dict[str, Any]:
        kind = self.kinds.get(channel_id, 0)  # 0 text; 4 category, 15 forum: nothing can be posted there
        return {"id": str(channel_id), "type": kind, "guild_id": str(GUILD), "name": "papers", "position": 0}

    # ------------------------------------------------------------------------------------------ gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.sockets.append(socket)
        self.most_at_once = max(self.most_at_once, len(self.sockets))
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}, "s": None, "t": None}))
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if frame["op"] == 1:  # heartbeat
                self.heartbeats += 1
                if self.acking:
                    await socket.send_str(json.dumps({"op": 11}))
            elif frame["op"] == 2 and self.unauthorized:  # identify with a revoked token
                await socket.close(code=4004, message=b"Authentication failed.")
            elif frame["op"] == 2:  # identify: a new session
                self.identified += 1
                await self._emit(socket, "READY", self._ready())
                await self._emit(socket, "GUILD_CREATE", self._guild())
            elif frame["op"] == 6:  # resume
                self.resumed += 1
                await self._emit(socket, "RESUMED", {})
        if socket in self.sockets:
            self.sockets.remove(socket)
        return socket

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": str(GUILD), "unavailable": True}],
            "session_id": "standin-session",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "application": {"id": str(APP_ID), "flags": 0},
        }

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD),
            "name": "Lab",
            "owner_id": "1",
            "roles": [{"id": str(GUILD), "name": "@everyone", "permissions": "0", "position": 0, "color": 0}],
            "emojis": [],
            "features": [],
            "channels": [self.channel(CHANNEL)],
            "members": [],
            "member_count": 2,
            "threads": [],
            "stickers": [],
            "unavailable": False,
        }

    async def _emit(self, socket: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        await socket.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event (``INTERACTION_CREATE``, ``MESSAGE_REACTION_ADD`` …) to the connected bot."""
        if event == "INTERACTION_CREATE":
            self._dispatched[str(data["id"])] = time.monotonic()  # its callback is due within 3 s
        self.run(lambda: self._emit(self.sockets[-1], event, data))

    def reconnect(self) -> None:
        """Gateway op 7 (Reconnect): the client should close and resume its session."""
        self.run(lambda: self.sockets[-1].send_str(json.dumps({"op": 7, "d": None, "s": None, "t": None})))

    def invalidate(self, resumable: bool = False) -> None:
        """Gateway op 9 (Invalid Session): the client should identify anew (after 1-5 s) unless resumable."""
        self.run(lambda: self.sockets[-1].send_str(json.dumps({"op": 9, "d": resumable, "s": None, "t": None})))

    def drop(self) -> None:
        """Close the gateway socket without a word; the client should resume."""
        self.run(lambda: self.sockets[-1].close(code=4000))

    @property
    def connected(self) -> bool:
        return bool(self.sockets)


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json" (no charset): discord.py parses a body as JSON only then.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


async def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    """Until ``condition`` holds (the stand-in records from its own thread)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        await asyncio.sleep(0.02)
