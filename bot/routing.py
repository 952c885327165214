"""Which destinations get which new papers, through an index from query anchors to subscriptions."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import CommandError
from bot.model import Delivery, Destination, Paper
from bot.topics import Doc, Query, parse_query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """One destination's rules: its topic queries, and whether it gets everything when it has none."""

    destination: Destination
    queries: tuple[Query, ...] = ()
    catch_all: bool = False
    min_upvotes: int = 0


def compile_route(destination: Destination, topics: Sequence[str], catch_all: bool = False, min_upvotes: int = 0) -> Route:
    """A route from stored query texts; a text that no longer parses is skipped with a warning."""
    queries = []
    for topic in topics:
        try:
            queries.append(parse_query(topic))
        except CommandError as exc:
            kv = {"destination": destination.key, "problem": str(exc)}
            log.warning("skipped a subscription that does not parse", extra={"kv": kv})
    return Route(destination, tuple(queries), catch_all and not queries, min_upvotes)


class Router:
    """Routes each paper to the destinations whose queries match it, saying which ones matched.

    Each query is indexed under its anchors (a word, category, author or organization that every
    paper it matches must have), so a paper is checked only against the queries it could match,
    plus the few that have no anchor (such as ``-survey`` or ``upvotes>=50``).
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)
        # Entries are (route number, query number): sorting them gives a stable "why" order.
        self._index: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._unanchored: list[tuple[int, int]] = []
        for number, route in enumerate(self._routes):
            for position, query in enumerate(route.queries):
                anchors = query.anchors()
                if anchors is None:
                    self._unanchored.append((number, position))
                for anchor in anchors or ():
                    self._index[anchor].append((number, position))

    def route(self, papers: Sequence[Paper]) -> list[Delivery]:
        """One delivery per (matching destination, paper), papers in order, destinations in route order."""
        deliveries = []
        for paper in papers:
            doc = Doc.of(paper)
            why: dict[int, list[str]] = defaultdict(list)
            candidates = {pair for key in doc.index_keys() for pair in self._index.get(key, ())}
            for number, position in sorted(candidates.union(self._unanchored)):
                query = self._routes[number].queries[position]
                if query.matches(doc):
                    why[number].append(query.text)
            for number, route in enumerate(self._routes):
                if (paper.upvotes or 0) < route.min_upvotes:
                    continue
                if why.get(number) or route.catch_all:
                    deliveries.append(Delivery(route.destination, paper.id, tuple(why.get(number, ()))))
        return deliveries
