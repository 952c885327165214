"""An aiohttp server on 127.0.0.1 in a thread with its own event loop: the scaffolding of the stand-ins
that speak websockets (Slack's Socket Mode, Discord's gateway), so tests drive them from any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Self

from aiohttp import web

from tests.redis_servers import free_port


class LoopbackServer:
    """Subclasses add their routes in ``routes``; open websockets are kept in ``sockets`` (newest last)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sockets: list[web.WebSocketResponse] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        """Add this server's routes to ``app``."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        self.run(self._start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for socket in list(self.sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def go_away(self) -> None:
        """Stop answering at all (sockets closed, connections refused), as when the platform is down."""
        self.run(self._stop)

    def come_back(self) -> None:
        """Answer again, on the same port."""
        self.run(self._start)

    def run(self, coroutine: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``coroutine()`` on the server's loop and wait for it (from the test's thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine(), self._loop).result(10)  # type: ignore[arg-type]
