"""A loopback stand-in for Slack's Socket Mode websocket: hello on connect, envelopes sent by the test,
acknowledgements (with their response payloads) recorded, ``disconnect`` and dropped sockets on demand.

Speaks the protocol of https://api.slack.com/apis/socket-mode: every envelope carries an
``envelope_id`` that the app must acknowledge with ``{"envelope_id": …, "payload": …}`` within 3 s.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.redis_servers import free_port


class SocketModeStandIn:
    """The Socket Mode server side, on 127.0.0.1, in a thread of its own (like the HTTP stand-ins)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0  # websocket connections accepted so far
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id → the app's acknowledgement
        self._sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4().hex}"

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.connections += 1
        self._sockets.append(socket)
        hello = {"type": "hello", "num_connections": 1, "debug_info": {"host": "standin", "approximate_connection_time": 18060}}
        await socket.send_str(json.dumps(hello))
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                ack = json.loads(message.data)
                if "envelope_id" in ack:
                    self.acks[ack["envelope_id"]] = ack
        if socket in self._sockets:
            self._sockets.remove(socket)
        return socket

    def __enter__(self) -> SocketModeStandIn:
        self._thread.start()
        self._run(self._start)
        return self

    def __exit__(self, *exc: object) -> None:
        self._run(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _run(self, coroutine: Callable[[], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine(), self._loop).result(10)

    def send(self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False) -> str:
        """Send one envelope on the live socket; returns its ``envelope_id``."""
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload, "retry_attempt": 0, "retry_reason": ""}
        envelope["accepts_response_payload"] = accepts_response_payload

        async def send() -> None:
            await self._sockets[-1].send_str(json.dumps(envelope))

        self._run(send)
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's polite goodbye: the app should open a new connection."""

        async def say_goodbye() -> None:
            goodbye = {"type": "disconnect", "reason": reason, "debug_info": {"host": "standin"}}
            await self._sockets[-1].send_str(json.dumps(goodbye))

        self._run(say_goodbye)

    def drop(self) -> None:
        """Close the socket without a word (a network blip)."""

        async def close() -> None:
            await self._sockets[-1].close()

        self._run(close)

    def wait(self, condition: Callable[[], bool], seconds: float = 15) -> None:
        """Until ``condition`` holds (checked from the test's thread)."""
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "the Socket Mode stand-in waited in vain"
            time.sleep(0.02)
