"""Keeping a polite pace: at most one call per interval (arXiv's 3 s, Slack's one message a second a channel),
and waiting longer after each failure."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from bot.ports import Turns

Sleep = Callable[[float], Awaitable[None]]
TURN_POLL = 0.05  # seconds between asks while another process holds a turn


def backoff(attempt: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``first`` doubling up to ``cap``, with jitter
    (half to all of it) so that replicas which failed together do not retry together."""
    return float(min(cap, first * 2**attempt) * (0.5 + (rng or random).random() / 2))


class LocalTurns:
    """The in-process twin of the store's turns (``Coordination.take_turn``), same semantics: one holder
    per key, and the next turn no sooner than the gap after the last one ended."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held: dict[str, tuple[str, float]] = {}  # key → (owner, held until)
        self._free_at: dict[str, float] = {}

    async def take_turn(self, key: str, owner: str, hold: float) -> float:
        """0 when ``owner`` now holds ``key``, else the seconds to wait before asking again."""
        now = self._clock()
        holder, until = self._held.get(key, ("", 0.0))
        if holder and holder != owner and until > now:
            return min(until - now, TURN_POLL)  # it ends when its answer comes: ask again soon
        free_at = self._free_at.get(key, 0.0)
        if free_at > now:
            return free_at - now
        self._held[key] = (owner, now + hold)
        return 0.0

    async def end_turn(self, key: str, owner: str, gap: float) -> None:
        """Release ``key``; the next turn starts ``gap`` seconds from now at the earliest."""
        if self._held.get(key, ("", 0.0))[0] == owner:
            del self._held[key]
        self._free_at[key] = max(self._free_at.get(key, 0.0), self._clock() + gap)


class ChannelPace:
    """At most one call in flight per key (a channel), and the next one starts ``interval`` after the
    previous one's *answer*: the platform received the previous request before it answered, so the
    gap it measures between arrivals is always at least ``interval``, whatever the network's jitter.
    Several processes share the pace when ``turns`` is the store."""

    HOLD = 16.0  # seconds a turn may be held: longer than any call (Slack's client times out at 15 s), and
    # no longer, since a holder that died mid-call (a killed worker) blocks its channel until then

    def __init__(self, interval: float, owner: str, turns: Turns | None = None, sleep: Sleep = asyncio.sleep) -> None:
        self.interval = interval
        self.turns: Turns = turns or LocalTurns()
        self._owner = owner
        self._sleep = sleep
        self._mine: dict[str, asyncio.Lock] = {}  # a turn is this process's: its own callers queue here first

    async def take(self, key: str) -> None:
        """Wait until this caller holds ``key``'s turn (callers in this process one at a time too)."""
        mine = self._mine.setdefault(key, asyncio.Lock())
        await mine.acquire()
        try:
            while (wait := await self.turns.take_turn(key, self._owner, self.HOLD)) > 0:
                await self._sleep(wait)
        except BaseException:
            mine.release()
            raise

    async def end(self, key: str, at_least: float = 0.0) -> None:
        """End the turn; the next starts after the interval, or ``at_least`` (a platform's Retry-After)."""
        try:
            await self.turns.end_turn(key, self._owner, max(self.interval, at_least))
        finally:
            mine = self._mine.get(key)
            if mine is not None and mine.locked():
                mine.release()


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
