"""Following papers after their first post: the cache takes what changed, cards are edited on news,
and papers that rose past a destination's threshold are delivered there late, once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.flow.changes import new_leaders, news, rising_why
from bot.model import Delivery, Paper
from bot.ports import LivingPosts, Papers
from bot.query.routing import Router

if TYPE_CHECKING:
    from bot.flow.poller import Committed, PollReport


class Follower:
    """What a poll does with the papers it had seen before (``Poller.ingest`` hands them over)."""

    def __init__(self, papers: Papers, outbox: LivingPosts) -> None:
        self._papers = papers
        self._outbox = outbox

    async def after_commit(self, done: Committed) -> None:
        """The poller's step: follow the papers of this poll that an earlier one had seen."""
        await self.follow(done.seen_before, done.router, done.report)

    async def follow(self, reports: Sequence[Paper], router: Router, report: PollReport) -> None:
        """Papers seen before: keep the cache current, edit their cards on news, and deliver those that
        rose past a destination's threshold to the destinations still waiting for them."""
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
