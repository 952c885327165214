"""What every Redis-backed port shares: the client type, one key helper under the deployment's prefix,
and redis-py's exceptions translated into ``StoreError`` naming the server (never its password)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import StoreError

Client = redis.Redis | redis.RedisCluster  # a single server (or Sentinel's master), or a Redis Cluster


def cluster_prefix(prefix: str) -> str:
    """The key prefix on a Redis Cluster: with a hash tag, so every key paperbot has lands in one slot and
    any script or transaction may touch any of them together (``paperbot:`` → ``{paperbot}:``)."""
    if "{" in prefix and "}" in prefix.split("{", 1)[1]:
        return prefix  # the operator chose a tag (one per deployment sharing a cluster)
    return "{" + (prefix.rstrip(":") or "paperbot") + "}:"


async def is_cluster(client: redis.Redis) -> bool:
    """Whether the server ``client`` reached is a Redis Cluster node (``cluster_enabled:1``); a server
    that will not say (some managed services restrict INFO) is taken for a single server."""
    try:
        return (await client.info("cluster")).get("cluster_enabled") in (1, "1")
    except RedisError:
        return False


def describe(client: Client) -> str:
    """Where ``client`` connects, without credentials, for error messages."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_default_node()
        return f"cluster {node.host}:{node.port}" if node else "cluster"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


@asynccontextmanager
async def redis_errors(client: Client, what: str) -> AsyncIterator[None]:
    """Translate redis-py exceptions into ``StoreError`` naming the server (never its password), and
    honour a cancellation that redis-py swallowed: a task cancelled while a command was in flight gets
    the command's answer instead of ``CancelledError`` (redis-py 8.2; its issues #2028, #2551), and would
    run on, so a loop told to stop never would. It is raised here, once the command is done."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        problem = exc.__class__.__name__
        raise StoreError(f"Redis at {describe(client)} is unreachable while trying to {what} ({problem})") from None
    except RedisError as exc:
        raise StoreError(f"Redis refused to {what}: {exc}") from None
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def text(value: Any) -> str:
    """A Redis reply as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisRole:
    """The base of each Redis-backed port: the client, the key prefix (one helper for every key), and errors."""

    def __init__(self, client: Client, prefix: str = "paperbot:") -> None:
        self._redis = client
        self._prefix = prefix

    def key(self, *parts: str) -> str:
        """A key under this store's prefix."""
        return self._prefix + ":".join(parts)

    def _errors(self, what: str) -> AbstractAsyncContextManager[None]:
        return redis_errors(self._redis, what)
