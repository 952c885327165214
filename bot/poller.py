"""One poll: ask every source, merge reports of the same paper, keep the unseen ones, queue their deliveries."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.changes import new_leaders, news, rising_why
from bot.errors import SourceError
from bot.model import Channel, Delivery, Paper
from bot.ports import Coordination, Outbox, Papers, Source
from bot.recap import WHY as RECAP_WHY
from bot.recap import last_due
from bot.routing import Router

log = logging.getLogger(__name__)

CATCH_UP_CAP = 14  # days; beyond that a person should run `paperbot backfill`
POLL_BUDGET = 600.0  # seconds a source may take in one poll; then it counts as failed and the others go on


@dataclass
class PollReport:
    """What one poll found."""

    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    fetched: int = 0
    new: int = 0
    queued: int = 0
    updated: int = 0  # papers seen before whose report changed
    edits: int = 0  # posted cards queued for an edit (meaningful changes only)
    rising: int = 0  # late deliveries of papers that rose past a channel's threshold
    recaps: int = 0  # weekly recaps queued
    skipped: bool = False  # another process held the poll lock

    def summary(self) -> dict[str, object]:
        """The fields of the one log line a poll writes."""
        return {
            "sources_ok": ",".join(self.answered) or "none",
            "sources_failed": ",".join(self.failed) or "none",
            "fetched": self.fetched,
            "new": self.new,
            **({"updated": self.updated, "edits": self.edits, "rising": self.rising} if self.updated else {}),
            **({"recaps": self.recaps} if self.recaps else {}),
        }


def days_since(moment: str, now: datetime) -> int:
    """Whole days, rounded up, from an ISO timestamp to ``now``."""
    return max(0, math.ceil((now - datetime.fromisoformat(moment)).total_seconds() / 86400))


def merge(batches: Sequence[Sequence[Paper]]) -> list[Paper]:
    """One paper per id, in first-seen order; several reports of it (two sources, two days) are merged."""
    merged: dict[str, Paper] = {}
    for batch in batches:
        for paper in batch:
            merged[paper.id] = merged[paper.id].merged(paper) if paper.id in merged else paper
    return list(merged.values())


class Poller:
    """Finds new papers. Papers are marked seen only together with their queued deliveries."""

    def __init__(
        self,
        sources: Sequence[Source],
        outbox: Outbox,
        router: Callable[[], Awaitable[Router]],
        *,
        coordination: Coordination,
        owner: str = "poller",
        lock_ttl: float = 600,
        budget: float = POLL_BUDGET,
        first_run_limit: int = 0,
        papers: Papers | None = None,
        follow: bool = True,
        recaps: Sequence[Channel] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._papers = papers  # the cache: what following papers and weekly recaps read
        self._follow_papers = follow and papers is not None  # papers seen before are followed: changes edit cards
        self._recaps = [c for c in recaps if c.top_digest]
        self._recapped: set[str] = set()  # recaps this process found queued already (no need to ask again)
        self._clock = clock
        self._budget = budget
        self._first_run_limit = first_run_limit
        self.sources = sources
        self._outbox = outbox
        self._coordination = coordination
        self._router = router  # asked every poll: subscriptions change from chat
        self._owner = owner
        self._lock_ttl = lock_ttl

    async def poll(self) -> PollReport:
        """One poll, by one process at a time: replicas that find the lock taken skip this round."""
        if not await self._coordination.lock("poll", self._owner, self._lock_ttl):
            log.info("another process is polling; skipped", extra={"kv": {"owner": self._owner}})
            return PollReport(skipped=True)
        renewing = asyncio.create_task(self._keep_lock())
        try:
            return await self._poll()
        finally:
            renewing.cancel()
            await self._coordination.unlock("poll", self._owner)

    async def _catch_up_days(self) -> int:
        """After downtime, how far back the sources must reach: days since the oldest last success."""
        health = await self._coordination.health()
        successes = [h["ok_at"] for h in health.values() if h.get("ok_at")]
        if not successes:
            return 0  # first run: the configured window
        days = min(CATCH_UP_CAP, max(days_since(moment, datetime.now(UTC)) for moment in successes))
        if days > 1:
            log.info("catching up after downtime", extra={"kv": {"days": days}})
        return days

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(self._lock_ttl / 3)
            if not await self._coordination.renew("poll", self._owner, self._lock_ttl):
                log.warning("lost the poll lock while polling", extra={"kv": {"owner": self._owner}})
                return

    async def _poll(self) -> PollReport:
        """Fetch all sources concurrently; a failed source contributes nothing and marks nothing seen."""
        report = PollReport()
        catch_up = await self._catch_up_days()
        results = await asyncio.gather(*(self._fetch(source, catch_up) for source in self.sources), return_exceptions=True)
        batches = []
        for source, result in zip(self.sources, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                # Each source fails alone, whatever it raised: the others' papers still go out.
                problem = str(result) if isinstance(result, SourceError) else f"unexpected {type(result).__name__}: {result}"
                report.failed[source.name] = problem
                log.warning("source failed", extra={"kv": {"source": source.name, "problem": problem[:500]}})
                await self._coordination.record_health(source.name, False, problem[:500])
            else:
                report.answered.append(source.name)
                batches.append(result)
                await self._coordination.record_health(source.name, True, "", len(result))
                if not result and datetime.now(UTC).weekday() < 5:
                    # Both sources publish on weekdays: an empty answer is more likely a stale or throttled
                    # source than a quiet day, and nothing else would tell anyone.
                    log.warning("source-health: no papers on a weekday; check the source", extra={"kv": {"source": source.name}})
        await self.ingest(merge(batches), report, first_poll=True)
        await self._queue_recaps(report)
        return report

    async def _queue_recaps(self, report: PollReport) -> None:
        """Queue each channel's weekly recap that fell due (once per due moment, even after downtime)."""
        if self._papers is None:
            return
        now = self._clock()
        weeks: dict[datetime, list[Paper]] = {}
        for channel in self._recaps:
            due = last_due(channel.top_digest, channel.timezone, now)
            occasion = f"{channel.destination.key}@{due.isoformat()}"
            if occasion in self._recapped:
                continue
            if due not in weeks:
                weeks[due] = await self._week(due)
            best = weeks[due][: channel.digest_size]
            self._recapped.add(occasion)
            if not best:
                continue
            recap = Delivery(channel.destination, best[0].id, (RECAP_WHY,), recap=tuple(p.id for p in best))
            if await self._outbox.queue_recap(recap, due.isoformat(), 8 * 86400):
                report.recaps += 1
                log.info("weekly recap queued", extra={"kv": {"destination": channel.destination.key, "papers": len(best)}})

    async def _week(self, due: datetime) -> list[Paper]:
        """The papers of the 7 days before ``due`` (by Hugging Face day, else date), most upvoted first."""
        assert self._papers is not None
        since = due - timedelta(days=7)
        ids, _ = await self._papers.recent(int(since.timestamp() * 1000))
        papers = [p for p in await self._papers.papers(ids) if since <= (p.featured_on or p.published) < due]
        return sorted(papers, key=lambda p: (p.upvotes or 0, p.published, p.id), reverse=True)

    def _first_run(self, papers: Sequence[Paper], deliveries: list[Delivery]) -> list[Delivery]:
        """At most ``first_run_limit`` deliveries per destination, the newest then the most upvoted; the
        other papers are still marked seen, so a new or wiped store never floods a channel."""
        by_id = {p.id: p for p in papers}

        def best(delivery: Delivery) -> tuple[datetime, int]:
            paper = by_id[delivery.paper_id]
            return paper.published, paper.upvotes or 0

        kept: list[Delivery] = []
        for destination in dict.fromkeys(d.destination for d in deliveries):
            mine = [d for d in deliveries if d.destination == destination]
            kept += sorted(mine, key=best, reverse=True)[: self._first_run_limit]
        if len(kept) < len(deliveries):
            kv = {"limit": self._first_run_limit, "queued": len(kept), "marked_seen": len(deliveries) - len(kept)}
            log.warning("first run, or the store lost its data: posting only the newest papers per channel", extra={"kv": kv})
        order = {id(d): n for n, d in enumerate(deliveries)}
        return sorted(kept, key=lambda d: order[id(d)])

    async def _fetch(self, source: Source, catch_up: int) -> list[Paper]:
        try:
            async with asyncio.timeout(self._budget):
                return await source.fetch(catch_up)
        except TimeoutError:
            raise SourceError(f"took longer than the poll budget ({self._budget:.0f}s); skipped this poll") from None

    async def ingest(self, papers: Sequence[Paper], report: PollReport, first_poll: bool = False) -> None:
        """Keep the unseen papers and queue their deliveries (also used by backfill). Every paper is cut
        to the model's limits here, whichever source it came from. On a store's first poll (a new
        store, or one that lost its data) each destination gets at most ``first_run_limit`` papers."""
        papers = [paper.bounded() for paper in papers]
        report.fetched += len(papers)
        unseen_ids = set(await self._outbox.unseen([p.id for p in papers]))
        fresh = [p for p in papers if p.id in unseen_ids]
        router = await self._router()
        deliveries = router.route(fresh) if fresh else []
        if first_poll and self._first_run_limit and await self._outbox.first_run():
            deliveries = self._first_run(fresh, deliveries)
        committed = set(await self._outbox.commit(fresh, deliveries))
        if first_poll:
            await self._outbox.begin()
        report.new += len(committed)
        report.queued += sum(1 for d in deliveries if d.paper_id in committed)
        if self._follow_papers:
            await self._follow([p for p in papers if p.id not in unseen_ids], router, report)

    async def _follow(self, reports: Sequence[Paper], router: Router, report: PollReport) -> None:
        """Papers seen before: keep the cache current, edit their cards on news, and deliver those that
        rose past a destination's threshold to the destinations still waiting for them."""
        assert self._papers is not None
        cached = {p.id: p for p in await self._papers.papers([p.id for p in reports])} if reports else {}
        changed: list[tuple[Paper, Paper]] = []
        for fresh in reports:  # reports are bounded already, so what they bring in is too
            before = cached.get(fresh.id)
            if before is not None and (after := before.updated_by(fresh)) != before:
                changed.append((before, after))
        await self._outbox.update([after for _, after in changed])
        report.updated += len(changed)
        newsworthy = {after.id for before, after in changed if news(before, after)}
        if changed:  # the reports as they were and as they are: a new #1 of its day is news too
            known = [cached[p.id] for p in reports if p.id in cached]
            now = {after.id: after for _, after in changed}
            newsworthy |= new_leaders(known, [now.get(p.id, p) for p in known])
        edits = await self._outbox.posts_of(router.destinations, sorted(newsworthy)) if newsworthy else []
        report.edits += await self._outbox.queue_edits(edits)  # and the edits parked for spacing whose time came
        # Late deliveries: where the paper is routed now but was not as it was (a threshold it now passes).
        thresholds = router.upvote_thresholds
        risen = [
            (before, after)
            for before, after in changed
            if any((before.upvotes or 0) < t <= (after.upvotes or 0) for t in thresholds)
        ]
        then = {(d.destination, d.paper_id) for d in router.route([before for before, _ in risen])} if risen else set()
        late = [d for d in router.route([after for _, after in risen]) if (d.destination, d.paper_id) not in then]
        if late:
            first = await self._outbox.first_seen([d.paper_id for d in late])
            upvotes = {after.id: after.upvotes or 0 for _, after in risen}
            why = {pid: rising_why(up, upvotes[pid]) for pid, up in first.items()}
            late = [Delivery(d.destination, d.paper_id, (why[d.paper_id], *d.why)) for d in late if d.paper_id in why]
            report.rising += await self._outbox.queue_late(late)
