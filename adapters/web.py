"""The web port (``PORT``): ``GET /healthz``, ``GET /readyz`` and ``GET /metrics`` for operators, plus the
routes a platform mounts (Slack's ``POST /slack/events`` and its install pages). One aiohttp server a
process, which bolt's HTTP mode already runs on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable

from aiohttp import web

from bot.ports import Commands, Probe

log = logging.getLogger(__name__)

Routes = Callable[[Commands], Iterable[web.AbstractRouteDef]]
MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; anything bigger is refused before it is read


class WebServer:
    """The ``Listener`` that serves the web port until cancelled."""

    def __init__(self, port: int, host: str = "0.0.0.0") -> None:  # all interfaces: Slack and probes must reach it
        self._port, self._host = port, host
        self._mounted: list[Routes] = []
        self._probe: Probe | None = None
        self.connected = False  # listening (what /readyz reports for the platforms it carries)

    def mount(self, routes: Routes) -> None:
        """Serve a platform's routes too (built with the commands when the server starts)."""
        self._mounted.append(routes)

    def watch(self, probe: Probe) -> None:
        """Answer ``/readyz`` and ``/metrics`` from ``probe`` (the composition root gives it once built)."""
        self._probe = probe

    def application(self, commands: Commands) -> web.Application:
        """The aiohttp application: the operators' routes and every mounted one."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/healthz", self._alive)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/metrics", self._metrics)
        for routes in self._mounted:
            app.router.add_routes(routes(commands))
        return app

    async def run(self, commands: Commands) -> None:
        """Listen on the port until cancelled (a port in use fails here, and the supervisor retries)."""
        runner = web.AppRunner(self.application(commands), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
            self.connected = True
            paths = sorted({r.resource.canonical for r in runner.app.router.routes() if r.resource is not None})
            log.info("web listening", extra={"kv": {"port": self._port, "paths": ",".join(paths)}})
            await asyncio.Event().wait()
        finally:
            self.connected = False
            await runner.cleanup()

    async def _alive(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, request: web.Request) -> web.Response:
        problems = await self._probe.problems() if self._probe is not None else ["starting"]
        body = json.dumps({"ready": not problems, "problems": problems})
        return web.Response(status=503 if problems else 200, text=body, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._probe is None:
            return web.Response(status=503, text="starting")
        body, content_type = await self._probe.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})
