"""Which destinations get which new papers."""

from __future__ import annotations

from collections.abc import Sequence

from bot.model import Channel, Delivery, Paper
from bot.topics import Query, parse_query


class Router:
    """Routes papers to channels: a channel without topics gets every paper, others get the papers
    at least one of their topic queries matches, with the matching topics as the reason."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self._routes: list[tuple[Channel, list[tuple[str, Query]]]] = [
            (channel, [(topic, parse_query(topic)) for topic in channel.topics]) for channel in channels
        ]

    def route(self, papers: Sequence[Paper]) -> list[Delivery]:
        """One delivery per (matching channel, paper), in paper order."""
        deliveries = []
        for paper in papers:
            for channel, queries in self._routes:
                if not queries:
                    deliveries.append(Delivery(channel.destination, paper.id))
                    continue
                why = tuple(topic for topic, query in queries if query.matches(paper))
                if why:
                    deliveries.append(Delivery(channel.destination, paper.id, why))
        return deliveries
