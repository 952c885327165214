"""The outbox on Redis: the seen-set, new papers committed with their deliveries, and the queue
that delivering processes take from, settle and give up on (a Redis Stream with a consumer group)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.typing import EncodableT, FieldT

from bot.errors import StoreError
from bot.model import Delivery, Destination, OutboxEntry, Paper, PostRef
from bot.store.keys import text
from bot.store.records import GROUP, RedisRecords, chunks, stream_entries
from bot.store.retention import pack

log = logging.getLogger(__name__)

ORPHAN_IDLE_MS = 1000
DEAD_KEPT = 10_000  # dead letters kept (the oldest go first); `paperbot deliveries` lists them
BLOCK_SLICE = 5.0  # seconds one blocking read may wait (the client's socket timeout is 10 s)


class RedisOutbox(RedisRecords):
    """The ``Outbox`` port on Redis."""

    async def first_run(self) -> bool:
        """True until ``begin`` is called: a store that never polled, or one that lost its data."""
        async with self._errors("read the store's epoch"):
            return not await self._redis.exists(self.key("epoch"))

    async def begin(self) -> None:
        """Mark the store as having polled (its epoch: when it started remembering)."""
        async with self._errors("write the store's epoch"):
            await self._redis.set(self.key("epoch"), datetime.now(UTC).isoformat(timespec="seconds"), nx=True)

    async def _adopt_unlisted_seen(self) -> None:
        """Once per process: ids in the seen-set that no period lists (a store from before periods) are
        listed under the current period, so they too leave the seen-set when it leaves the window."""
        if self._seen_listed:
            return
        async with self._errors("list seen ids by period"):
            if await self._redis.exists(self.key("seen")) and not await self._redis.exists(self.key("seen", "periods")):
                period = self._seen.current(self._clock())
                async for chunk in chunks(self._redis.sscan_iter(self.key("seen"), count=5000), 5000):
                    await self._redis.append(self.key("seen", str(period)), "".join(f"{text(i)}\n" for i in chunk))
                await self._redis.zadd(self.key("seen", "periods"), {str(period): period})
        self._seen_listed = True

    async def unseen(self, paper_ids: Sequence[str]) -> list[str]:
        if not paper_ids:
            return []
        async with self._errors("check the seen-set"):
            flags = await self._redis.smismember(self.key("seen"), list(paper_ids))
        return [pid for pid, seen in zip(paper_ids, flags, strict=True) if not seen]

    async def commit(
        self, papers: Sequence[Paper], deliveries: Sequence[Delivery], watched: Collection[Destination] = ()
    ) -> list[str]:
        if not papers:
            return []
        await self._ensure_group()
        owed: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            owed.setdefault(delivery.paper_id, []).append(delivery)
        await self._adopt_unlisted_seen()
        now = self._clock()
        period = self._seen.current(now)
        keys = [
            self.key("outbox"),
            self.key("recent"),
            self.key("seen"),
            self.key("seen", str(period)),
            self.key("seen", "periods"),
        ]
        keys += [self.key("paper", p.id) for p in papers]
        keys += [self.key("routed", str(self._routed.current(now))), self.key("routed", str(self._routed.fallen(now)))]
        args: list[Any] = [self._paper_ttl, int(now * 1000), len(papers), period, self._seen.fallen(now)]
        # Only where a threshold could let a paper in later is its routing worth keeping.
        args += [
            self.key("paper", ""),
            self.key("seen", ""),
            self._routed.ttl if self._track and watched else 0,
            self.key("vec", ""),
        ]
        for paper in papers:
            mine = owed.get(paper.id, [])
            args += [paper.id, pack(paper.to_json()), paper.upvotes or 0, len(mine)]
            for delivery in mine:
                args += [delivery.destination.key, json.dumps(list(delivery.why)), int(delivery.destination in watched)]
        async with self._errors("commit new papers"):
            committed = await self._commit(keys=keys, args=args)
        return [text(c) for c in committed]

    async def heartbeat(self, consumer: str, ttl: float) -> None:
        """``consumer`` is alive for ``ttl`` more seconds; once it stops saying so, others take its entries."""
        async with self._errors("record a heartbeat"):
            await self._redis.set(self.key("alive", consumer), 1, px=int(ttl * 1000))

    async def wait_for_work(self, after: str, longest: float) -> str:
        """Block until the outbox has an entry newer than ``after`` (or ``longest`` seconds pass); returns the
        newest id seen. With ``after`` empty, the current newest id at once."""
        outbox = self.key("outbox")
        async with self._errors("wait for deliveries"):
            if not after:
                newest = await self._redis.xrevrange(outbox, count=1)
                return text(newest[0][0]) if newest else "0-0"
            deadline = time.monotonic() + longest
            while (left := deadline - time.monotonic()) > 0:
                # At most BLOCK_SLICE at a time: the connection's read timeout is longer than that.
                reply = await self._redis.xread({outbox: after}, count=1, block=max(1, int(min(left, BLOCK_SLICE) * 1000)))
                if entries := stream_entries(reply):
                    return text(entries[-1][0])
        return after

    async def take(self, consumer: str, claim_idle: float, count: int = 500) -> list[OutboxEntry]:
        try:
            return await self._take(consumer, claim_idle, count)
        except StoreError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (a flush, a restart without persistence): make the group again.
            log.warning("the delivery group was gone (Redis lost its data); recreated it")
            self._group_ready = False
            return await self._take(consumer, claim_idle, count)

    async def _take(self, consumer: str, claim_idle: float, count: int) -> list[OutboxEntry]:
        await self._ensure_group()
        outbox = self.key("outbox")
        async with self._errors("read the outbox"):
            own = await self._redis.xreadgroup(GROUP, consumer, {outbox: "0"}, count=count)
            orphaned = await self._orphaned(consumer, count)
            claimed = await self._redis.xautoclaim(outbox, GROUP, consumer, int(claim_idle * 1000), "0-0", count=count)
            new = await self._redis.xreadgroup(GROUP, consumer, {outbox: ">"}, count=count)
        entries = [*stream_entries(own), *orphaned, *claimed[1], *stream_entries(new)]
        parsed: dict[str, Delivery] = {}
        for entry_id, fields in entries:
            if fields:  # empty for an entry deleted while pending
                data = {text(k): text(v) for k, v in fields.items()}
                why = tuple(json.loads(data.get("why", "[]")))
                recap = tuple(json.loads(data["recap"])) if data.get("recap") else ()
                delivery = Delivery(
                    Destination.parse(data["dest"]), data["paper"], why, data.get("edit", ""), recap, data.get("title", "")
                )
                parsed.setdefault(text(entry_id), delivery)
        return [OutboxEntry(eid, delivery) for eid, delivery in parsed.items()]

    async def _orphaned(self, consumer: str, count: int) -> list[Any]:
        """Entries of consumers whose heartbeat has expired (a killed or exited process), claimed now rather
        than after ``claim_idle``. A live consumer's entries are never taken."""
        outbox = self.key("outbox")
        holders = [
            c for c in await self._redis.xinfo_consumers(outbox, GROUP) if c.get("pending") and text(c["name"]) != consumer
        ]
        if not holders:
            return []
        names = [text(c["name"]) for c in holders]
        alive = await self._redis.mget([self.key("alive", name) for name in names])
        entries: list[Any] = []
        for name, beat in zip(names, alive, strict=True):
            if beat is None:
                pending = await self._redis.xpending_range(outbox, GROUP, "-", "+", count, consumername=name)
                ids: list[int | bytes | str | memoryview[int]] = [text(row["message_id"]) for row in pending]
                if ids:  # min idle 1 s: two takers racing for one orphan, the second gets nothing
                    entries += await self._redis.xclaim(outbox, GROUP, consumer, ORPHAN_IDLE_MS, ids)
        return entries

    async def failed_attempt(self, entry: OutboxEntry) -> int:
        """Count a real failed attempt to post ``entry`` (not passes it waited out); returns the total."""
        async with self._errors("count a failed attempt"):
            return int(await self._redis.hincrby(self.key("attempts"), entry.entry_id, 1))

    async def delivered(self, destination: Destination, paper_id: str) -> str | None:
        return (await self.earlier_posts(destination, [paper_id])).get(paper_id)

    async def earlier_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, str]:
        """Message ids of the papers among ``paper_ids`` already posted to ``destination``; one round trip."""
        found = await self._newest_in(self._posts_keys(destination.key), paper_ids, "p:{}", "read delivery records")
        return {pid: text(mid) for pid, mid in found.items()}

    async def intend(self, entry: OutboxEntry) -> None:
        async with self._errors("record a post about to be made"):
            await self._redis.hset(self.key("posting"), entry.entry_id, int(self._clock() * 1000))

    async def intended(self, entries: Sequence[OutboxEntry]) -> set[str]:
        if not entries:
            return set()
        ids = [e.entry_id for e in entries]
        async with self._errors("read posts begun"):
            began = await self._redis.hmget(self.key("posting"), ids)
        return {eid for eid, at in zip(ids, began, strict=True) if at is not None}

    async def done(self, entry: OutboxEntry, post: PostRef) -> None:
        paper_id, message_id = entry.delivery.paper_id, post.message_id
        fields = [f"p:{paper_id}", message_id, f"m:{message_id}", paper_id]
        if entry.delivery.why:  # what the card said it matched, so an edit says it again (none: nothing kept)
            fields += [f"w:{paper_id}", json.dumps(list(entry.delivery.why))]
        if entry.delivery.recap:  # a recap is no paper's post: recorded apart, so edits still find the posts
            fields = [f"recap:{message_id}", json.dumps(list(entry.delivery.recap))]
        await self._settle(entry, fields, not entry.delivery.edit, "record a delivery")

    async def skip(self, entry: OutboxEntry, reason: str) -> None:
        """Settle a delivery without posting (e.g. over the daily cap): recorded, acknowledged, never retried."""
        await self._settle(entry, [f"p:{entry.delivery.paper_id}", f"skipped:{reason}"], False, "record a skipped delivery")

    async def bury(self, entry: OutboxEntry, reason: str) -> None:
        """Move a delivery to the dead letters (acknowledged here, kept there with the reason), atomically."""
        delivery = entry.delivery
        fields: dict[FieldT, EncodableT] = {
            "dest": delivery.destination.key,
            "paper": delivery.paper_id,
            "why": json.dumps(list(delivery.why)),
            **({"edit": delivery.edit} if delivery.edit else {}),
            **({"recap": json.dumps(list(delivery.recap))} if delivery.recap else {}),
            **({"title": delivery.title} if delivery.title else {}),
            "reason": self._redact(reason),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        async with self._errors("move a delivery to the dead letters"), self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key("dead"), fields, maxlen=DEAD_KEPT, approximate=True)
            pipe.xack(self.key("outbox"), GROUP, entry.entry_id)
            pipe.xdel(self.key("outbox"), entry.entry_id)
            pipe.hdel(self.key("attempts"), entry.entry_id)
            pipe.hdel(self.key("posting"), entry.entry_id)
            await pipe.execute()

    async def queue_recap(self, recap: Delivery, occasion: str, keep_seconds: int) -> bool:
        """Queue a recap once per ``occasion`` (the moment it fell due): False if that one was queued."""
        await self._ensure_group()
        fields = ["dest", recap.destination.key, "paper", recap.paper_id, "why", json.dumps(list(recap.why))]
        fields += ["recap", json.dumps(list(recap.recap)), "title", recap.title]
        async with self._errors("queue a recap"):
            queued = await self._queue_once(
                keys=[self.key("recapped", recap.destination.key, occasion), self.key("outbox")], args=[keep_seconds, *fields]
            )
        return bool(queued)

    async def retire(self, consumer: str) -> None:
        # Its heartbeat goes first, so another process takes over what it leaves at once. Only an idle
        # consumer is removed: deleting one drops its pending entries from the group.
        if not self._group_ready:
            return
        async with self._errors("retire a delivery consumer"):
            await self._redis.delete(self.key("alive", consumer))
            pending = await self._redis.xpending_range(self.key("outbox"), GROUP, "-", "+", 1, consumername=consumer)
            if not pending:
                await self._redis.xgroup_delconsumer(self.key("outbox"), GROUP, consumer)
