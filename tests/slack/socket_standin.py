"""A loopback stand-in for Slack's Socket Mode websocket: hello on connect, envelopes sent by the test,
acknowledgements (with their response payloads) recorded, ``disconnect`` and dropped sockets on demand.

Speaks the protocol of https://api.slack.com/apis/socket-mode: every envelope carries an
``envelope_id`` that the app must acknowledge with ``{"envelope_id": …, "payload": …}`` within 3 s;
one that is not is sent again with ``retry_attempt`` counting up, as Slack does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.loopback import LoopbackServer


class SocketModeStandIn(LoopbackServer):
    """The Socket Mode server side, on 127.0.0.1, in a thread of its own (like the HTTP stand-ins)."""

    def __init__(self, ack_seconds: float = 3.0, retries: int = 3) -> None:
        super().__init__()
        self.connections = 0  # websocket connections accepted so far
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id → the app's acknowledgement
        # As Slack does: an envelope not acknowledged within ack_seconds is sent again, up to `retries`
        # times, with retry_attempt counting up and retry_reason "timeout" (a new envelope_id each time).
        self.ack_seconds, self.retries = ack_seconds, retries
        self.late = 0  # envelopes acknowledged too late, or never
        self.resent: list[dict[str, Any]] = []  # the retries sent
        self._sending: set[asyncio.Future[None]] = set()

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

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False, attempt: int = 0) -> str:
        """Send one envelope on the live socket; returns its ``envelope_id``. Unacknowledged within
        ``ack_seconds``, it is sent again (as Slack does)."""
        envelope_id = str(uuid.uuid4())
        reason = "timeout" if attempt else ""
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "retry_attempt": attempt,
            "retry_reason": reason,
        }
        envelope["accepts_response_payload"] = accepts_response_payload

        async def send() -> None:
            await self.sockets[-1].send_str(json.dumps(envelope))
            asyncio.get_running_loop().call_later(self.ack_seconds, self._overdue, envelope)

        self.run(send)
        return envelope_id

    def _overdue(self, envelope: dict[str, Any]) -> None:
        if envelope["envelope_id"] in self.acks:
            return
        self.late += 1
        if envelope["retry_attempt"] < self.retries and self.sockets:
            again = {**envelope, "envelope_id": str(uuid.uuid4()), "retry_attempt": envelope["retry_attempt"] + 1}
            again["retry_reason"] = "timeout"
            self.resent.append(again)
            self._sending.add(sending := asyncio.ensure_future(self.sockets[-1].send_str(json.dumps(again))))
            sending.add_done_callback(self._sending.discard)
            asyncio.get_running_loop().call_later(self.ack_seconds, self._overdue, again)

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
