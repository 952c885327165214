"""Detection to post: how long a paper waits between being queued and being posted.

100 papers over 5 channels, queued in 10 batches half a second apart (as polls commit them), on a
real Redis. Event-driven = the service's delivery loop (``bot.service.runner.deliver_forever``): a blocking
read on the outbox wakes it. Cycle-based = what a ``--role worker`` did until 2026-11-29: a delivery
pass every ``delivery.interval_seconds`` (then 60 s; in the default ``all`` role it was once per
poll, every 30 minutes, so this baseline is the kindest one). The terminal adapter posts without
pacing, so only the waiting is measured.

    .venv/bin/python bench/latency.py [--papers 100] [--channels 5] [--interval 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query import percentile
from bot.flow.delivery import Deliverer
from bot.model import Card, Delivery, Destination, PostRef
from bot.service.runner import App, Schedule, deliver_forever
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import make_paper
from tests.redis_servers import RedisProcess, embedded_binary


class Timed:
    """A terminal-like adapter that notes when each (channel, paper) was posted."""

    platform = "console"

    def __init__(self) -> None:
        self.posted: dict[tuple[str, str], float] = {}
        self.expected = 0
        self.all_posted = asyncio.Event()

    async def post(self, destination: Destination, card: Card) -> PostRef:
        self.posted[(destination.channel, card.paper_id)] = time.monotonic()
        if self.expected and len(self.posted) >= self.expected:
            self.all_posted.set()
        return PostRef(destination, f"{destination.channel}-{card.paper_id}")

    async def post_digest(self, destination: Destination, cards: list[Card], top: int) -> list[PostRef]:
        return [await self.post(destination, card) for card in cards]


async def run(client: redis.Redis, prefix: str, args: argparse.Namespace, event_driven: bool) -> list[float]:
    store, coordination = RedisStore(client, prefix), RedisCoordination(client, prefix)
    adapter = Timed()
    deliverer = Deliverer(store, store, {"console": adapter}, f"bench-{prefix}", claim_idle=600, coordination=coordination)
    if event_driven:
        app = App(None, deliverer, None, store, coordination, store, Schedule(), "worker")  # type: ignore[arg-type]
        worker = asyncio.create_task(deliver_forever(app))
    else:

        async def cycles() -> None:
            while True:
                await deliverer.deliver()
                await asyncio.sleep(args.interval)

        worker = asyncio.create_task(cycles())
    channels = [Destination("console", f"c{n}") for n in range(args.channels)]
    queued: dict[str, float] = {}
    await asyncio.sleep(0.5)  # the worker is up and idle, as a service would be
    per_batch = args.papers // 10
    for batch in range(10):
        papers = [make_paper(f"2611.{batch * per_batch + n:05d}") for n in range(per_batch)]
        await store.commit(papers, [Delivery(c, p.id) for p in papers for c in channels])
        now = time.monotonic()
        queued.update({p.id: now for p in papers})
        await asyncio.sleep(0.5)
    expected = adapter.expected = len(queued) * len(channels)
    if len(adapter.posted) >= expected:
        adapter.all_posted.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(adapter.all_posted.wait(), args.interval + 30)
    worker.cancel()
    await asyncio.gather(worker, return_exceptions=True)
    assert len(adapter.posted) == expected, (len(adapter.posted), expected)
    return sorted(at - queued[paper] for (_, paper), at in adapter.posted.items())


async def main(args: argparse.Namespace) -> None:
    binary = shutil.which("redis-server") or embedded_binary()
    server = RedisProcess(binary, Path(tempfile.mkdtemp(prefix="paperbot-bench-"))).start()
    client = redis.Redis.from_url(server.url, protocol=2)
    try:
        event = await run(client, "lat-event:", args, event_driven=True)
        cycle = await run(client, "lat-cycle:", args, event_driven=False)
    finally:
        await client.aclose()
        server.stop()
    print(f"{args.papers} papers x {args.channels} channels = {len(event)} posts")
    for name, samples in (("event-driven", event), (f"cycle-based, a pass every {args.interval:g} s", cycle)):
        print(f"{name:34s} p50 {percentile(samples, 0.5) * 1000:9.1f} ms   p99 {percentile(samples, 0.99) * 1000:9.1f} ms")
    print(f"p99 ratio: {percentile(cycle, 0.99) / percentile(event, 0.99):.0f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=100)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--interval", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
