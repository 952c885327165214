"""Delivery: take queued (destination, paper) entries, render, post, record, acknowledge."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.cards import to_card
from bot.errors import DeliveryError, PaperbotError
from bot.flow.recap import TITLE as RECAP_TITLE
from bot.model import Channel, Delivery, Destination, OutboxEntry, Paper, PostRef
from bot.pacing import backoff
from bot.ports import Adapter, Coordination, Editor, Outbox, Papers, PostFinder

log = logging.getLogger(__name__)

PAUSE_SECONDS = 3600
MAX_ATTEMPTS = 8  # failed passes (backing off from 30 s to an hour) before a delivery becomes a dead letter
BACKOFF_FIRST, BACKOFF_LAST = 30.0, 3600.0
BATCH, MAX_BATCHES = 500, 200  # 100,000 deliveries a pass at most; the next pass continues
HEARTBEAT_TTL = 6.0  # seconds; a killed worker's entries are taken over within this (refreshed every 2 s)


@dataclass
class Progress:
    """How far one destination's pass got: entries posted and buried, in queue order."""

    posted: int = 0
    buried: int = 0
    digest: bool = False  # a failed digest fails every entry it carried


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    edited: int = 0  # posted cards brought up to date
    already_delivered: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # destination key → reason
    pending: int = 0
    dead: int = 0  # moved to the dead letters this pass
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (platform, outcome) → how many

    def merged(self, later: DeliveryReport) -> DeliveryReport:
        """This pass and a ``later`` one as one report (what is still pending is the later count)."""
        return DeliveryReport(
            self.delivered + later.delivered,
            self.edited + later.edited,
            self.already_delivered + later.already_delivered,
            self.skipped + later.skipped,
            {**self.failed, **later.failed},
            later.pending,
            self.dead + later.dead,
            self.outcomes + later.outcomes,
        )

    def add(self, platform: str, part: DeliveryReport) -> None:
        """Take in one destination's part of a pass, counting its outcomes under ``platform``."""
        self.delivered += part.delivered
        self.edited += part.edited
        self.already_delivered += part.already_delivered
        self.skipped += part.skipped
        self.failed.update(part.failed)
        self.pending += part.pending
        self.dead += part.dead
        counts = {"posted": part.delivered, "edited": part.edited, "skipped": part.skipped + part.already_delivered}
        counts |= {"failed": len(part.failed), "dead": part.dead}
        self.outcomes.update({(platform, outcome): n for outcome, n in counts.items() if n})


class Deliverer:
    """Posts queued deliveries: destinations in parallel, each destination's papers in order.

    An entry is acknowledged only after the platform accepted the post and the post is recorded,
    so a crash or a failed post leaves it queued for the next pass. A destination that fails stops
    for this pass, keeping the order of what it still owes.
    """

    def __init__(
        self,
        outbox: Outbox,
        papers: Papers,
        adapters: Mapping[str, Adapter],
        consumer: str,
        claim_idle: float,
        tldr_length: int = 280,
        channel: Callable[[Destination], Channel] = Channel,
        today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat(),
        batch: int = BATCH,
        backoff: float = BACKOFF_FIRST,
        *,
        coordination: Coordination,
        undeliverable: Callable[[Destination, str], Awaitable[None]] | None = None,
        forget: Callable[[Destination], Awaitable[int]] | None = None,
    ):
        self._undeliverable = undeliverable  # told when a person's direct messages cannot be reached
        self._forget = forget  # forgets a destination that no longer exists (its subscriptions and queue)
        self._coordination = coordination
        self._batch = batch
        self._backoff = backoff
        self._outbox = outbox
        self._papers = papers
        self._adapters = adapters
        self._consumer = consumer
        self._claim_idle = claim_idle
        self._tldr_length = tldr_length
        self._channel = channel
        self._today = today

    async def deliver(self) -> DeliveryReport:
        """Deliver everything this worker may deliver now, a batch at a time. Stops after a batch
        with failures: what failed waits for the next pass rather than being retried in a loop."""
        beating = asyncio.create_task(self._beat())  # while it delivers, its entries are its own
        try:
            return await self._deliver()
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)

    async def keep_alive(self) -> None:
        """Refresh this worker's heartbeat until cancelled (the service's delivery loop runs it throughout)."""
        await self._beat()

    async def _beat(self) -> None:
        while True:
            await self._outbox.heartbeat(self._consumer, HEARTBEAT_TTL)
            await asyncio.sleep(HEARTBEAT_TTL / 3)

    async def _deliver(self) -> DeliveryReport:
        report = DeliveryReport()
        await self._outbox.heartbeat(self._consumer, HEARTBEAT_TTL)
        for _ in range(MAX_BATCHES):
            entries = await self._outbox.take(self._consumer, self._claim_idle, self._batch)
            by_destination: dict[Destination, list[OutboxEntry]] = {}
            for entry in entries:
                by_destination.setdefault(entry.delivery.destination, []).append(entry)
            parts = {destination: DeliveryReport() for destination in by_destination}
            await asyncio.gather(*(self._deliver_to(dest, queue, parts[dest]) for dest, queue in by_destination.items()))
            for destination, part in parts.items():
                report.add(destination.platform, part)
            if len(entries) < self._batch or report.failed:
                break
        return report

    async def _deliver_to(self, destination: Destination, queue: list[OutboxEntry], report: DeliveryReport) -> None:
        """One destination's pass. Whatever an adapter raises that is not ours (an SDK's exception it did not
        translate, a bug) fails this destination alone, transiently, with one log line: never the pass."""
        try:
            await self._deliver_queue(destination, queue, report)
        except (PaperbotError, asyncio.CancelledError, BrokenPipeError):
            raise  # ours to handle above; a broken pipe is the terminal's reader gone (the CLI ends quietly)
        except Exception as exc:
            problem = f"unexpected {type(exc).__name__}: {exc}"[:300]
            log.error(
                "delivery failed unexpectedly; will retry", extra={"kv": {"destination": destination.key, "problem": problem}}
            )
            report.failed[destination.key] = problem
            report.pending += max(0, len(queue) - report.delivered - report.dead - report.skipped - report.edited)
            report.dead += await self._failed(destination, queue[:1], DeliveryError(problem))

    async def _deliver_queue(self, destination: Destination, queue: list[OutboxEntry], report: DeliveryReport) -> None:
        adapter = self._adapters.get(destination.platform)
        if adapter is None:
            report.failed[destination.key] = f"no {destination.platform} adapter is running"
            report.pending += len(queue)
            return
        paused = await self._coordination.paused(destination)
        if paused:
            report.failed[destination.key] = f"paused: {paused}"
            report.pending += len(queue)
            return
        edits = [e for e in queue if e.delivery.edit]
        recaps = [e for e in queue if e.delivery.recap]
        queue = [e for e in queue if not (e.delivery.edit or e.delivery.recap)]
        if queue:
            await self._post_queue(adapter, destination, queue, report)
        if recaps and destination.key not in report.failed:
            await self._post_recaps(adapter, destination, recaps, report)
        elif recaps:
            report.pending += len(recaps)
        if edits and destination.key not in report.failed:  # after a failed post, edits wait too
            await self._edit_each(adapter, destination, edits, report)
        elif edits:
            report.pending += len(edits)

    async def _post_queue(
        self, adapter: Adapter, destination: Destination, queue: list[OutboxEntry], report: DeliveryReport
    ) -> None:
        channel = self._channel(destination)
        owed = await self._settle_already_delivered(adapter, queue, report)
        papers = {p.id: p for p in await self._papers.papers([e.delivery.paper_id for e in owed])}
        for entry in [e for e in owed if e.delivery.paper_id not in papers]:
            await self._outbox.skip(entry, "expired from the paper cache")
            report.skipped += 1
        owed = await self._apply_cap(channel, [e for e in owed if e.delivery.paper_id in papers], papers, report)
        progress = Progress()
        try:
            if channel.mode == "digest" and owed:
                await self._post_digest(adapter, channel, owed, papers, progress)
            else:
                await self._post_each(adapter, owed, papers, progress)
        except DeliveryError as exc:
            report.failed[destination.key] = str(exc)
            left = owed[progress.posted + progress.buried :]
            progress.buried += await self._failed(destination, left if progress.digest else left[:1], exc)
        else:
            if progress.posted:
                await self._coordination.count_failure(destination, reset=True)
        report.delivered += progress.posted
        report.dead += progress.buried
        report.pending += len(owed) - progress.posted - progress.buried

    async def _post_recaps(
        self, adapter: Adapter, destination: Destination, recaps: list[OutboxEntry], report: DeliveryReport
    ) -> None:
        """Weekly recaps: each one digest of its papers, whatever the channel's mode, with no daily cap
        (it is one message) and no check for earlier posts (a recap repeats papers on purpose)."""
        channel = self._channel(destination)
        for n, entry in enumerate(recaps):
            papers = {p.id: p for p in await self._papers.papers(list(entry.delivery.recap))}
            cards = [to_card(papers[i], why, self._tldr_length) for i, why in _reasons(entry.delivery) if i in papers]
            if not cards:
                await self._outbox.skip(entry, "expired from the paper cache")
                report.skipped += 1
                continue
            try:
                # A reader's own digest shows every paper in one message; a channel's keeps its digest size.
                top = len(cards) if destination.person else channel.digest_size
                posts = await adapter.post_digest(destination, cards, top, entry.delivery.title or RECAP_TITLE)
            except DeliveryError as exc:
                if destination.person and (exc.permanent or exc.rejected):
                    # A person who cannot be messaged: their digest is a dead letter and they are told
                    # once, the next time they ask paperbot something; nothing is paused.
                    await self._outbox.bury(entry, f"could not send this direct message: {exc}")
                    report.dead += 1
                    if self._undeliverable is not None:
                        await self._undeliverable(destination, str(exc))
                    continue
                if await self._one_failed(destination, entry, exc, len(recaps) - n, report):
                    continue
                return
            await self._outbox.done(entry, posts[0])
            report.delivered += 1

    async def _edit_each(
        self, adapter: Adapter, destination: Destination, edits: list[OutboxEntry], report: DeliveryReport
    ) -> None:
        """Bring posted cards up to date, in order. An edit never posts: a deleted message drops its
        edit (one line), a refused card is a dead letter, any other failure waits like a post's."""
        if not isinstance(adapter, Editor):
            for entry in edits:
                await self._outbox.skip(entry, f"{destination.platform} cards cannot be edited")
            report.skipped += len(edits)
            return
        papers = {p.id: p for p in await self._papers.papers([e.delivery.paper_id for e in edits])}
        for n, entry in enumerate(edits):
            delivery = entry.delivery
            post = PostRef(destination, delivery.edit)
            paper = papers.get(delivery.paper_id)
            if paper is None:
                await self._outbox.skip(entry, "expired from the paper cache")
                report.skipped += 1
                continue
            try:
                await adapter.edit(post, to_card(paper, delivery.why, self._tldr_length))
            except DeliveryError as exc:
                kv = {"destination": destination.key, "paper": delivery.paper_id, "problem": str(exc)}
                if exc.gone:
                    await self._outbox.skip(entry, "message deleted")
                    log.info("card to update was deleted; edit dropped", extra={"kv": kv})
                    report.skipped += 1
                    continue
                if await self._one_failed(destination, entry, exc, len(edits) - n, report):
                    log.warning("updated card refused; moved to the dead letters", extra={"kv": kv})
                    continue
                return
            await self._outbox.done(entry, post)
            report.edited += 1
            log.info("card updated", extra={"kv": {"destination": destination.key, "paper": delivery.paper_id}})

    async def _one_failed(
        self, destination: Destination, entry: OutboxEntry, exc: DeliveryError, left: int, report: DeliveryReport
    ) -> bool:
        """An edit or a recap failed: a message the platform refuses is a dead letter (True: the pass
        goes on); any other failure stops this destination's pass, ``left`` entries still owed."""
        if exc.rejected:
            await self._outbox.bury(entry, f"the platform refused this message: {exc}")
            report.dead += 1
            return True
        report.failed[destination.key] = str(exc)
        report.pending += left
        report.dead += await self._failed(destination, [entry], exc)
        return False

    async def _failed(self, destination: Destination, entries: list[OutboxEntry], exc: DeliveryError) -> int:
        """After a failed post (of one card, or of a digest): count an attempt for each of its entries,
        bury the hopeless ones, then pause (permanent) or back off. Returns how many were buried."""
        buried = 0
        for entry in entries:
            attempts = await self._outbox.failed_attempt(entry)
            if exc.permanent or attempts >= MAX_ATTEMPTS:
                why = str(exc) if exc.permanent else f"gave up after {attempts} attempts: {exc}"
                await self._outbox.bury(entry, why)  # `paperbot deliveries --retry` queues it again
                buried += 1
        if exc.vanished and self._forget is not None:
            # The channel is gone for good (deleted): its subscriptions and queue go too, said once.
            forgotten = await self._forget(destination)
            log.warning(
                "destination no longer exists; forgotten", extra={"kv": {"destination": destination.key, "queued": forgotten}}
            )
        elif exc.permanent:
            # One line, then silence for an hour: retrying cannot fix it, and platforms punish trying.
            await self._coordination.pause(destination, str(exc), PAUSE_SECONDS)
            log.error(
                "destination paused: fix it (invite the bot, grant the scope, renew the token); its papers stay queued",
                extra={"kv": {"destination": destination.key, "problem": str(exc), "retry_in_s": PAUSE_SECONDS}},
            )
        else:
            await self._back_off(destination, exc)
        return buried

    async def _back_off(self, destination: Destination, exc: DeliveryError) -> None:
        """Wait longer after each failed pass (doubling, with jitter), in Redis so every worker waits."""
        failures = await self._coordination.count_failure(destination)
        delay = max(backoff(failures - 1, self._backoff, BACKOFF_LAST), exc.retry_after or 0.0)
        if delay >= 1:
            await self._coordination.pause(destination, f"retrying after: {exc}", int(delay))
        kv = {"destination": destination.key, "problem": str(exc), "failures": failures, "retry_in_s": int(delay)}
        log.warning("delivery failed; will retry", extra={"kv": kv})

    async def _settle_already_delivered(
        self, adapter: Adapter, queue: list[OutboxEntry], report: DeliveryReport
    ) -> list[OutboxEntry]:
        """Entries already posted are recorded, not posted again: those paperbot recorded (a reclaimed
        entry whose worker died after recording), and those whose posting began but was never recorded
        (a worker died between the platform's answer and the record) that the platform can find."""
        destination = queue[0].delivery.destination
        # One lookup for the whole queue (it is all one destination), not a round trip per entry.
        earlier_posts = await self._outbox.earlier_posts(destination, [e.delivery.paper_id for e in queue])
        begun = await self._outbox.intended(queue) if isinstance(adapter, PostFinder) else set()
        unsure = [e.delivery.paper_id for e in queue if e.entry_id in begun and e.delivery.paper_id not in earlier_posts]
        # One look at the channel for every post a dead process may have made (platforms limit the reads).
        found = await adapter.find_posts(destination, unsure) if unsure and isinstance(adapter, PostFinder) else {}
        owed = []
        for entry in queue:
            earlier = earlier_posts.get(entry.delivery.paper_id)
            post = PostRef(destination, earlier) if earlier is not None else None
            if post is None and entry.entry_id in begun and (post := found.get(entry.delivery.paper_id)) is not None:
                log.info(
                    "found a post made by a process that died; recorded it",
                    extra={"kv": {"destination": destination.key, "paper": entry.delivery.paper_id}},
                )
            if post is None:
                owed.append(entry)
            else:
                await self._outbox.done(entry, post)
                report.already_delivered += 1
        return owed

    async def _apply_cap(
        self, channel: Channel, owed: list[OutboxEntry], papers: dict[str, Paper], report: DeliveryReport
    ) -> list[OutboxEntry]:
        if not channel.daily_cap:
            return owed
        room = max(0, channel.daily_cap - await self._coordination.count_post(channel.destination, self._today(), 0))
        if len(owed) <= room:
            return owed
        # Keep the most upvoted within the cap, in their original order; the rest are settled as skipped.
        best = sorted(owed, key=lambda e: -(papers[e.delivery.paper_id].upvotes or 0))[:room]
        keep = {e.entry_id for e in best}
        for entry in owed:
            if entry.entry_id not in keep:
                await self._outbox.skip(entry, "daily cap")
                report.skipped += 1
        return [e for e in owed if e.entry_id in keep]

    async def _post_each(self, adapter: Adapter, owed: list[OutboxEntry], papers: dict[str, Paper], progress: Progress) -> None:
        """One post per entry, in order. A card the platform refuses for itself is buried with the
        platform's reason and the next one goes on; any other failure stops this destination's pass."""
        for entry in owed[progress.posted + progress.buried :]:
            try:
                await self._post_one(adapter, entry, papers[entry.delivery.paper_id])
            except DeliveryError as exc:
                if not exc.rejected:
                    raise
                await self._outbox.bury(entry, f"the platform refused this card: {exc}")
                kv = {"destination": entry.delivery.destination.key, "paper": entry.delivery.paper_id, "problem": str(exc)}
                log.warning("card refused; moved to the dead letters, the channel goes on", extra={"kv": kv})
                progress.buried += 1
                continue
            progress.posted += 1

    async def _post_one(self, adapter: Adapter, entry: OutboxEntry, paper: Paper) -> None:
        delivery = entry.delivery
        if isinstance(adapter, PostFinder):
            await self._outbox.intend(entry)  # one round trip a post, only where the platform can be asked later
        post = await adapter.post(delivery.destination, to_card(paper, delivery.why, self._tldr_length))
        await self._outbox.done(entry, post)
        await self._coordination.count_post(delivery.destination, self._today())

    async def _post_digest(
        self, adapter: Adapter, channel: Channel, owed: list[OutboxEntry], papers: dict[str, Paper], progress: Progress
    ) -> None:
        owed.sort(key=lambda e: -(papers[e.delivery.paper_id].upvotes or 0))  # posted in this order
        cards = [to_card(papers[e.delivery.paper_id], e.delivery.why, self._tldr_length) for e in owed]
        progress.digest = True
        try:
            posts = await adapter.post_digest(channel.destination, cards, channel.digest_size)
        except DeliveryError as exc:
            if not exc.rejected:
                raise
            # One card spoils the digest: post them one by one instead, so only that one is buried.
            progress.digest = False
            await self._post_each(adapter, owed, papers, progress)
            return
        for entry, post in zip(owed, posts, strict=False):
            await self._outbox.done(entry, post)
        await self._coordination.count_post(channel.destination, self._today(), len(posts))
        progress.posted += len(posts)


def _reasons(recap: Delivery) -> list[tuple[str, tuple[str, ...]]]:
    """Each paper of a recap with its why-line: one per paper when there are as many, else the same."""
    if len(recap.why) == len(recap.recap) > 1:
        return [(paper_id, (why,)) for paper_id, why in zip(recap.recap, recap.why, strict=True)]
    return [(paper_id, recap.why) for paper_id in recap.recap]
