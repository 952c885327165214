"""The operator's ledger on Redis: what is owed and given up on, requeueing dead letters, the backlog,
last posts, and dropping everything kept for destinations that went away."""

from __future__ import annotations

from collections.abc import Callable, Collection

from redis.typing import EncodableT, FieldT

from bot.model import Backlog
from bot.store.keys import text
from bot.store.records import GROUP, RedisRecords, stream_rows

# Key families with a destination in their name (the outbox's and RedisCoordination's), for ``drop``.
PER_DESTINATION = ("posts", "edited", "recapped", "posted", "paused", "failures")
DROP_BATCH = 1000  # outbox entries read at a time when a workspace's deliveries are dropped


class RedisLedger(RedisRecords):
    """The ``Ledger`` port on Redis."""

    async def dead_letters(self) -> list[dict[str, str]]:
        """Every delivery given up on, oldest first, with ``id``, ``dest``, ``paper``, ``reason``, ``at``."""
        async with self._errors("list dead letters"):
            rows = await self._redis.xrange(self.key("dead"))
        return stream_rows(rows)

    async def requeue_dead(self) -> int:
        """Queue every dead letter again (someone fixed the cause); returns how many."""
        await self._ensure_group()
        requeued = 0
        for letter in await self.dead_letters():
            async with self._errors("requeue a dead letter"), self._redis.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = {
                    "dest": letter["dest"],
                    "paper": letter["paper"],
                    "why": letter.get("why", "[]"),
                }
                for extra in ("edit", "recap", "title"):
                    if letter.get(extra):
                        fields[extra] = letter[extra]
                pipe.xadd(self.key("outbox"), fields)
                pipe.xdel(self.key("dead"), letter["id"])
                await pipe.execute()
            requeued += 1
        return requeued

    async def queued(self) -> list[dict[str, str]]:
        """Every delivery still owed (delivered ones are removed from the outbox), oldest first."""
        async with self._errors("list queued deliveries"):
            rows = await self._redis.xrange(self.key("outbox"))
        return stream_rows(rows)

    async def drop(self, destinations: Collection[str]) -> int:
        """Remove every queued delivery to ``destinations`` (exact destination keys, or a workspace's
        prefix such as ``slack:T042/``), returning how many, and everything else kept for them: what was
        posted there, edits and recaps, daily counts, pauses and failure counts (``PER_DESTINATION``),
        and when paperbot last posted there."""
        wanted = list(destinations)

        def ours(rest: str) -> bool:  # a destination key, or one followed by ":<more>" (a key's suffix)
            return any(rest.startswith(d) if d.endswith("/") else rest == d or rest.startswith(d + ":") for d in wanted)

        async with self._errors("drop a destination's records"):
            keys = []
            for platform in {d.partition(":")[0] for d in wanted}:  # one pass over the keys a platform
                async for key in self._redis.scan_iter(match=f"{self.key('*')}:{platform}:*", count=1000):
                    family, _, rest = text(key)[len(self._prefix) :].partition(":")
                    if family in PER_DESTINATION and ours(rest):
                        keys.append(key)
            for chunk in range(0, len(keys), 500):
                await self._redis.delete(*keys[chunk : chunk + 500])
            last = [f for f in await self._redis.hkeys(self.key("lastpost")) if ours(text(f))]
            if last:
                await self._redis.hdel(self.key("lastpost"), *last)
        return await self._drop_queued(ours)

    async def _drop_queued(self, ours: Callable[[str], bool]) -> int:
        dropped, start = 0, "-"
        while True:
            async with self._errors("drop queued deliveries"):
                rows = stream_rows(await self._redis.xrange(self.key("outbox"), min=start, count=DROP_BATCH))
                gone = [row["id"] for row in rows if ours(row.get("dest", ""))]
                if gone:
                    async with self._redis.pipeline(transaction=True) as pipe:
                        pipe.xack(self.key("outbox"), GROUP, *gone)
                        pipe.xdel(self.key("outbox"), *gone)
                        pipe.hdel(self.key("attempts"), *gone)
                        pipe.hdel(self.key("posting"), *gone)
                        await pipe.execute()
            dropped += len(gone)
            if len(rows) < DROP_BATCH:
                return dropped
            start = "(" + rows[-1]["id"]

    async def backlog(self) -> Backlog:
        """How many deliveries are owed, how old the oldest is, and how many are dead letters (one round trip)."""
        async with self._errors("measure the outbox"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.key("outbox"))
            pipe.xrange(self.key("outbox"), count=1)
            pipe.xlen(self.key("dead"))
            depth, oldest, dead = await pipe.execute()
        age = 0.0
        if oldest:
            age = max(0.0, self._clock() - int(text(oldest[0][0]).split("-")[0]) / 1000)  # a stream id starts with its ms
        return Backlog(int(depth), age, int(dead))

    async def last_posts(self) -> dict[str, str]:
        """When paperbot last posted to each destination."""
        async with self._errors("read last posts"):
            raw = await self._redis.hgetall(self.key("lastpost"))
        return {text(k): text(v) for k, v in raw.items()}
