"""Which destinations get which new papers, through an index from query anchors to subscriptions."""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.errors import CommandError
from bot.model import Delivery, Destination, Paper
from bot.query.matcher import Doc, Query, fields_of, with_likes
from bot.query.parser import parse_query

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """One destination's rules: its topic queries, and whether it gets everything when it has none.
    ``disabled`` holds the stored topics that no longer parse, with why (they route nothing)."""

    destination: Destination
    queries: tuple[Query, ...] = ()
    catch_all: bool = False
    min_upvotes: int = 0
    disabled: tuple[tuple[str, str], ...] = ()


def compile_route(destination: Destination, topics: Sequence[str], catch_all: bool = False, min_upvotes: int = 0) -> Route:
    """A route from stored query texts; a text that no longer parses (say, one stored before today's
    limits) is disabled on its own, never the route or the router."""
    queries, disabled = [], []
    for topic in topics:
        try:
            queries.append(parse_query(topic))
        except CommandError as exc:
            disabled.append((topic, str(exc)))
    return Route(destination, tuple(queries), catch_all and not queries and not disabled, min_upvotes, tuple(disabled))


class Router:
    """Routes each paper to the destinations whose queries match it, saying which ones matched.

    Each query is indexed under its anchors (a word, category, author or organization that every
    paper it matches must have), so a paper is checked only against the queries it could match,
    plus the few that have no anchor (such as ``-survey`` or ``upvotes>=50``).
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = list(routes)
        # Queries get ids in route order, so sorted ids give a stable "why" and destination order.
        self._queries: list[Query] = []
        self._owner: list[int] = []
        self._index: dict[str, list[int]] = defaultdict(list)
        self._unanchored: list[int] = []
        self._broken: set[int] = set()
        self._catch_all = [number for number, route in enumerate(self._routes) if route.catch_all]
        for number, route in enumerate(self._routes):
            for query in route.queries:
                query_id = len(self._queries)
                self._queries.append(query)
                self._owner.append(number)
                anchors = query.anchors()
                if anchors is None:
                    self._unanchored.append(query_id)
                for anchor in anchors or ():
                    self._index[anchor].append(query_id)

    @property
    def upvote_thresholds(self) -> frozenset[int]:
        """Upvote counts at which a paper's routing can change (channel thresholds, ``upvotes`` terms):
        a paper whose upvotes rose past none of them is routed as before."""
        found = {route.min_upvotes for route in self._routes if route.min_upvotes > 0}
        for query in self._queries:
            for node in fields_of(query.root):
                if node.name == "upvotes":
                    found.update((int(node.value), int(node.value) + 1))
        return frozenset(found)

    @property
    def watched(self) -> frozenset[Destination]:
        """Destinations whose routing depends on upvotes (a threshold, an ``upvotes`` term): a paper may
        reach them late, as its upvotes rise."""
        found = {route.destination for route in self._routes if route.min_upvotes > 0}
        for query, owner in zip(self._queries, self._owner, strict=True):
            if any(node.name == "upvotes" for node in fields_of(query.root)):
                found.add(self._routes[owner].destination)
        return frozenset(found)

    @property
    def likes(self) -> frozenset[str]:
        """The ``like:`` terms (their values) of every query: decided outside the router (``with_likes``)."""
        return frozenset(f.value for query in self._queries for f in fields_of(query.root) if f.name == "like")

    def with_likes(self, members: Mapping[str, frozenset[str]]) -> Router:
        """This router with each ``like:`` term's matching paper ids filled in."""
        routes = [
            dataclasses.replace(route, queries=tuple(Query(q.text, with_likes(q.root, members)) for q in route.queries))
            for route in self._routes
        ]
        return Router(routes)

    @property
    def destinations(self) -> list[Destination]:
        """Every destination with a route."""
        return [route.destination for route in self._routes]

    def route(self, papers: Sequence[Paper]) -> list[Delivery]:
        """One delivery per (matching destination, paper), papers in order, destinations in route order."""
        deliveries = []
        index, queries, owner = self._index, self._queries, self._owner
        for paper in papers:
            doc = Doc.of(paper, vocabulary=True)
            candidates = set(self._unanchored)
            for key in doc.index_keys():
                if key in index:
                    candidates.update(index[key])
            why: dict[int, list[str]] = {}
            for query_id in sorted(candidates - self._broken):
                query = queries[query_id]
                try:
                    matched = query.root.hit(doc)
                except Exception as exc:  # one subscription must never stop routing for everyone
                    self._broken.add(query_id)
                    kv = {"destination": self._routes[owner[query_id]].destination.key, "query": query.text, "problem": repr(exc)}
                    log.error("subscription disabled: it failed on a paper", extra={"kv": kv})
                    continue
                if matched:
                    why.setdefault(owner[query_id], []).append(query.text)
            # Only routes that matched, or take everything, are visited: never all routes per paper.
            for number in sorted(why.keys() | set(self._catch_all)) if self._catch_all else why:
                route = self._routes[number]
                if (paper.upvotes or 0) >= route.min_upvotes:
                    deliveries.append(Delivery(route.destination, paper.id, tuple(why.get(number, ()))))
        return deliveries
