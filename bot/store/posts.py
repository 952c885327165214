"""Living posts on Redis: cards kept current after they were posted (edits, spaced per message) and
papers followed for late deliveries once they rise past a channel's threshold."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.model import Delivery, Destination, Paper
from bot.store.keys import text
from bot.store.records import RedisRecords
from bot.store.retention import pack


class RedisLivingPosts(RedisRecords):
    """The ``LivingPosts`` port on Redis."""

    async def update(self, papers: Sequence[Paper]) -> None:
        """Replace cached papers with newer reports of them (keeping their expiry), and list them as
        recent again so the query index reads them anew. Papers no longer cached stay gone."""
        now = int(self._clock() * 1000)
        for start in range(0, len(papers), 1000):
            async with self._errors("update cached papers"), self._redis.pipeline(transaction=False) as pipe:
                for paper in papers[start : start + 1000]:
                    pipe.set(self.key("paper", paper.id), pack(paper.to_json()), xx=True, keepttl=True)
                    pipe.zadd(self.key("recent"), {paper.id: now}, xx=True)
                await pipe.execute()

    async def posts_of(self, destinations: Sequence[Destination], paper_ids: Sequence[str]) -> list[Delivery]:
        """The messages (one card each) that show ``paper_ids`` in ``destinations``, as edits of them,
        with the why-line each card was posted with; one round trip. Digests are left out."""
        if not destinations or not paper_ids:
            return []
        fields = [f"{kind}:{pid}" for pid in paper_ids for kind in ("p", "w")]
        keys = [(destination, bucket) for destination in destinations for bucket in self._posts_keys(destination.key)]
        async with self._errors("read delivery records"), self._redis.pipeline(transaction=False) as pipe:
            for _, bucket in keys:
                pipe.hmget(bucket, fields)
            replies = await pipe.execute()
        found: dict[tuple[Destination, str], Delivery] = {}
        for (destination, _), values in zip(keys, replies, strict=True):  # newest bucket first
            for n, pid in enumerate(paper_ids):
                message, why = values[2 * n], values[2 * n + 1]
                if message is None or (destination, pid) in found:
                    continue
                message = text(message)
                if message.startswith("skipped:") or "#" in message:  # not posted, or one card of a digest
                    found[(destination, pid)] = Delivery(destination, pid)
                    continue
                found[(destination, pid)] = Delivery(destination, pid, tuple(json.loads(text(why or "[]"))), message)
        return [delivery for delivery in found.values() if delivery.edit]

    async def queue_edits(self, edits: Sequence[Delivery]) -> int:
        """Queue edits of posted messages, each message at most once per ``edit_spacing``: an edit
        asked for sooner waits and is queued when its time comes (by a later call: every poll makes
        one). An edit renders the paper as it is then, so the changes in between are merged into it.
        Returns how many were queued now."""
        await self._ensure_group()
        now = int(self._clock() * 1000)
        args: list[Any] = [now, max(1, int(self._edit_spacing * 1000)), self.key("edited", "")]
        for edit in edits:
            args += [edit.destination.key, edit.paper_id, json.dumps(list(edit.why)), edit.edit]
        async with self._errors("queue edits"):
            queued = await self._queue_edits(keys=[self.key("outbox"), self.key("edits", "later")], args=args)
        return int(queued)

    async def first_seen(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """The upvotes each paper had when first seen, for papers still followed."""
        found = await self._newest_in(self._routed_keys(), paper_ids, "{}|^", "read routed records")
        return {pid: int(value) for pid, value in found.items()}

    async def queue_late(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries of papers seen earlier (they rose past a destination's threshold), each to a
        destination the paper was never routed to, once; papers no longer followed are left alone."""
        await self._ensure_group()
        keys, args = [self.key("outbox"), *self._routed_keys()], []
        for delivery in deliveries:
            args += [delivery.destination.key, delivery.paper_id, json.dumps(list(delivery.why))]
        if not deliveries:
            return 0
        async with self._errors("queue rising papers"):
            return int(await self._queue_late(keys=keys, args=args))
