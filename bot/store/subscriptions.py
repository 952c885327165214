"""Topic subscriptions per destination, in Redis; configuration seeds them once, chat changes them.

Keys (``P`` is the prefix)::

    P subs:<dest>       ZSET    query text → when it was added (ms); listing order is subscription order
    P subscribed        SET     every destination that has or had subscriptions
    P seeded:<dest>     SET     configured topics already seeded, so an unsubscribe from chat sticks
"""

from __future__ import annotations

import time

from bot.model import Destination
from bot.store.keys import Client, RedisRole, redis_errors, text


class RedisSubscriptions(RedisRole):
    """Subscriptions on the same Redis and prefix as the rest of the store."""

    def __init__(self, client: Client, prefix: str = "paperbot:") -> None:
        super().__init__(client, prefix)

    async def subscribe(self, destination: Destination, query: str) -> bool:
        """Add ``query`` (canonical text); False if it was already there."""
        async with redis_errors(self._redis, "save a subscription"), self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key("subs", destination.key), {query: time.time() * 1000}, nx=True)
            pipe.sadd(self.key("subscribed"), destination.key)
            added, _ = await pipe.execute()
        return bool(added)

    async def unsubscribe(self, destination: Destination, query: str) -> bool:
        """Remove ``query``; False if it was not there."""
        async with redis_errors(self._redis, "remove a subscription"):
            return bool(await self._redis.zrem(self.key("subs", destination.key), query))

    async def topics(self, destination: Destination) -> list[str]:
        """The destination's queries, oldest first."""
        async with redis_errors(self._redis, "read subscriptions"):
            return [text(q) for q in await self._redis.zrange(self.key("subs", destination.key), 0, -1)]

    async def everything(self) -> dict[Destination, list[str]]:
        """Every destination's queries, in two round trips whatever their number."""
        async with redis_errors(self._redis, "read subscriptions"):
            keys = sorted(text(k) for k in await self._redis.smembers(self.key("subscribed")))
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrange(self.key("subs", key), 0, -1)
                answers = await pipe.execute()
        return {Destination.parse(key): [text(q) for q in queries] for key, queries in zip(keys, answers, strict=True)}

    async def forget(self, destination: Destination) -> int:
        """Drop every subscription of ``destination``; returns how many."""
        async with redis_errors(self._redis, "remove subscriptions"), self._redis.pipeline(transaction=True) as pipe:
            pipe.zcard(self.key("subs", destination.key))
            pipe.delete(self.key("subs", destination.key), self.key("seeded", destination.key))
            pipe.srem(self.key("subscribed"), destination.key)
            dropped, _, _ = await pipe.execute()
        return int(dropped)

    async def seed(self, destination: Destination, queries: list[str]) -> list[str]:
        """Subscribe to each configured query the first time it is configured; returns those added.
        A query seeded before and unsubscribed from chat since is not brought back."""
        if not queries:
            return []
        seeded = self.key("seeded", destination.key)
        async with redis_errors(self._redis, "seed subscriptions"):
            async with self._redis.pipeline(transaction=True) as pipe:
                for query in queries:
                    pipe.sadd(seeded, query)
                fresh = [q for q, added in zip(queries, await pipe.execute(), strict=True) if added]
            for query in fresh:
                await self.subscribe(destination, query)
        return fresh
