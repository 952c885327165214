"""The ground shared by the outbox's roles on Redis: the clock, the retention buckets, the registered
scripts, the delivery group, and the records of what was posted where (``bot.store.redis`` lists the keys)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from bot.model import OutboxEntry
from bot.store import scripts
from bot.store.keys import Client, RedisRole, text
from bot.store.retention import SEEN_DAYS, Buckets

GROUP = "delivery"
VECTOR_BUCKETS = 2039  # a prime: ids spread evenly (the commit script has it too)


def vector_bucket(paper_id: str) -> int:
    """Which ``vec:<n>`` hash holds a paper's vector (the commit script computes the same)."""
    h = 0
    for byte in paper_id.encode():
        h = (h * 31 + byte) % VECTOR_BUCKETS
    return h


class RedisRecords(RedisRole):
    """State and steps the queue, living posts, the ledger and the paper cache share."""

    def __init__(
        self,
        client: Client,
        prefix: str = "paperbot:",
        paper_ttl: int = 30 * 86400,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = time.time,
        track_seconds: float = 7 * 86400,
        edit_spacing: float = 3600,
    ) -> None:
        self._track = min(track_seconds, paper_ttl)  # a paper is followed while it is cached, at most
        self._edit_spacing = edit_spacing
        self._redact = redact  # a dead letter's reason may quote a platform's answer: no secret is ever stored
        super().__init__(client, prefix)
        self._paper_ttl = paper_ttl
        self._clock = clock  # what "now" is for everything the store dates (a simulated year in bench/storage.py)
        self._seen = Buckets(SEEN_DAYS, 28)
        self._seen_listed = False
        # A post matters while its paper is cached: a reaction saves the cached paper, a retry checks here first.
        self._posts = Buckets(paper_ttl / 86400, 7)
        # Where each followed paper was routed at first sight: weekly buckets covering the tracking window.
        self._routed = Buckets(max(self._track, 1) / 86400, 7)
        self._commit = client.register_script(scripts.COMMIT)
        self._settle_script = client.register_script(scripts.SETTLE)
        self._queue_edits = client.register_script(scripts.QUEUE_EDITS)
        self._queue_late = client.register_script(scripts.QUEUE_LATE)
        self._queue_once = client.register_script(scripts.QUEUE_ONCE)
        self._group_ready = False
        self._closed = False

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        async with self._errors("create the delivery group"):
            try:
                # From id 0, so entries queued before the group existed are still delivered.
                await self._redis.xgroup_create(self.key("outbox"), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    def _posts_keys(self, destination: str) -> list[str]:
        return [self.key("posts", destination, str(n)) for n in self._posts.kept(self._clock())]

    def _routed_keys(self) -> list[str]:
        return [self.key("routed", str(n)) for n in self._routed.kept(self._clock())]

    async def _newest_in(self, buckets: list[str], paper_ids: Sequence[str], field: str, what: str) -> dict[str, Any]:
        """Each paper's ``field`` (a format of its id) from the newest of ``buckets`` that has it; one round trip."""
        if not paper_ids:
            return {}
        fields = [field.format(pid) for pid in paper_ids]
        async with self._errors(what), self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hmget(bucket, fields)
            replies = await pipe.execute()
        found: dict[str, Any] = {}
        for pid, *values in zip(paper_ids, *replies, strict=True):
            if (value := next((v for v in values if v is not None), None)) is not None:
                found[pid] = value
        return found

    async def _settle(self, entry: OutboxEntry, fields: list[str], posted: bool, what: str) -> None:
        # This week's bucket of the destination's records; the bucket that just left the window goes.
        dest, now = entry.delivery.destination.key, self._clock()
        keys = [
            self.key("posts", dest, str(self._posts.current(now))),
            self.key("posts", dest, str(self._posts.fallen(now))),
            self.key("outbox"),
            self.key("attempts"),
            self.key("lastpost"),
            self.key("posting"),
        ]
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds") if posted else ""
        args: list[str | int] = [self._posts.ttl, GROUP, entry.entry_id, dest, at, *fields]
        async with self._errors(what):
            await self._settle_script(keys=keys, args=args)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._redis.aclose()


async def chunks(items: AsyncIterator[Any], size: int) -> AsyncIterator[list[Any]]:
    chunk: list[Any] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stream_rows(reply: Any) -> list[dict[str, str]]:
    # XRANGE answers [(id, {field: value}), ...]; an entry deleted meanwhile has no fields.
    return [{"id": text(eid), **{text(k): text(v) for k, v in (fields or {}).items()}} for eid, fields in reply or []]


def stream_entries(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    # XREADGROUP answers [[stream, [(id, fields), ...]]]; the client is created with RESP2.
    return [entry for _, entries in reply or [] for entry in entries]
