"""What an operator graphs and alerts on, in Prometheus's format: counters this process keeps (papers,
polls, deliveries, commands) and gauges read from the shared store when scraped (the outbox, dead
letters, sources' last success, installations), so any process's ``/metrics`` tells the whole story of
the store while its counters tell its own.

One registry per ``Metrics`` (never prometheus-client's global one): the composition root owns it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.errors import PaperbotError
from bot.flow.delivery import DeliveryReport
from bot.flow.poller import PollReport

# Seconds: a command answers in milliseconds; a poll in seconds to minutes.
COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
READ_WAIT = 5.0  # seconds the store may take to answer a scrape; then its gauges keep their last values
POLL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class StoreFigures:
    """What the shared store says at scrape time."""

    outbox_depth: int
    outbox_oldest_seconds: float  # age of the oldest entry still queued; 0 when the outbox is empty
    dead_letters: int
    source_ok_at: dict[str, float]  # source → unix time of its last success
    installations: int | None = None  # Slack workspaces installed (multi-workspace mode only)


class Metrics:
    """This process's counters and the store's gauges, rendered by ``exposition``."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        self.fetched = counter("paperbot_papers_fetched", "Papers the sources returned, per source.", "source")
        self.new = counter("paperbot_papers_new", "Papers seen for the first time, per source.", "source")
        self.polls = counter("paperbot_polls", "Polls run by this process, by result.", "result")
        self.source_failures = counter("paperbot_source_failures", "Failed fetches, per source.", "source")
        self.deliveries = counter("paperbot_deliveries", "Deliveries by platform and outcome.", "platform", "outcome")
        self.poll_seconds = Histogram(
            "paperbot_poll_duration_seconds", "How long a poll took.", buckets=POLL_BUCKETS, registry=registry
        )
        self.command_seconds = Histogram(
            "paperbot_command_duration_seconds",
            "From a chat command's arrival to its answer.",
            ["platform", "command"],
            buckets=COMMAND_BUCKETS,
            registry=registry,
        )
        self.outbox_depth = gauge("paperbot_outbox_depth", "Deliveries queued and not yet settled.")
        self.outbox_oldest = gauge("paperbot_outbox_oldest_age_seconds", "Age of the oldest queued delivery (0: none).")
        self.dead_letters = gauge("paperbot_dead_letters", "Deliveries given up on, kept for `paperbot deliveries`.")
        self.source_ok = gauge("paperbot_source_last_success_timestamp_seconds", "When each source last answered.", "source")
        self.installations = gauge("paperbot_installations", "Slack workspaces with paperbot installed.")
        self.store_up = gauge("paperbot_store_up", "1 when the store answered this scrape, else 0.")
        self.last_poll = gauge("paperbot_last_poll_timestamp_seconds", "When this process last finished a poll.")

    def polled(self, report: PollReport, seconds: float) -> None:
        """Count one poll (a skipped one, another process holding the lock, counts as skipped only)."""
        if report.skipped:
            self.polls.labels("skipped").inc()
            return
        self.polls.labels("failed" if report.failed and not report.answered else "ok").inc()
        self.poll_seconds.observe(seconds)
        self.last_poll.set(time.time())
        for source, count in report.fetched_by.items():
            self.fetched.labels(source).inc(count)
        for source, count in report.new_by.items():
            self.new.labels(source).inc(count)
        for source in report.failed:
            self.source_failures.labels(source).inc()

    def delivered(self, report: DeliveryReport) -> None:
        """Count one delivery pass's outcomes per platform."""
        for (platform, outcome), count in report.outcomes.items():
            self.deliveries.labels(platform, outcome).inc(count)

    def answered(self, platform: str, command: str, seconds: float) -> None:
        """Time one chat command."""
        self.command_seconds.labels(platform, command).observe(seconds)

    async def exposition(self, read: Callable[[], Awaitable[StoreFigures]] | None = None) -> tuple[bytes, str]:
        """The text a Prometheus scrape gets, and its content type; the store's gauges are read first
        (``read``; when the store does not answer, the scrape still does: ``paperbot_store_up`` 0 and
        the gauges as last read)."""
        if read is not None:
            try:
                async with asyncio.timeout(READ_WAIT):
                    figures = await read()
            except (PaperbotError, TimeoutError):
                self.store_up.set(0)
                return generate_latest(self.registry), CONTENT_TYPE_LATEST
            self.store_up.set(1)
            self.outbox_depth.set(figures.outbox_depth)
            self.outbox_oldest.set(figures.outbox_oldest_seconds)
            self.dead_letters.set(figures.dead_letters)
            for source, moment in figures.source_ok_at.items():
                self.source_ok.labels(source).set(moment)
            if figures.installations is not None:
                self.installations.set(figures.installations)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
