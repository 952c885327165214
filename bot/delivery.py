"""Delivery: take queued (destination, paper) entries, render, post, record, acknowledge."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination, PostRef
from bot.ports import Adapter, OutboxEntry, Store

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    already_delivered: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # destination key → reason
    pending: int = 0


class Deliverer:
    """Posts queued deliveries: destinations in parallel, each destination's papers in order.

    An entry is acknowledged only after the platform accepted the post and the post is recorded,
    so a crash or a failed post leaves it queued for the next pass. A destination that fails stops
    for this pass, keeping the order of what it still owes.
    """

    def __init__(self, store: Store, adapters: Mapping[str, Adapter], consumer: str, claim_idle: float, tldr_length: int = 280):
        self._store = store
        self._adapters = adapters
        self._consumer = consumer
        self._claim_idle = claim_idle
        self._tldr_length = tldr_length

    async def deliver(self) -> DeliveryReport:
        """One pass over everything this worker may deliver now."""
        entries = await self._store.take(self._consumer, self._claim_idle)
        by_destination: dict[Destination, list[OutboxEntry]] = {}
        for entry in entries:
            by_destination.setdefault(entry.delivery.destination, []).append(entry)
        report = DeliveryReport()
        await asyncio.gather(*(self._deliver_to(dest, queue, report) for dest, queue in by_destination.items()))
        return report

    async def _deliver_to(self, destination: Destination, queue: list[OutboxEntry], report: DeliveryReport) -> None:
        adapter = self._adapters.get(destination.platform)
        if adapter is None:
            report.failed[destination.key] = f"no {destination.platform} adapter is running"
            report.pending += len(queue)
            return
        for index, entry in enumerate(queue):
            try:
                await self._deliver_one(adapter, entry, report)
            except DeliveryError as exc:
                report.failed[destination.key] = str(exc)
                report.pending += len(queue) - index
                log.warning(
                    "delivery failed; will retry" if not exc.permanent else "delivery refused; fix the destination",
                    extra={"kv": {"destination": destination.key, "paper": entry.delivery.paper_id, "problem": str(exc)}},
                )
                return

    async def _deliver_one(self, adapter: Adapter, entry: OutboxEntry, report: DeliveryReport) -> None:
        delivery = entry.delivery
        earlier = await self._store.delivered(delivery.destination, delivery.paper_id)
        if earlier is not None:
            # A reclaimed entry whose post did go out before its worker died: record, never repost.
            await self._store.done(entry, PostRef(delivery.destination, earlier))
            report.already_delivered += 1
            return
        paper = await self._store.paper(delivery.paper_id)
        if paper is None:
            raise DeliveryError(f"paper {delivery.paper_id} is no longer in the cache", permanent=True)
        post = await adapter.post(delivery.destination, to_card(paper, delivery.why, self._tldr_length))
        await self._store.done(entry, post)
        report.delivered += 1
