"""The paper cache on Redis: papers as compressed JSON, the recent list the query index reads, paper
vectors in hashed buckets, the index's snapshot, and which paper a platform message shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.model import Paper, PostRef
from bot.store.keys import text
from bot.store.records import RedisRecords, vector_bucket
from bot.store.retention import unpack


class RedisPapers(RedisRecords):
    """The ``Papers`` port on Redis."""

    async def paper(self, paper_id: str) -> Paper | None:
        async with self._errors("read a cached paper"):
            raw = await self._redis.get(self.key("paper", paper_id))
        return Paper.from_json(unpack(raw)) if raw else None

    async def papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        """The cached papers among ``paper_ids`` (expired ones are left out), in chunks of 1,000."""
        found: list[Paper] = []
        for start in range(0, len(paper_ids), 1000):
            chunk = paper_ids[start : start + 1000]
            async with self._errors("read cached papers"):
                docs = await self._redis.mget([self.key("paper", pid) for pid in chunk])
            found.extend(Paper.from_json(unpack(doc)) for doc in docs if doc)
        return found

    async def recent(self, since_ms: int) -> tuple[list[str], int]:
        """Ids committed after ``since_ms`` (oldest first) and the cursor to pass next time.
        Entries older than the cache period are dropped on the way."""
        now = int(self._clock() * 1000)
        async with self._errors("list recent papers"), self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.key("recent"), "-inf", now - self._paper_ttl * 1000)
            pipe.zrangebyscore(self.key("recent"), f"({since_ms}", "+inf", withscores=True)
            _, rows = await pipe.execute()
        cursor = max((int(score) for _, score in rows), default=since_ms)
        return [text(pid) for pid, _ in rows], cursor

    async def vectors(self, paper_ids: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors among ``paper_ids``: one HMGET per bucket, 256 buckets a round trip (all
        2,039 in 8, however many papers)."""
        buckets: dict[int, list[str]] = {}
        for pid in paper_ids:
            buckets.setdefault(vector_bucket(pid), []).append(pid)
        found: dict[str, bytes] = {}
        batches = list(buckets.items())
        for start in range(0, len(batches), 256):
            batch = batches[start : start + 256]
            async with self._errors("read paper vectors"), self._redis.pipeline(transaction=False) as pipe:
                for bucket, ids in batch:
                    pipe.hmget(self.key("vec", str(bucket)), ids)
                answers = await pipe.execute()
            for (_, ids), blobs in zip(batch, answers, strict=True):
                found.update((pid, blob) for pid, blob in zip(ids, blobs, strict=True) if blob)
        return found

    async def keep_vectors(self, vectors: Mapping[str, bytes]) -> None:
        """Store vectors beside their papers; each leaves with its paper (at the commit that drops it). A
        bucket nobody writes for a cache period expires, so an abandoned deployment leaves nothing."""
        items = list(vectors.items())
        for start in range(0, len(items), 1000):
            buckets: dict[int, dict[str, bytes]] = {}
            for pid, blob in items[start : start + 1000]:
                buckets.setdefault(vector_bucket(pid), {})[pid] = blob
            async with self._errors("store paper vectors"), self._redis.pipeline(transaction=False) as pipe:
                for bucket, fields in buckets.items():
                    pipe.hset(self.key("vec", str(bucket)), mapping=fields)  # type: ignore[arg-type]
                    pipe.expire(self.key("vec", str(bucket)), max(1, int(self._paper_ttl)))
                await pipe.execute()

    async def index_snapshot(self) -> bytes | None:
        """The query index's last snapshot (opaque bytes), or None."""
        async with self._errors("read the index snapshot"):
            blob = await self._redis.get(self.key("index", "snapshot"))
        return blob.encode() if isinstance(blob, str) else blob

    async def keep_index_snapshot(self, blob: bytes) -> None:
        """Replace the query index's snapshot; it expires with the cache period."""
        async with self._errors("save the index snapshot"):
            await self._redis.set(self.key("index", "snapshot"), blob, ex=max(1, int(self._paper_ttl)))

    async def paper_for_post(self, post: PostRef) -> str | None:
        """The paper a platform message shows, if paperbot posted it."""
        async with self._errors("look up a post"), self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._posts_keys(post.destination.key):
                pipe.hget(bucket, f"m:{post.message_id}")
            found = [raw for raw in await pipe.execute() if raw is not None]
        return text(found[0]) if found else None
