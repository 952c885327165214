"""Personal feed benchmark: paper vectors at ingestion, and ``/papers similar`` / ``/papers foryou``
over 60,000 cached papers, against ``/papers <query>`` commands measured in the same run.

- Ingestion: vectors for 2,000 new papers (real arXiv titles and abstracts, the quality set's day four
  times over) computed and stored, against indexing the same papers for search (the baseline).
- Memory: the feed's rows for every cached paper (its arrays and maps, counted; RSS is shown too but
  reuses memory the index's snapshot writer freed) and what the vectors take in Redis.
- Latency of whole commands (index refresh, ranking, reading the page, cards): ``similar`` for random
  cached papers; ``foryou`` for readers with 5 to 200 saved papers, first (training the model) and
  again (the cached model); the bench's query mix as the baseline.

    .venv/bin/python bench/feed.py [--papers 60000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bench.query import percentile, rss_mb
from bench.scratch import scratch_redis
from bot.chat.commands import ChatStores, CommandCore
from bot.chat.feed import Feed
from bot.chat.vectors import Embedder
from bot.model import Destination, UserRef
from bot.query.index import PaperIndex
from bot.query.matcher import Doc
from bot.store.coordination import RedisCoordination
from bot.store.follows import RedisFollows
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from bot.store.subscriptions import RedisSubscriptions
from tests.fakes import listing

PREFIX = "benchf:"
WHERE = Destination("slack", "CBENCH")


async def used_memory(client: redis.Redis) -> int:
    return int((await client.info("memory"))["used_memory"])


async def timed(core: CommandCore, text: str, user: UserRef, answered: bool = True) -> float:
    started = time.perf_counter()
    reply = await core.handle(text, user, WHERE)
    assert reply.cards or not answered, (text, reply.text)
    return (time.perf_counter() - started) * 1000


def line(name: str, samples: list[float], baseline: list[float] | None = None) -> str:
    p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
    ratio = f"  ({p99 / percentile(baseline, 0.99):.1f}x the query mix's p99)" if baseline else ""
    return f"{name:34} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms{ratio}"


async def main(args: argparse.Namespace) -> None:
    async with scratch_redis(args.redis_url, PREFIX, pool_class=redis.BlockingConnectionPool, max_connections=64) as (client, _):
        corpus, rng = Corpus(seed=5), random.Random(5)
        store, library = RedisStore(client, prefix=PREFIX), RedisLibrary(client, PREFIX)
        index = PaperIndex(store, ttl_seconds=30 * 86400)
        embedder = Embedder()
        feed = Feed(index, store, library, embedder)
        stores = ChatStores(
            store, RedisSubscriptions(client, PREFIX), library, RedisCoordination(client, PREFIX), RedisFollows(client, PREFIX)
        )
        core = CommandCore(stores, index, feed=feed)
        await asyncio.to_thread(embedder.embed, ["warm up"])  # the model loads once per process (~0.6 s)

        real = listing()
        new = [dataclasses.replace(p, id=f"27{n // 100000:02d}.{n % 100000:05d}") for n, p in enumerate(real * 4)][:2000]
        started = time.perf_counter()
        await feed.remember(new)
        vectors = time.perf_counter() - started
        started = time.perf_counter()
        for paper in new:
            Doc.of(paper).index_keys()
        tokenised = time.perf_counter() - started
        each = vectors / len(new) * 1000
        print(f"vectors for {len(new):,} new papers, computed and stored: {vectors:.2f} s ({each:.2f} ms a paper)")
        print(f"  baseline, tokenising them for the search index: {tokenised:.2f} s ({vectors / tokenised:.1f}x)")

        for start in range(0, args.papers, 2000):
            batch = corpus.papers(min(2000, args.papers - start), start)
            await store.commit(batch, [])
            await feed.remember(batch)
            if (start + 2000) % 10_000 == 0:
                print(f"  cached {start + 2000:,}/{args.papers:,} papers with vectors", file=sys.stderr)
        await store.commit(new, [])
        redis_before = await used_memory(client)
        before = rss_mb()
        await index.refresh()
        await index.saved()  # the index's first build writes its snapshot in the background
        indexed = rss_mb()
        started = time.perf_counter()
        await feed.sync()
        synced = time.perf_counter() - started
        per_paper = feed.nbytes / len(feed)
        print(
            f"feed rows for {len(feed):,} papers: {feed.nbytes / 2**20:.1f} MB ({per_paper:.0f} B/paper), read in {synced:.2f} s"
        )
        print(f"  (RSS: the query index +{indexed - before:.0f} MB, then the feed +{rss_mb() - indexed:.0f} MB)")
        vec_keys = [key async for key in client.scan_iter(f"{PREFIX}vec:*", count=5000)]
        sizes = [await client.memory_usage(key) or 0 for key in vec_keys[:2000]]
        per_key = sum(sizes) / max(1, len(sizes))
        in_all = per_key * len(vec_keys) / 2**20
        print(f"vectors in Redis: {len(vec_keys):,} keys, {per_key:.0f} B each (MEMORY USAGE), {in_all:.1f} MB")
        print(f"  (used_memory with every paper cached: {redis_before / 2**20:.0f} MB)")

        ids = index.live_ids()
        queries = [corpus.query() for _ in range(200)]
        baseline = [await timed(core, f"/papers {q}", UserRef("slack", "UQ"), answered=False) for q in queries]
        similar = [await timed(core, f"/papers similar {rng.choice(ids)}", UserRef("slack", "US")) for _ in range(200)]
        first, again = [], []
        for reader in range(50):
            user = UserRef("slack", f"U{reader}")
            for pid in rng.sample(ids, 5 + reader * 4):  # 5 to 201 saved papers
                paper = await store.paper(pid)
                assert paper is not None
                await library.save(user, paper)
            first.append(await timed(core, "/papers foryou", user))
            again += [await timed(core, "/papers foryou", user) for _ in range(3)]
        print(line("/papers <query> (baseline)", baseline))
        print(line("/papers similar <id>", similar, baseline))
        print(line("/papers foryou, model trained", first, baseline))
        print(line("/papers foryou, model cached", again, baseline))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=60_000)
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))
