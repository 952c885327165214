"""Each reader's follows (queries, or ``saved``) and when their direct-message digest goes out.

Keys (``P`` is the prefix)::

    P follows           HASH    user key → {"at": "HH:MM", "timezone": IANA name, "follows": [query, …]}
    P follows:notice    HASH    user key → why their digest could not be sent (shown to them once)
"""

from __future__ import annotations

import json

from bot.model import Following, UserRef
from bot.store.keys import Client, RedisRole, redis_errors, text


class RedisFollows(RedisRole):
    """The ``Follows`` port on the same Redis and prefix as the rest of the store."""

    def __init__(self, client: Client, prefix: str = "paperbot:") -> None:
        super().__init__(client, prefix)

    async def following(self, user: UserRef) -> Following | None:
        """``user``'s follows and digest time, or None."""
        async with redis_errors(self._redis, "read follows"):
            raw = await self._redis.hget(self.key("follows"), user.key)
        return _parse(user, raw) if raw else None

    async def keep(self, following: Following) -> None:
        """Store (or replace) a reader's follows; with none left, forget them."""
        async with redis_errors(self._redis, "store follows"):
            if following.queries:
                doc = {"at": following.at, "timezone": following.timezone, "follows": list(following.queries)}
                if following.user.workspace:
                    doc["workspace"] = following.user.workspace  # their digest goes with that workspace's token
                await self._redis.hset(self.key("follows"), following.user.key, json.dumps(doc))
            else:
                await self._redis.hdel(self.key("follows"), following.user.key)

    async def everyone(self) -> list[Following]:
        """Every reader who follows something."""
        async with redis_errors(self._redis, "list follows"):
            raw = await self._redis.hgetall(self.key("follows"))
        return [_parse(_user(text(k)), v) for k, v in raw.items()]

    async def notice(self, user: UserRef, why: str) -> None:
        """Remember why ``user``'s digest could not be sent."""
        async with redis_errors(self._redis, "store a notice"):
            await self._redis.hset(self.key("follows", "notice"), user.key, why)

    async def take_notice(self, user: UserRef) -> str:
        """The notice for ``user`` (empty if none), removed as it is read: it is shown once."""
        async with redis_errors(self._redis, "read a notice"), self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.key("follows", "notice"), user.key)
            pipe.hdel(self.key("follows", "notice"), user.key)
            why, _ = await pipe.execute()
        return text(why) if why else ""


def _user(key: str) -> UserRef:
    platform, _, user_id = key.partition(":")
    return UserRef(platform, user_id)


def _parse(user: UserRef, raw: bytes | str) -> Following:
    doc = json.loads(raw)
    if doc.get("workspace"):
        user = UserRef(user.platform, user.user_id, user.manager, user.timezone, str(doc["workspace"]))
    return Following(user, tuple(doc.get("follows", ())), doc.get("at", "08:00"), doc.get("timezone", "UTC"))
