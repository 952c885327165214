"""RedisCoordination: what processes agree on through Redis — the poll lock, paused destinations and
their backoff, posting pace, daily counts, event de-duplication and source health.

Keys (``P`` is the prefix)::

    P lock:<name>           STRING  the owner of a lock, expiring unless renewed
    P paused:<dest>         STRING  why a destination is paused (expires)
    P due                   ZSET    destination → when its pause ends (ms): when deliverers should wake for it
    P failures:<dest>       STRING  consecutive failed delivery passes (for its backoff)
    P turn:<key>            HASH    who holds a posting turn and until when, and when the next may start (ms)
    P posted:<dest>:<day>   STRING  how many papers were posted there that UTC day (the daily cap)
    P once:<event>          STRING  a platform event already handled (an hour)
    P health                HASH    source → JSON of its last success, last failure and paper count
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from bot.model import Destination
from bot.pacing import TURN_POLL
from bot.store import scripts
from bot.store.keys import Client, RedisRole, text


class RedisCoordination(RedisRole):
    """Cross-process state on the same Redis and prefix as the store."""

    def __init__(self, client: Client, prefix: str = "paperbot:", redact: Callable[[str], str] = str) -> None:
        super().__init__(client, prefix)
        self._redact = redact  # reasons and errors may quote a request: no secret is ever stored
        self._renew = client.register_script(scripts.RENEW)
        self._release = client.register_script(scripts.RELEASE)
        self._take_turn = client.register_script(scripts.TAKE_TURN)
        self._end_turn = client.register_script(scripts.END_TURN)

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock ``name`` for ``ttl`` seconds unless someone holds it."""
        async with self._errors("take a lock"):
            return bool(await self._redis.set(self.key("lock", name), owner, nx=True, px=int(ttl * 1000)))

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend a lock ``owner`` holds; False if it was lost (expired, and maybe taken by another)."""
        async with self._errors("renew a lock"):
            return bool(await self._renew(keys=[self.key("lock", name)], args=[owner, int(ttl * 1000)]))

    async def unlock(self, name: str, owner: str) -> None:
        """Release a lock, only if ``owner`` still holds it."""
        async with self._errors("release a lock"):
            await self._release(keys=[self.key("lock", name)], args=[owner])

    async def holder(self, name: str) -> str | None:
        """Who holds the lock ``name`` now, or None."""
        async with self._errors("read a lock"):
            owner = await self._redis.get(self.key("lock", name))
        return text(owner) if owner is not None else None

    async def pause(self, destination: Destination, reason: str, seconds: int) -> None:
        """Stop delivering to ``destination`` for ``seconds`` (after a permanent error); its papers stay queued."""
        until_ms = int(time.time() * 1000) + max(1, seconds) * 1000
        async with self._errors("pause a destination"), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("paused", destination.key), self._redact(reason), ex=max(1, seconds))
            pipe.zadd(self.key("due"), {destination.key: until_ms})
            await pipe.execute()

    async def next_due(self) -> float | None:
        """Seconds until the earliest paused destination may be tried again (0 if one is due now), or
        None if none is paused. Retries are scheduled: a deliverer wakes when one falls due."""
        now_ms = int(time.time() * 1000)
        async with self._errors("read when deliveries fall due"):
            # A pause that ended more than a minute ago has been noticed by some pass: forget it.
            await self._redis.zremrangebyscore(self.key("due"), "-inf", now_ms - 60_000)
            earliest = await self._redis.zrangebyscore(self.key("due"), now_ms, "+inf", start=0, num=1, withscores=True)
        return max(0.0, (float(earliest[0][1]) - now_ms) / 1000) if earliest else None

    async def unpause(self, destination: Destination) -> bool:
        """Resume delivering to ``destination`` now (someone fixed it); False if it was not paused."""
        async with self._errors("resume a destination"), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.key("paused", destination.key))
            pipe.zrem(self.key("due"), destination.key)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def paused(self, destination: Destination) -> str | None:
        """Why ``destination`` is paused, or None."""
        async with self._errors("read a pause"):
            raw = await self._redis.get(self.key("paused", destination.key))
        return text(raw) if raw is not None else None

    async def paused_destinations(self) -> dict[str, str]:
        """Every paused destination and why."""
        prefix = self.key("paused", "")
        async with self._errors("list paused destinations"):
            keys = [text(k) async for k in self._redis.scan_iter(match=prefix + "*")]
            reasons = await self._redis.mget(keys) if keys else []
        return {key[len(prefix) :]: text(reason) for key, reason in zip(keys, reasons, strict=True) if reason is not None}

    async def count_failure(self, destination: Destination, reset: bool = False) -> int:
        """Consecutive failed passes for ``destination`` (for its backoff); ``reset`` after a success."""
        key = self.key("failures", destination.key)
        async with self._errors("count failures"):
            if reset:
                await self._redis.delete(key)
                return 0
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 86400)
                count, _ = await pipe.execute()
        return int(count)

    async def count_post(self, destination: Destination, day: str, delta: int = 1) -> int:
        """Add ``delta`` to the destination's posts on ``day`` (YYYY-MM-DD); the new total."""
        key = self.key("posted", destination.key, day)
        async with self._errors("count posts"), self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, delta)
            pipe.expire(key, 2 * 86400)
            total, _ = await pipe.execute()
        return int(total)

    async def take_turn(self, key: str, owner: str, hold: float) -> float:
        """Take ``key``'s posting turn for at most ``hold`` seconds, shared by every process: 0 when
        ``owner`` holds it now, else the seconds to wait before asking again."""
        args: list[str | int] = [owner, int(hold * 1000), int(TURN_POLL * 1000)]
        async with self._errors("take a posting turn"):
            return int(await self._take_turn(keys=[self.key("turn", key)], args=args)) / 1000

    async def end_turn(self, key: str, owner: str, gap: float) -> None:
        """End ``owner``'s turn on ``key``; the next may start ``gap`` seconds from now."""
        async with self._errors("end a posting turn"):
            await self._end_turn(keys=[self.key("turn", key)], args=[owner, int(gap * 1000)])

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds (platform retries of one event)."""
        async with self._errors("record an event"):
            return bool(await self._redis.set(self.key("once", key), 1, nx=True, ex=ttl))

    async def record_health(self, source: str, ok: bool, detail: str, count: int = 0, at: datetime | None = None) -> None:
        """Remember a source's latest success or failure (for ``paperbot status`` and catch-up)."""
        now = (at or datetime.now(UTC)).isoformat(timespec="seconds")
        async with self._errors("record source health"):
            raw = await self._redis.hget(self.key("health"), source)
            health = json.loads(raw) if raw else {}
            health.update({"ok_at": now, "count": count} if ok else {"failed_at": now, "error": self._redact(detail)})
            await self._redis.hset(self.key("health"), source, json.dumps(health))

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each source's latest success and failure."""
        async with self._errors("read source health"):
            raw = await self._redis.hgetall(self.key("health"))
        return {text(k): json.loads(v) for k, v in raw.items()}

    async def server(self) -> dict[str, str]:
        """The server's version, persistence, eviction policy, memory in use and mode (``paperbot doctor``).
        Persistence is ``unknown`` where CONFIG is refused (some managed services)."""
        async with self._errors("describe the server"):
            info = await self._redis.info()
        if info and all(isinstance(v, dict) for v in info.values()):  # a cluster answers per node
            info = next(iter(info.values()))
        persistence = "aof" if str(info.get("aof_enabled", "0")) == "1" else ""
        if not persistence:
            try:
                save = (await self._redis.config_get("save")).get("save", "")
                persistence = "rdb" if str(save).strip() else "none"
            except RedisError:
                persistence = "unknown"
        return {
            "version": str(info.get("redis_version", "?")),
            "persistence": persistence,
            "memory_policy": str(info.get("maxmemory_policy", "?")),
            "used_memory": str(info.get("used_memory_human", "?")),
            "mode": "cluster" if str(info.get("cluster_enabled", "0")) == "1" else "single",
        }
