"""Keeping a polite pace: at most one call per interval (arXiv's 3 s, Slack's one message a second a channel),
and waiting longer after each failure."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]


def backoff(attempt: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``first`` doubling up to ``cap``, with jitter
    (half to all of it) so that replicas which failed together do not retry together."""
    return float(min(cap, first * 2**attempt) * (0.5 + (rng or random).random() / 2))


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
