"""One poll: ask every source, merge reports of the same paper, keep the unseen ones, queue their deliveries."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import SourceError
from bot.model import Delivery, Paper
from bot.ports import Coordination, Outbox, Source
from bot.query.routing import Router

log = logging.getLogger(__name__)

CATCH_UP_CAP = 14  # days; beyond that a person should run `paperbot backfill`
MERGE_WINDOW = 30.0  # seconds: answers within it are merged into one commit; a slower source commits on its own
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
    digests: int = 0  # readers' direct-message digests queued
    skipped: bool = False  # another process held the poll lock
    fetched_by: Counter[str] = field(default_factory=Counter)  # papers each source returned
    new_by: Counter[str] = field(default_factory=Counter)  # first-seen papers each source reported

    def summary(self) -> dict[str, object]:
        """The fields of the one log line a poll writes."""
        return {
            "sources_ok": ",".join(self.answered) or "none",
            "sources_failed": ",".join(self.failed) or "none",
            "fetched": self.fetched,
            "new": self.new,
            **({"updated": self.updated, "edits": self.edits, "rising": self.rising} if self.updated else {}),
            **({"recaps": self.recaps} if self.recaps else {}),
            **({"digests": self.digests} if self.digests else {}),
        }


def days_since(moment: str, now: datetime) -> int:
    """Whole days, rounded up, from an ISO timestamp to ``now``."""
    return max(0, math.ceil((now - datetime.fromisoformat(moment)).total_seconds() / 86400))


def merge(batches: Sequence[Sequence[Paper]]) -> list[Paper]:
    """One paper per id, in first-seen order; several reports of it (two sources, two days) are merged."""
    reports: dict[str, list[Paper]] = {}
    for batch in batches:
        for paper in batch:
            reports.setdefault(paper.id, []).append(paper)
    return [Paper.merge(each) for each in reports.values()]


@dataclass(frozen=True, slots=True)
class PollOptions:
    """How a poller polls."""

    owner: str = "poller"  # who holds the poll lock (the process's consumer name)
    lock_ttl: float = 600
    budget: float = POLL_BUDGET
    first_run_limit: int = 0  # papers per destination on a store's first poll (or a source's first); 0: no limit
    merge_window: float = MERGE_WINDOW  # seconds the sources' answers are awaited together before committing
    watch: bool = False  # record routing for late deliveries (on when posted papers are followed)


@dataclass(frozen=True, slots=True)
class Committed:
    """What one commit did, handed to each after-commit step."""

    papers: Sequence[Paper]  # every report of this poll (or backfill), bounded
    new: Sequence[Paper]  # the papers this commit saw first
    seen_before: Sequence[Paper]  # the papers an earlier commit saw
    router: Router
    report: PollReport
    scheduled: bool  # a scheduled poll, not a backfill: the steps that fall due with time run then


AfterCommit = Callable[[Committed], Awaitable[None]]


def with_new(use: Callable[[Sequence[Paper]], Awaitable[None]]) -> AfterCommit:
    """A step that hands the papers a commit saw first to ``use`` (the feed keeps their vectors)."""

    async def step(done: Committed) -> None:
        if done.new:
            await use(done.new)

    return step


def digests_due(queue: Callable[[], Awaitable[int]]) -> AfterCommit:
    """A step that, on a scheduled poll, queues the readers' digests that fell due (``queue`` counts them)."""

    async def step(done: Committed) -> None:
        if done.scheduled:
            done.report.digests += await queue()

    return step


class Poller:
    """Finds new papers. Papers are marked seen only together with their queued deliveries; then each
    after-commit step (following posted papers, vectors, recaps, digests: the root picks them) runs in turn."""

    def __init__(
        self,
        sources: Sequence[Source],
        outbox: Outbox,
        router: Callable[[], Awaitable[Router]],
        *,
        coordination: Coordination,
        options: PollOptions | None = None,
        likes: Callable[[Router, Sequence[Paper]], Awaitable[Router]] | None = None,
        after_commit: Sequence[AfterCommit] = (),
    ) -> None:
        options = options or PollOptions()
        self._likes = likes  # decides like: subscriptions for new papers before they are routed (bot.chat.feed)
        self._after_commit = after_commit
        self._watch = options.watch
        self._budget = options.budget
        self._first_run_limit = options.first_run_limit
        self._merge_window = options.merge_window
        self.sources = sources
        self._outbox = outbox
        self._coordination = coordination
        self._router = router  # asked every poll: subscriptions change from chat
        self._owner = options.owner
        self._lock_ttl = options.lock_ttl

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

    def _catch_up_days(self, health: dict[str, dict[str, Any]]) -> int:
        """After downtime, how far back the sources must reach: days since the oldest last success."""
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
        """Fetch all sources concurrently. What answers within ``merge_window`` is merged and committed
        together; a source still answering then is committed on its own when it answers (or fails alone
        at its budget), so a slow source never holds the others' papers back. A failed source contributes
        nothing and marks nothing seen."""
        report = PollReport()
        health = await self._coordination.health()
        catch_up = self._catch_up_days(health)
        # A new (or wiped) store, or a source that never answered before, brings a backlog: the first-run
        # limit applies to it, decided once for the whole poll, whatever earlier polls did.
        backlog: frozenset[str] = frozenset()
        if self._first_run_limit:
            fresh = await self._outbox.first_run()
            backlog = frozenset(s.name for s in self.sources if fresh or not health.get(s.name, {}).get("ok_at"))
        fetching = {asyncio.create_task(self._fetch(source, catch_up)): source for source in self.sources}
        try:
            done, pending = await asyncio.wait(fetching, timeout=self._merge_window) if fetching else (set(), set())
            if pending:
                slow = ",".join(sorted(fetching[t].name for t in pending))
                log.warning("slow source: the others' papers committed first", extra={"kv": {"sources": slow}})
            await self._commit_answers([(fetching[t], t) for t in done], report, backlog)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                await self._commit_answers([(fetching[t], t) for t in done], report, backlog)
        finally:
            for task in fetching:
                task.cancel()  # only still running when this poll was cancelled
        if report.answered:
            await self._outbox.begin()  # the store has polled: a failed first poll leaves it a first run
        return report

    async def _commit_answers(
        self, answers: Sequence[tuple[Source, asyncio.Task[list[Paper]]]], report: PollReport, backlog: frozenset[str]
    ) -> None:
        """Record each source's health and commit what those that answered found, merged."""
        batches: list[list[Paper]] = []
        backlogged: set[str] = set()  # ids a first-run source reported
        seasoned: set[str] = set()  # ids a source that answered before reported (no backlog, whoever else has them)
        for source, task in answers:
            error = task.exception()
            if error is not None:
                # Each source fails alone, whatever it raised: the others' papers still go out.
                problem = str(error) if isinstance(error, SourceError) else f"unexpected {type(error).__name__}: {error}"
                report.failed[source.name] = problem
                log.warning("source failed", extra={"kv": {"source": source.name, "problem": problem[:500]}})
                await self._coordination.record_health(source.name, False, problem[:500])
                continue
            result = task.result()
            (backlogged if source.name in backlog else seasoned).update(p.id for p in result)
            report.answered.append(source.name)
            report.fetched_by[source.name] += len(result)
            batches.append(result)
            await self._coordination.record_health(source.name, True, "", len(result))
            if not result and datetime.now(UTC).weekday() < 5:
                # Both sources publish on weekdays: an empty answer is more likely a stale or throttled
                # source than a quiet day, and nothing else would tell anyone.
                log.warning("source-health: no papers on a weekday; check the source", extra={"kv": {"source": source.name}})
        if batches or not report.answered:
            await self.ingest(merge(batches), report, first_poll=True, held=frozenset(backlogged - seasoned))

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

    async def ingest(
        self, papers: Sequence[Paper], report: PollReport, first_poll: bool = False, held: frozenset[str] = frozenset()
    ) -> None:
        """Keep the unseen papers and queue their deliveries, then run the after-commit steps (also used
        by backfill, with ``first_poll`` False: the steps then skip what falls due with time). Every paper is cut
        to the model's limits here, whichever source it came from. Of the papers in ``held`` (a backlog: a
        new or wiped store, or a source's first answer) each destination gets at most ``first_run_limit``;
        the others are marked seen all the same."""
        papers = [paper.bounded() for paper in papers]
        report.fetched += len(papers)
        unseen_ids = set(await self._outbox.unseen([p.id for p in papers]))
        fresh = [p for p in papers if p.id in unseen_ids]
        router = await self._router()
        if self._likes is not None and fresh:
            router = await self._likes(router, fresh)
        deliveries = router.route(fresh) if fresh else []
        limited = [d for d in deliveries if d.paper_id in held]  # a backlog: papers only first-run sources reported
        if limited:
            kept = {id(d) for d in self._first_run(fresh, limited)}
            deliveries = [d for d in deliveries if d.paper_id not in held or id(d) in kept]
        watched = router.watched if self._watch else frozenset()
        committed = set(await self._outbox.commit(fresh, deliveries, watched))
        report.new += len(committed)
        report.new_by.update(source for paper in fresh if paper.id in committed for source in paper.sources)
        report.queued += sum(1 for d in deliveries if d.paper_id in committed)
        new = [p for p in fresh if p.id in committed]
        done = Committed(papers, new, [p for p in papers if p.id not in unseen_ids], router, report, scheduled=first_poll)
        for step in self._after_commit:
            await step(done)
