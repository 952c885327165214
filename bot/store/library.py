"""Saved papers per user, kept forever, and each user's last search (for ``/papers more``).

Keys (``P`` is the prefix)::

    P saved:<user>      ZSET    paper id → when it was saved (ms); newest first when listed
    P library           HASH    paper id → the paper as JSON, never expiring (unlike the paper cache)
    P search:<user>     STRING  the user's last search and page, for an hour
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import cast

import redis.asyncio as redis

from bot.model import Paper, Saved, UserRef
from bot.store.redis import redis_errors, text

SEARCH_TTL = 3600


class RedisLibrary:
    """Saved papers on the same Redis and prefix as the rest of the store."""

    def __init__(self, client: redis.Redis, prefix: str = "paperbot:") -> None:
        self._redis = client
        self._prefix = prefix

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def save(self, user: UserRef, paper: Paper) -> bool:
        """Keep ``paper`` for ``user``; False (and nothing changes) if it was already saved."""
        doc = json.dumps(paper.to_json(), ensure_ascii=False)
        async with redis_errors(self._redis, "save a paper"), self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._key("saved", user.key), {paper.id: time.time() * 1000}, nx=True)
            pipe.hset(self._key("library"), paper.id, doc)
            added, _ = await pipe.execute()
        return bool(added)

    async def unsave(self, user: UserRef, paper_id: str) -> bool:
        """Forget ``paper_id`` for ``user``; False if it was not saved."""
        async with redis_errors(self._redis, "unsave a paper"):
            return bool(await self._redis.zrem(self._key("saved", user.key), paper_id))

    async def saved(self, user: UserRef, limit: int | None = None) -> list[Saved]:
        """The user's saved papers, newest first."""
        async with redis_errors(self._redis, "list saved papers"):
            last = -1 if limit is None else limit - 1
            reply = await self._redis.zrevrange(self._key("saved", user.key), 0, last, withscores=True)
            rows = cast(list[tuple[bytes, float]], reply)  # (member, score) pairs with withscores
            if not rows:
                return []
            docs = await self._redis.hmget(self._key("library"), [text(pid) for pid, _ in rows])
        return [
            Saved(Paper.from_json(json.loads(doc)), datetime.fromtimestamp(score / 1000, UTC))
            for (_, score), doc in zip(rows, docs, strict=True)
            if doc
        ]

    async def paper(self, paper_id: str) -> Paper | None:
        """A paper someone saved, whether or not the paper cache still has it."""
        async with redis_errors(self._redis, "read a saved paper"):
            doc = await self._redis.hget(self._key("library"), paper_id)
        return Paper.from_json(json.loads(doc)) if doc else None

    async def remember_search(self, user: UserRef, query: str, page: int) -> None:
        """Remember the user's search so ``/papers more`` can show the next page."""
        async with redis_errors(self._redis, "remember a search"):
            await self._redis.set(self._key("search", user.key), json.dumps([query, page]), ex=SEARCH_TTL)

    async def last_search(self, user: UserRef) -> tuple[str, int] | None:
        """The user's last search and the page shown, within the last hour."""
        async with redis_errors(self._redis, "read the last search"):
            raw = await self._redis.get(self._key("search", user.key))
        if raw is None:
            return None
        query, page = json.loads(raw)
        return str(query), int(page)
