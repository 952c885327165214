"""Following benchmark: a poll re-reports 10,000 cached papers; which changed, and what to do about it.

paperbot's way (``Poller.ingest`` on papers it has seen: cached copies read 1,000 per round trip,
changed ones written back in pipelines, edits and late deliveries queued in one script call each)
against the naive way (per paper: GET its cached copy, compare, SET it when it changed), in the
same run on the same Redis over TCP on 127.0.0.1. 10 % of the papers have new upvotes, 1 % new
code; three channels, one with a 25-upvote threshold and one with an ``upvotes>=10`` topic. Round
trips are counted at the connection (one per command sent, one per pipeline).

    .venv/bin/python bench/track.py [--papers 10000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bench.scratch import scratch_redis
from bot.flow.poller import Poller, PollReport
from bot.model import Destination, Paper
from bot.query.routing import Router, compile_route
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from bot.store.retention import pack, unpack

PREFIX = "bencht:"


class CountingConnection(redis.Connection):
    """A connection that counts what it sends: each send is one round trip."""

    sent = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        await super().send_packed_command(command, check_health)


def changed(papers: list[Paper]) -> list[Paper]:
    """The same papers as a later poll reports them: every tenth with more upvotes, every hundredth with code."""
    out = []
    for n, paper in enumerate(papers):
        if n % 10 == 0:
            paper = dataclasses.replace(paper, upvotes=(paper.upvotes or 0) + 7)
        if n % 100 == 0:
            paper = dataclasses.replace(paper, links=dataclasses.replace(paper.links, code=f"https://github.com/x/{n}"))
        out.append(paper)
    return out


async def naive(client: redis.Redis, reports: list[Paper]) -> int:
    """Per paper: GET, compare, SET when changed. Returns how many changed."""
    count = 0
    for fresh in reports:
        raw = await client.get(f"{PREFIX}paper:{fresh.id}")
        if raw is None:
            continue
        before = Paper.from_json(unpack(raw))
        after = before.updated_by(fresh).bounded()
        if after != before:
            await client.set(f"{PREFIX}paper:{fresh.id}", pack(after.to_json()), xx=True, keepttl=True)
            count += 1
    return count


async def main(args: argparse.Namespace) -> None:
    async with scratch_redis(args.redis_url, PREFIX, connection_class=CountingConnection) as (client, _):
        store = RedisStore(client, prefix=PREFIX)
        routes = [
            compile_route(Destination("console", "all"), [], catch_all=True),
            compile_route(Destination("console", "popular"), [], catch_all=True, min_upvotes=25),
            compile_route(Destination("console", "ml"), ["learning upvotes>=10", "cat:cs.LG"]),
        ]
        papers = Corpus(seed=3).papers(args.papers)
        for start in range(0, len(papers), 2000):  # first seen: routed, and followed where thresholds are
            chunk = papers[start : start + 2000]
            await store.commit(chunk, Router(routes).route(chunk), Router(routes).watched)

        async def router() -> Router:
            return Router(routes)

        poller = Poller([], store, router, coordination=RedisCoordination(client, PREFIX), papers=store)
        results = []
        for name in ("paperbot", "naive"):
            reports = changed(papers)
            if name == "paperbot":
                before_trips, cpu, wall = CountingConnection.sent, time.process_time(), time.perf_counter()
                report = PollReport()
                await poller.ingest(reports, report)
                count = report.updated
            else:
                for start in range(0, len(papers), 2000):  # the same starting point: the cache as first seen
                    await client.mset({f"{PREFIX}paper:{p.id}": pack(p.to_json()) for p in papers[start : start + 2000]})
                before_trips, cpu, wall = CountingConnection.sent, time.process_time(), time.perf_counter()
                count = await naive(client, reports)
            trips = CountingConnection.sent - before_trips
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            results.append((name, trips, cpu, wall, count))
            print(
                f"{name:8}: {len(reports):,} papers, {count:,} changed: {trips:,} round trips "
                f"({trips / len(reports) * 1000:.1f} per 1,000 papers), CPU {cpu:.2f} s, wall {wall:.2f} s"
            )
        (_, trips, _, wall, _), (_, naive_trips, _, naive_wall, _) = results
        print(f"paperbot vs naive: {naive_trips / trips:.0f}x fewer round trips, {naive_wall / wall:.1f}x faster (wall)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
