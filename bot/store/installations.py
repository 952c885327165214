"""Installations of the app in chat workspaces (Slack's OAuth), and the one-time states of installs in
progress. The documents are the platform adapter's (opaque here); with a ``Seal`` (always, in
multi-workspace mode) each is stored sealed, so no token is readable in Redis (``bot/store/sealing.py``).

Keys (``P`` is the prefix)::

    P installs          HASH    workspace key → the installation document (JSON), the latest one
    P oauth:<state>     STRING  an install in progress; deleted as the redirect uses it (once), else expires
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from bot.store.keys import Client, RedisRole, redis_errors, text

if TYPE_CHECKING:
    from bot.store.sealing import Seal


class RedisInstallations(RedisRole):
    """The ``Installations`` port on the same Redis and prefix as the rest of the store."""

    def __init__(self, client: Client, prefix: str = "paperbot:", seal: Seal | None = None) -> None:
        super().__init__(client, prefix)
        self._seal = seal

    async def save(self, workspace: str, document: dict[str, Any]) -> None:
        """Keep ``document`` as ``workspace``'s installation (replacing an older one)."""
        plain = json.dumps(document).encode()
        async with redis_errors(self._redis, "save an installation"):
            await self._redis.hset(self.key("installs"), workspace, self._seal.seal(plain) if self._seal else plain)

    async def find(self, workspace: str) -> dict[str, Any] | None:
        """``workspace``'s installation, or None; one sealed with the previous secret is sealed again."""
        async with redis_errors(self._redis, "read an installation"):
            raw = await self._redis.hget(self.key("installs"), workspace)
        if not raw:
            return None
        if self._seal is None:
            return cast(dict[str, Any], json.loads(raw))
        plain, current = self._seal.open(raw if isinstance(raw, bytes) else raw.encode(), f"the installation of {workspace}")
        if not current:
            async with redis_errors(self._redis, "seal an installation again"):
                await self._redis.hset(self.key("installs"), workspace, self._seal.seal(plain))
        return cast(dict[str, Any], json.loads(plain))

    async def delete(self, workspace: str) -> bool:
        """Forget ``workspace``'s installation; False if there was none."""
        async with redis_errors(self._redis, "delete an installation"):
            return bool(await self._redis.hdel(self.key("installs"), workspace))

    async def count(self) -> int:
        """How many workspaces have the app installed."""
        async with redis_errors(self._redis, "count installations"):
            return int(await self._redis.hlen(self.key("installs")))

    async def workspaces(self) -> list[str]:
        """Every workspace with an installation."""
        async with redis_errors(self._redis, "list installations"):
            return sorted(text(k) for k in await self._redis.hkeys(self.key("installs")))

    async def issue(self, state: str, seconds: int) -> None:
        """Remember an install in progress for ``seconds``."""
        async with redis_errors(self._redis, "remember an install in progress"):
            await self._redis.set(self.key("oauth", state), "1", ex=seconds)

    async def consume(self, state: str) -> bool:
        """True once for a state that was issued and has not expired; False ever after (a replay)."""
        async with redis_errors(self._redis, "check an install in progress"):
            return bool(await self._redis.getdel(self.key("oauth", state)))
