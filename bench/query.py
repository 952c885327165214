"""Query benchmark: ``/papers <query>`` over 60,000 cached papers, latency of the whole command.

Each sample is ``CommandCore.handle("/papers <query>")`` against a real Redis: the incremental
index refresh (one round trip), the search, reading the page of papers, building the cards.
Also reports the one-off index load and the process's memory growth for it.

    .venv/bin/python bench/query.py [--papers 60000] [--queries 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bot.commands import CommandCore
from bot.model import Destination, UserRef
from bot.search import PaperIndex
from bot.settings import DEFAULT_SAVE_EMOJI
from bot.store.coordination import RedisCoordination
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from bot.store.subscriptions import RedisSubscriptions
from tests.redis_servers import RedisProcess, embedded_binary

PREFIX = "benchq:"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fill(store: RedisStore, corpus: Corpus, count: int) -> None:
    for start in range(0, count, 2000):
        await store.commit(corpus.papers(min(2000, count - start), start), [])
        done = min(start + 2000, count)
        if done % 10_000 == 0 or done == count:
            print(f"  cached {done:,}/{count:,} papers", file=sys.stderr)


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile of ``samples`` (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@asynccontextmanager
async def cached_core(papers: int, redis_url: str | None) -> AsyncIterator[tuple[CommandCore, PaperIndex, Corpus]]:
    """A command core over ``papers`` cached papers of the bench corpus, on ``redis_url`` or a throwaway
    server, with the connection pool the service uses; every key and the server are gone afterwards."""
    server = None
    if not redis_url:
        binary = shutil.which("redis-server") or embedded_binary()
        server = RedisProcess(binary, Path(tempfile.mkdtemp(prefix="paperbot-bench-"))).start()
    # The pool the service uses (bot/app.py): a burst of commands waits for a connection, never fails.
    pool = redis.BlockingConnectionPool.from_url(redis_url or server.url, max_connections=64, timeout=10, protocol=2)
    client = redis.Redis.from_pool(pool)
    corpus = Corpus(seed=2)
    store = RedisStore(client, prefix=PREFIX)
    try:
        await fill(store, corpus, papers)
        index = PaperIndex(store, ttl_seconds=30 * 86400)
        coordination = RedisCoordination(client, PREFIX)
        core = CommandCore(
            store,
            RedisSubscriptions(client, PREFIX),
            RedisLibrary(client, PREFIX),
            index,
            DEFAULT_SAVE_EMOJI,
            coordination=coordination,
        )
        yield core, index, corpus
    finally:
        try:
            keys = [key async for key in client.scan_iter(match=PREFIX + "*", count=10_000)]
            for start in range(0, len(keys), 10_000):
                await client.delete(*keys[start : start + 10_000])
            await client.aclose()
        finally:
            if server:
                server.stop()  # even if the clean-up above failed


async def main(args: argparse.Namespace) -> None:
    async with cached_core(args.papers, args.redis_url) as (core, index, corpus):
        before, started = rss_mb(), time.perf_counter()
        await index.refresh()
        load, grown = time.perf_counter() - started, rss_mb() - before
        queries = [corpus.query() for _ in range(args.queries)]
        user, where = UserRef("slack", "UBENCH"), Destination("slack", "CBENCH")
        samples, matched = [], 0
        for text in queries:
            started = time.perf_counter()
            reply = await core.handle(f"/papers {text}", user, where)
            samples.append((time.perf_counter() - started) * 1000)
            matched += bool(reply.cards)
    samples.sort()
    p = functools.partial(percentile, samples)
    print(f"papers={len(index):,} queries={len(samples)} with results={matched} index load={load:.1f} s (+{grown:.0f} MB RSS)")
    median = statistics.median(samples)
    print(f"/papers latency: median {median:.1f} ms  p95 {p(0.95):.1f} ms  p99 {p(0.99):.1f} ms  max {samples[-1]:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
