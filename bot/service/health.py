"""Is this process fit to serve? What ``/readyz`` answers and what ``/metrics`` reads from the store.

Ready means: the store answers (within ``READY_WAIT``), every chat connection this process is meant to
hold is up (a one-per-bot connection that another process holds counts as up), and, in a process that
polls, the last poll anyone made is not overdue. Alive (``/healthz``) only means the event loop answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from bot.errors import PaperbotError
from bot.ports import Coordination, Ledger, Listener
from bot.service.metrics import Metrics, StoreFigures

READY_WAIT = 2.0  # seconds the store may take to answer a readiness check (probes time out at 1–5 s)


class Status:
    """Readiness and the store's figures for one process."""

    def __init__(
        self,
        metrics: Metrics,
        outbox: Ledger,
        coordination: Coordination,
        listeners: Mapping[str, Listener],
        *,
        poll_overdue: float | None,
        installations: Callable[[], Awaitable[int]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._outbox = outbox
        self._coordination = coordination
        self._listeners = listeners
        self._overdue = poll_overdue  # seconds after which a missing poll makes this process unready; None: it never polls
        self._installations = installations
        self._clock = clock
        self._started = clock()

    async def problems(self) -> list[str]:
        """Why this process is not ready; empty when it is."""
        problems: list[str] = []
        try:
            async with asyncio.timeout(READY_WAIT):
                health = await self._coordination.health()
                problems += [await self._chat(name, listener) for name, listener in self._listeners.items()]
        except TimeoutError:
            return [f"store: no answer within {READY_WAIT:.0f} s"]
        except PaperbotError as exc:
            return [f"store: {exc}"]
        if self._overdue is not None:
            last = max((_moment(h.get(k)) for h in health.values() for k in ("ok_at", "failed_at")), default=0.0)
            since = self._clock() - max(last, self._started)
            if since > self._overdue:
                problems.append(f"poll: none for {since / 60:.0f} minutes (allowed: {self._overdue / 60:.0f})")
        return [p for p in problems if p]

    async def _chat(self, name: str, listener: Listener) -> str:
        if getattr(listener, "connected", True):
            return ""
        if getattr(listener, "one_connection_per_bot", False) and await self._coordination.holder(f"listener:{name}"):
            return ""  # another process holds the bot's one connection
        return f"{name}: not connected"

    async def figures(self) -> StoreFigures:
        """The outbox, the dead letters, each source's last success and the installations, now."""
        backlog = await self._outbox.backlog()
        health = await self._coordination.health()
        ok_at = {source: _moment(h.get("ok_at")) for source, h in health.items() if h.get("ok_at")}
        installed = await self._installations() if self._installations is not None else None
        return StoreFigures(backlog.depth, backlog.oldest_seconds, backlog.dead, ok_at, installed)

    async def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text for a scrape (see ``Metrics.exposition``)."""
        return await self.metrics.exposition(self.figures)


def _moment(value: object) -> float:
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) and value else 0.0
