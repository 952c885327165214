"""Routing benchmark: 2,000 new papers against 10,000 subscriptions, indexed versus all pairs.

    .venv/bin/python bench/route.py [--papers 2000] [--subscriptions 10000] [--channels 500]

Both give the same deliveries (checked); the ratio is naive time / indexed time, same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import Corpus
from bot.model import Delivery, Destination, Paper
from bot.query.matcher import Doc
from bot.query.routing import Route, Router, compile_route


def naive(routes: list[Route], papers: list[Paper]) -> list[Delivery]:
    """Every paper against every query: the baseline the index must beat."""
    deliveries = []
    for paper in papers:
        doc = Doc.of(paper, vocabulary=True)  # the same prepared paper the router uses
        for route in routes:
            why = tuple(q.text for q in route.queries if q.matches(doc))
            if (paper.upvotes or 0) >= route.min_upvotes and (why or route.catch_all):
                deliveries.append(Delivery(route.destination, paper.id, why))
    return deliveries


def main(args: argparse.Namespace) -> None:
    corpus = Corpus(seed=1)
    papers = corpus.papers(args.papers)
    per_channel = args.subscriptions // args.channels
    routes = [
        compile_route(Destination("slack", f"C{n:05d}"), [corpus.query() for _ in range(per_channel)])
        for n in range(args.channels)
    ]
    for paper in papers:  # warm the word cache for both contenders alike
        Doc.of(paper, vocabulary=True)
    started = time.perf_counter()
    router = Router(routes)
    build = time.perf_counter() - started
    started = time.perf_counter()
    indexed = router.route(papers)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    slow_result = naive(routes, papers)
    slow = time.perf_counter() - started
    assert indexed == slow_result, "the index must route exactly like the naive loop"
    queries = sum(len(r.queries) for r in routes)
    print(f"papers={len(papers):,} subscriptions={queries:,} channels={len(routes):,} deliveries={len(indexed):,}")
    timing = f"naive all pairs {slow:8.2f} s   indexed {fast:6.2f} s (+ {build:.2f} s to build)"
    print(f"{timing}   ratio {slow / fast:5.1f}x   same result: yes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=2000)
    main(parser.parse_args())
