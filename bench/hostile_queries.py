"""Hostile queries: the worst ``/papers`` queries the limits allow, over 60,000 cached papers.

Measures each worst query alone (its answer or refusal, and its time), then the latency of
ordinary commands (the bench mix of bench/query.py, one every 20 ms) while five worst-case queries
run alongside, against the same ordinary commands with nothing alongside: the ratio is the cost a
hostile member imposes on everyone else.

    .venv/bin/python bench/hostile_queries.py [--papers 60000] [--ordinary 200] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bench.query import cached_core, percentile
from bot.chat.commands import CommandCore
from bot.model import Destination, UserRef


def worst_queries(corpus: Corpus) -> dict[str, str]:
    """The costliest shapes within the limits (500 characters, 20 terms, depth 6)."""
    common = corpus.words[:20]
    return {
        "20 negations": " ".join(f"-never{n}" for n in range(20)),
        "OR of the 20 commonest words": " OR ".join(common),
        "phrase of 12 common words": '"' + " ".join(common[:12]) + '"',
        "upvotes>=0 and 19 negations": "upvotes>=0 " + " ".join(f"-zz{n}" for n in range(19)),
        "code:no and 19 common ORed": "code:no (" + " OR ".join(common[:19]) + ")",
        "nested NOT/OR, depth 6": "-(" + common[0] + " OR -(" + common[1] + " OR -(" + common[2] + " OR " + common[3] + ")))",
    }


async def ordinary_run(core: CommandCore, queries: list[str], alongside: list[str]) -> list[float]:
    """Latencies (ms) of ``queries`` issued one every 20 ms, with ``alongside`` running in parallel."""
    user, where = UserRef("slack", "UORD"), Destination("slack", "CBENCH")
    hostile = [asyncio.create_task(core.handle(f"/papers {q}", UserRef("slack", "UEVIL"), where)) for q in alongside]

    async def one(text: str, delay: float) -> float:
        await asyncio.sleep(delay)
        started = time.perf_counter()
        await core.handle(f"/papers {text}", user, where)
        return (time.perf_counter() - started) * 1000

    samples = await asyncio.gather(*(one(text, n * 0.02) for n, text in enumerate(queries)))
    await asyncio.gather(*hostile)
    return list(samples)


async def main(args: argparse.Namespace) -> None:
    async with cached_core(args.papers, args.redis_url) as (core, index, corpus, _url):
        await index.refresh()
        await index.saved()  # the first build saves a snapshot in the background: measure after it
        print(f"papers={len(index):,}")
        worst = worst_queries(corpus)
        for name, text in worst.items():
            started = time.perf_counter()
            reply = await core.handle(f"/papers {text}", UserRef("slack", "UEVIL"), Destination("slack", "CBENCH"))
            answer = "refused: too broad" if "too broad" in reply.text else reply.text.split(" “")[0]
            print(f"  worst: {name:30s} {(time.perf_counter() - started) * 1000:8.1f} ms  {answer}")
        mix = [corpus.query() for _ in range(args.ordinary)]
        alone = await ordinary_run(core, mix, [])
        five = list(worst.values())[:5]
        beside = await ordinary_run(core, mix, five)
    for label, samples in (("alone", alone), ("with 5 worst alongside", beside)):
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        print(f"ordinary commands {label:24s} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {max(samples):7.1f} ms")
    print(f"p99 ratio (alongside / alone): {percentile(beside, 0.99) / percentile(alone, 0.99):.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=60_000)
    parser.add_argument("--ordinary", type=int, default=200)
    parser.add_argument("--redis-url")
    asyncio.run(main(parser.parse_args()))
