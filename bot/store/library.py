"""Saved papers per user, kept until they are unsaved, and each user's last search (for ``/papers more``).

Keys (``P`` is the prefix)::

    P saved:<user>      ZSET    paper id → when it was saved (ms); newest first when listed
    P library           HASH    paper id → the paper as compressed JSON, kept while anyone has it saved
                                (unlike the paper cache, it never expires)
    P library:holders   HASH    paper id → how many users have it saved; the paper leaves the library at 0
    P search:<user>     STRING  the user's last search and page, for an hour
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import cast

from bot.model import Paper, Saved, UserRef
from bot.store import scripts
from bot.store.keys import Client, RedisRole, redis_errors, text
from bot.store.retention import pack, unpack

SEARCH_TTL = 3600


class RedisLibrary(RedisRole):
    """Saved papers on the same Redis and prefix as the rest of the store."""

    def __init__(self, client: Client, prefix: str = "paperbot:") -> None:
        super().__init__(client, prefix)
        self._save = client.register_script(scripts.SAVE)
        self._unsave = client.register_script(scripts.UNSAVE)
        self._counted = False

    async def _count_holders(self) -> None:
        """Once per process: a library written before holders were counted gets its counts, so that an
        unsave never drops a paper someone else still has saved."""
        if self._counted:
            return
        holders = self.key("library", "holders")
        async with redis_errors(self._redis, "count saved papers' holders"):
            if await self._redis.exists(self.key("library")) and not await self._redis.exists(holders):
                counts: dict[str, int] = {}
                async for key in self._redis.scan_iter(match=self.key("saved", "*"), count=1000):
                    for pid in await self._redis.zrange(key, 0, -1):
                        counts[text(pid)] = counts.get(text(pid), 0) + 1
                if counts:
                    await self._redis.hset(holders, mapping=counts)  # type: ignore[arg-type]
        self._counted = True

    async def save(self, user: UserRef, paper: Paper) -> bool:
        """Keep ``paper`` for ``user``; False (and nothing changes) if it was already saved."""
        await self._count_holders()
        keys = [self.key("saved", user.key), self.key("library"), self.key("library", "holders")]
        async with redis_errors(self._redis, "save a paper"):
            return bool(await self._save(keys=keys, args=[paper.id, time.time() * 1000, pack(paper.to_json())]))

    async def unsave(self, user: UserRef, paper_id: str) -> bool:
        """Forget ``paper_id`` for ``user``; False if it was not saved."""
        await self._count_holders()
        keys = [self.key("saved", user.key), self.key("library"), self.key("library", "holders")]
        async with redis_errors(self._redis, "unsave a paper"):
            return bool(await self._unsave(keys=keys, args=[paper_id]))

    async def saved(self, user: UserRef, limit: int | None = None) -> list[Saved]:
        """The user's saved papers, newest first."""
        async with redis_errors(self._redis, "list saved papers"):
            last = -1 if limit is None else limit - 1
            reply = await self._redis.zrevrange(self.key("saved", user.key), 0, last, withscores=True)
            rows = cast(list[tuple[bytes, float]], reply)  # (member, score) pairs with withscores
            if not rows:
                return []
            docs = await self._redis.hmget(self.key("library"), [text(pid) for pid, _ in rows])
        return [
            Saved(Paper.from_json(unpack(doc)), datetime.fromtimestamp(score / 1000, UTC))
            for (_, score), doc in zip(rows, docs, strict=True)
            if doc
        ]

    async def paper(self, paper_id: str) -> Paper | None:
        """A paper someone saved, whether or not the paper cache still has it."""
        async with redis_errors(self._redis, "read a saved paper"):
            doc = await self._redis.hget(self.key("library"), paper_id)
        return Paper.from_json(unpack(doc)) if doc else None

    async def remember_search(self, user: UserRef, query: str, page: int) -> None:
        """Remember the user's search so ``/papers more`` can show the next page."""
        async with redis_errors(self._redis, "remember a search"):
            await self._redis.set(self.key("search", user.key), json.dumps([query, page]), ex=SEARCH_TTL)

    async def last_search(self, user: UserRef) -> tuple[str, int] | None:
        """The user's last search and the page shown, within the last hour."""
        async with redis_errors(self._redis, "read the last search"):
            raw = await self._redis.get(self.key("search", user.key))
        if raw is None:
            return None
        query, page = json.loads(raw)
        return str(query), int(page)
