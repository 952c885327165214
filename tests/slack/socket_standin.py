"""A loopback stand-in for Slack's Socket Mode websocket: hello on connect, envelopes sent by the test,
acknowledgements (with their response payloads) recorded, ``disconnect`` and dropped sockets on demand.

Speaks the protocol of https://api.slack.com/apis/socket-mode: every envelope carries an
``envelope_id`` that the app must acknowledge with ``{"envelope_id": …, "payload": …}`` within 3 s.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback import LoopbackServer


class SocketModeStandIn(LoopbackServer):
    """The Socket Mode server side, on 127.0.0.1, in a thread of its own (like the HTTP stand-ins)."""

    def __init__(self) -> None:
        super().__init__()
        self.connections = 0  # websocket connections accepted so far
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id → the app's acknowledgement

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/link/", self._link)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}"

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.connections += 1
        self.sockets.append(socket)
        hello = {"type": "hello", "num_connections": 1, "debug_info": {"host": "standin", "approximate_connection_time": 18060}}
        await socket.send_str(json.dumps(hello))
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                ack = json.loads(message.data)
                if "envelope_id" in ack:
                    self.acks[ack["envelope_id"]] = ack
        if socket in self.sockets:
            self.sockets.remove(socket)
        return socket

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False) -> str:
        """Send one envelope on the live socket; returns its ``envelope_id``."""
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload, "retry_attempt": 0, "retry_reason": ""}
        envelope["accepts_response_payload"] = accepts_response_payload

        async def send() -> None:
            await self.sockets[-1].send_str(json.dumps(envelope))

        self.run(send)
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's polite goodbye: the app should open a new connection."""

        async def say_goodbye() -> None:
            goodbye = {"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}}
            await self.sockets[-1].send_str(json.dumps(goodbye))

        self.run(say_goodbye)

    def drop(self) -> None:
        """Close the socket without a word (a network blip)."""

        async def close() -> None:
            await self.sockets[-1].close()

        self.run(close)

    def wait(self, condition: Callable[[], bool], seconds: float = 15) -> None:
        """Until ``condition`` holds (checked from the test's thread)."""
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "the Socket Mode stand-in waited in vain"
            time.sleep(0.02)
