"""Destinations: the configured channels plus every channel that subscribed from chat."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.model import Channel, Destination
from bot.ports import Subscriptions
from bot.query.routing import Router, compile_route

log = logging.getLogger(__name__)


class Channels:
    """Each destination's settings, and a router over everyone's current subscriptions."""

    def __init__(self, configured: Sequence[Channel], subscriptions: Subscriptions) -> None:
        self._configured = {c.destination: c for c in configured}
        self._subscriptions = subscriptions
        self._reported: set[tuple[Destination, str]] = set()  # disabled topics already logged

    def settings(self, destination: Destination) -> Channel:
        """The configured channel, or the defaults for one that only exists through chat."""
        return self._configured.get(destination) or Channel(destination, catch_all=False)

    @property
    def catch_all(self) -> frozenset[Destination]:
        """Configured destinations that get everything while they have no topics."""
        return frozenset(d for d, c in self._configured.items() if c.catch_all)

    async def seed(self) -> None:
        """Subscribe configured channels to their configured topics (once per topic, ever)."""
        for channel in self._configured.values():
            await self._subscriptions.seed(channel.destination, list(channel.topics))

    async def router(self) -> Router:
        """A router over the subscriptions as they are now (chat may have changed them)."""
        subscribed = await self._subscriptions.everything()
        routes = [
            compile_route(c.destination, subscribed.pop(c.destination, []), c.catch_all, c.min_upvotes)
            for c in self._configured.values()
        ]
        routes += [compile_route(destination, topics) for destination, topics in subscribed.items()]
        for route in routes:
            for topic, problem in route.disabled:
                if (route.destination, topic) not in self._reported:  # once per process, not every poll
                    self._reported.add((route.destination, topic))
                    kv = {"destination": route.destination.key, "topic": topic[:80], "problem": problem[:200]}
                    log.warning("subscription disabled: it no longer parses; unsubscribe it", extra={"kv": kv})
        return Router(routes)
