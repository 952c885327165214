"""Is this process fit to serve? What ``/readyz`` answers and what ``/metrics`` reads from the store.

Ready means: the store answers (within ``READY_WAIT``), every chat connection this process is meant to
hold is up (a one-per-bot connection that another process holds counts as up), the delivery loop runs,
the extra checks pass (the workspaces' installations open with ``SLACK_CLIENT_SECRET``), and, in a
process that polls, the last poll anyone made is not overdue. Alive (``/healthz``) only means the event loop answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from bot.errors import PaperbotError, SealError
from bot.ports import Coordination, Installations, Ledger, Listener
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
        checks: Sequence[Callable[[], Awaitable[str]]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._checks = checks  # more readiness checks: each answers a problem, or "" when all is well
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
                problems += [await check() for check in self._checks]
        except TimeoutError:
            return [f"store: no answer within {READY_WAIT:.0f} s"]
        except PaperbotError as exc:
            return [f"store: {exc}"]
        problems += [f"{name}: stopped ({_ended(task)})" for name, task in self._tasks.items() if task.done()]
        if self._overdue is not None:
            last = max((_moment(h.get(k)) for h in health.values() for k in ("ok_at", "failed_at")), default=0.0)
            since = self._clock() - max(last, self._started)
            if since > self._overdue:
                problems.append(f"poll: none for {since / 60:.0f} minutes (allowed: {self._overdue / 60:.0f})")
        return [p for p in problems if p]

    def watch_task(self, name: str, task: asyncio.Task[None]) -> None:
        """Report ``task`` (the delivery loop) as a problem if it ever ends while the process runs."""
        self._tasks[name] = task

    async def _chat(self, name: str, listener: Listener) -> str:
        probe = getattr(listener, "is_connected", None)  # a listener that can ask its connection now
        if (await probe()) if callable(probe) else getattr(listener, "connected", True):
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


def _ended(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return f"{type(exc).__name__}: {exc}"[:200] if exc else "returned"


def _moment(value: object) -> float:
    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) and value else 0.0


def installations_open(installations: Installations, every: float = 60.0) -> Callable[[], Awaitable[str]]:
    """A readiness check: the workspaces' installations open with the configured ``SLACK_CLIENT_SECRET``
    (a wrong one would fail every command of every workspace). One installation read, at most every
    ``every`` seconds; a store outage is the store check's to report."""
    last: dict[str, tuple[float, str]] = {}

    async def check() -> str:
        now = time.monotonic()
        if "result" in last and now - last["result"][0] < every:
            return last["result"][1]
        problem = ""
        try:
            names = await installations.workspaces()
            if names:
                await installations.find(names[0])
        except SealError as exc:
            problem = f"slack: {exc}"
        except PaperbotError:
            pass
        last["result"] = (now, problem)
        return problem

    return check
