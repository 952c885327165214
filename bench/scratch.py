"""A Redis for one bench run: the one at ``--redis-url``, or a private server started for it; either
way every key under the bench's prefix, and the private server, are gone afterwards."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as redis

from tests.redis_servers import RedisProcess, embedded_binary


@asynccontextmanager
async def scratch_redis(redis_url: str | None, prefix: str, **pool: object) -> AsyncIterator[tuple[redis.Redis, str]]:
    """A client (over a pool made with ``pool`` options) and the server's URL."""
    server = None
    if not redis_url:
        binary = shutil.which("redis-server") or embedded_binary()
        server = RedisProcess(binary, Path(tempfile.mkdtemp(prefix="paperbot-bench-"))).start()
    url = redis_url or (server.url if server else "")
    pool_class = pool.pop("pool_class", redis.ConnectionPool)
    client = redis.Redis.from_pool(pool_class.from_url(url, protocol=2, **pool))  # type: ignore[attr-defined]
    try:
        yield client, url
    finally:
        try:
            keys = [key async for key in client.scan_iter(match=prefix + "*", count=10_000)]
            for start in range(0, len(keys), 10_000):
                await client.delete(*keys[start : start + 10_000])
            await client.aclose()
        finally:
            if server:
                server.stop()  # even if the clean-up above failed
