"""Keeping a polite pace: at most one call per interval (arXiv's 3 s, Slack's one message a second a channel)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


class MinInterval:
    """At least ``seconds`` from the end of one call to the start of the next (arXiv: one request per 3 s,
    one connection at a time), whatever the calls' own duration."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        if self._last is not None:
            wait = self._last + self.seconds - self._clock()
            if wait > 0:
                await self._sleep(wait)

    async def __aexit__(self, *exc: object) -> None:
        self._last = self._clock()
        self._lock.release()
