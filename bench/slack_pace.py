"""Slack pacing benchmark: 50 channels × 20 papers through a stand-in allowing one message a second a channel.

paperbot posts channels in parallel, each at one message a second: the wall time should be near the
20 s per-channel bound. The naive baseline posts everything through one queue at one message a
second (the simplest way to never exceed any channel's budget); it is measured on the first
``--naive-sample`` messages and extrapolated to all of them.

    .venv/bin/python bench/slack_pace.py [--channels 50] [--papers 20] [--naive-sample 15]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.slack.outbound import SlackOutbound, web_client
from bot.cards import to_card
from bot.flow.delivery import Deliverer
from bot.model import Delivery, Destination
from tests.fakes import make_paper
from tests.slack.standin import SlackStandIn
from tests.world import World


async def main(args: argparse.Namespace) -> None:
    papers = [make_paper(f"2611.{n:05d}", title=f"Paper {n}") for n in range(args.papers)]
    channels = [Destination("slack", f"C{n:03d}") for n in range(args.channels)]
    with SlackStandIn(channel_interval=1.0) as api:
        world = World()
        await world.store.commit(papers, [Delivery(c, p.id) for p in papers for c in channels])
        adapter = SlackOutbound(web_client("xoxb-bench", api.api_url), channel_interval=1.0)
        deliverer = Deliverer(
            world.store, world.store, {"slack": adapter}, "bench", claim_idle=600, coordination=world.coordination
        )
        started = time.perf_counter()
        report = await deliverer.deliver()
        parallel = time.perf_counter() - started
        limited = api.limited

        naive_api_calls = len(api.calls)
        naive = SlackOutbound(web_client("xoxb-bench", api.api_url), channel_interval=1.0)
        started = time.perf_counter()
        for n in range(args.naive_sample):  # one global queue, one message a second
            await naive.post(Destination("slack", "CNAIVE"), to_card(papers[n % len(papers)]))
        naive_per_message = (time.perf_counter() - started) / args.naive_sample
        await world.aclose()
    total = args.channels * args.papers
    assert report.delivered == total, report
    naive_total = naive_per_message * total
    sample = len(api.calls) - naive_api_calls
    print(f"channels={args.channels} papers={args.papers} messages={total} 429s={limited} naive sample calls={sample}")
    print(f"paperbot (channels in parallel, 1/s each): {parallel:6.1f} s   per-channel bound {args.papers - 1} s")
    naive_line = f"naive single queue at 1/s: {naive_per_message:.3f} s/message → {naive_total:7.1f} s for {total}"
    print(f"{naive_line}   ratio {naive_total / parallel:5.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--papers", type=int, default=20)
    parser.add_argument("--naive-sample", type=int, default=15)
    asyncio.run(main(parser.parse_args()))
