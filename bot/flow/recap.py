"""The weekly recap ("top of the week"): when a channel's recap falls due, in the channel's time zone.

A channel asks for it with ``top_digest = "mon 09:00"`` and ``timezone = "Europe/Berlin"``. The
poller queues a recap for the latest moment due, once (a guard in the store names that moment), so a
recap that fell due while paperbot was down goes out when it is back, and never twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.model import Channel, Delivery, Paper
from bot.ports import Outbox, Papers

if TYPE_CHECKING:
    from bot.flow.poller import Committed

log = logging.getLogger(__name__)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TITLE = "Top papers of the week"
WHY = "top of the week"


def parse_when(text: str) -> tuple[int, time]:
    """``"mon 09:00"`` → (0, 09:00): a weekday (its name or its first three letters or more, any case)
    and a time of day (24-hour)."""
    day, _, clock = text.strip().lower().partition(" ")
    weekday = next((n for n, name in enumerate(DAYS) if len(day) >= 3 and name.startswith(day)), None)
    try:
        hour, minute = (int(part) for part in clock.strip().split(":"))
        if weekday is None:
            raise ValueError
        return weekday, time(hour, minute)
    except ValueError:
        raise ValueError(f"expected a weekday and a time like 'mon 09:00', got {text!r}") from None


def last_due(when: str, zone: str, now: datetime) -> datetime:
    """The latest moment at or before ``now`` (aware) when the recap ``when`` fell due in ``zone``."""
    weekday, at = parse_when(when)
    local = now.astimezone(ZoneInfo(zone))
    day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    due = datetime.combine(day, at, tzinfo=ZoneInfo(zone))
    if due > local:
        due = datetime.combine(day - timedelta(days=7), at, tzinfo=ZoneInfo(zone))
    return due


class Recaps:
    """The weekly recaps of some channels: which fell due, and queueing each once."""

    def __init__(self, papers: Papers, outbox: Outbox, channels: Sequence[Channel], clock: Callable[[], datetime]) -> None:
        self._papers = papers
        self._outbox = outbox
        self._channels = [c for c in channels if c.top_digest]
        self._clock = clock
        self._recapped: set[str] = set()  # recaps this process found queued already (no need to ask again)

    async def after_commit(self, done: Committed) -> None:
        """The poller's step: on a scheduled poll, queue the recaps that fell due."""
        if done.scheduled:
            done.report.recaps += await self.queue()

    async def queue(self) -> int:
        """Queue each channel's weekly recap that fell due (once per due moment, even after downtime);
        returns how many were queued."""
        queued = 0
        now = self._clock()
        weeks: dict[datetime, list[Paper]] = {}
        for channel in self._channels:
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
            recap = Delivery(channel.destination, best[0].id, (WHY,), recap=tuple(p.id for p in best))
            if await self._outbox.queue_recap(recap, due.isoformat(), 8 * 86400):
                queued += 1
                log.info("weekly recap queued", extra={"kv": {"destination": channel.destination.key, "papers": len(best)}})
        return queued

    async def _week(self, due: datetime) -> list[Paper]:
        """The papers of the 7 days before ``due`` (by Hugging Face day, else date), most upvoted first."""
        since = due - timedelta(days=7)
        ids, _ = await self._papers.recent(int(since.timestamp() * 1000))
        papers = [p for p in await self._papers.papers(ids) if since <= (p.featured_on or p.published) < due]
        return sorted(papers, key=lambda p: (p.upvotes or 0, p.published, p.id), reverse=True)
