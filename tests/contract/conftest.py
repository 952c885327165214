"""The store contract suite runs on every backend of tests/conftest.py, on a real three-master Redis
Cluster (where each test's keys share one hash tag, as paperbot's do) and over TLS (``rediss://``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from tests.conftest import BACKENDS, backend_client


@pytest.fixture(
    params=[
        *BACKENDS,
        pytest.param("cluster", id="redis-cluster", marks=pytest.mark.redis),
        pytest.param("tls", id="redis-tls", marks=pytest.mark.redis),
    ]
)
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[redis.Redis]:
    """A client on each backend in turn, a Redis Cluster and a TLS server among them."""
    async for client in backend_client(request):
        yield client
