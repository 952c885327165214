"""Query benchmark: ``/papers <query>`` over 60,000 cached papers, latency of the whole command.

Each sample is ``CommandCore.handle("/papers <query>")`` against a real Redis: the incremental
index refresh (one round trip), the search, reading the page of papers, building the cards; for the
bench's mix of topics and for a mix of the corpus's commonest words.

Also the index load, both ways, in the same run: built from the cached papers (what a process does
when the store has no snapshot: tokenising every paper) and from the snapshot the first build saved,
with the memory each index holds (RSS growth while it loads, per paper).

    .venv/bin/python bench/query.py [--papers 60000] [--queries 500] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bench.scratch import scratch_redis
from bot.chat.commands import ChatStores, CommandCore
from bot.model import Destination, UserRef
from bot.query.index import PaperIndex
from bot.store.coordination import RedisCoordination
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from bot.store.subscriptions import RedisSubscriptions

PREFIX = "benchq:"


def rss_mb() -> float:
    """The process's resident memory now (not its peak), in MB."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


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
async def cached_core(papers: int, redis_url: str | None) -> AsyncIterator[tuple[CommandCore, PaperIndex, Corpus, str]]:
    """A command core over ``papers`` cached papers of the bench corpus, on ``redis_url`` or a throwaway
    server, with the connection pool the service uses; every key and the server are gone afterwards."""
    # The pool the service uses (bot/app.py): a burst of commands waits for a connection, never fails.
    async with scratch_redis(redis_url, PREFIX, pool_class=redis.BlockingConnectionPool, max_connections=64, timeout=10) as (
        client,
        url,
    ):
        corpus = Corpus(seed=2)
        store = RedisStore(client, prefix=PREFIX)
        await fill(store, corpus, papers)
        index = PaperIndex(store, ttl_seconds=30 * 86400)
        coordination = RedisCoordination(client, PREFIX)
        core = CommandCore(
            ChatStores(store, RedisSubscriptions(client, PREFIX), RedisLibrary(client, PREFIX), coordination), index
        )
        yield core, index, corpus, url


async def load_once(url: str) -> None:
    """In a process of its own: one new index's first refresh from the store at ``url``; prints its
    time and the RSS it added as JSON (a fresh process, so freed memory is not reused from a last run)."""
    client = redis.Redis.from_url(url, protocol=2)
    store = RedisStore(client, prefix=PREFIX)
    before, started = rss_mb(), time.perf_counter()
    index = PaperIndex(store, ttl_seconds=30 * 86400)
    await index.refresh()
    seconds, grown = time.perf_counter() - started, rss_mb() - before
    await index.saved()  # a build saves a snapshot in the background: let it finish (as paperbot does at exit)
    print(json.dumps({"seconds": seconds, "mb": grown, "papers": len(index)}))
    await client.aclose()


async def measure_load(url: str) -> dict[str, float]:
    """``load_once`` in a child process."""
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--load-once", url, stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def latencies(core: CommandCore, queries: list[str]) -> tuple[list[float], int]:
    """Each whole ``/papers`` command's time in ms, sorted, and how many had results."""
    user, where = UserRef("slack", "UBENCH"), Destination("slack", "CBENCH")
    samples, matched = [], 0
    for text in queries:
        started = time.perf_counter()
        reply = await core.handle(f"/papers {text}", user, where)
        samples.append((time.perf_counter() - started) * 1000)
        matched += bool(reply.cards)
    return sorted(samples), matched


async def main(args: argparse.Namespace) -> None:
    async with cached_core(args.papers, args.redis_url) as (core, index, corpus, url):
        store = RedisStore(redis.Redis.from_url(url, protocol=2), prefix=PREFIX)
        await store.keep_index_snapshot(b"")  # no usable snapshot: the first load builds (and saves) one
        built = await measure_load(url)
        size = len(await store.index_snapshot() or b"")
        loaded = await measure_load(url)
        print(f"papers={args.papers:,}  snapshot {size / 2**20:.1f} MB in Redis")
        for name, figures in (("built from the papers", built), ("from the snapshot", loaded)):
            print(
                f"index load, {name:22}: {figures['seconds']:.2f} s, +{figures['mb']:.0f} MB RSS"
                f" ({figures['mb'] * 2**20 / args.papers:,.0f} B/paper)"
            )
        print(f"snapshot load: {built['seconds'] / loaded['seconds']:.1f}x faster than the build")
        await index.refresh()  # the core's own index (from the snapshot)
        for name, queries in (
            ("bench mix", [corpus.query() for _ in range(args.queries)]),
            ("common words", [corpus.common_query() for _ in range(args.queries)]),
            ("common-pair phrases", [corpus.common_phrase() for _ in range(args.queries // 5)]),
        ):
            samples, matched = await latencies(core, queries)
            p = functools.partial(percentile, samples)
            print(
                f"/papers {name} ({len(samples)} queries, {matched} with results): median {statistics.median(samples):.1f} ms"
                f"  p95 {p(0.95):.1f} ms  p99 {p(0.99):.1f} ms  max {samples[-1]:.1f} ms"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--load-once"]:
        asyncio.run(load_once(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
