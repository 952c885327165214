"""Readers' daily direct-message digests: what they follow, from the papers first seen that day.

Each reader picks an hour (``/papers follow … at 08:00``, default ``chat.dm_at``) in their own
time zone (Slack says it; elsewhere UTC). When it falls due, the papers the index took in the 24
hours before are matched against each follow (a query, or ``saved``: the reader's own model) and
queued as one digest through the outbox, once per reader and day (a guard in the store names the
day), so a digest due while paperbot was down goes out when it is back, and never twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.chat.feed import Feed
from bot.errors import CommandError
from bot.model import Delivery, Destination, Following, UserRef
from bot.ports import Follows, Outbox
from bot.query.index import PaperIndex
from bot.query.parser import parse_query

log = logging.getLogger(__name__)

SAVED = "saved"  # the follow that means "my own model"
KEEP_GUARD = 3 * 86400  # how long the "queued for that day" guard is kept


def parse_at(text: str) -> time:
    """``"08:00"`` or ``"8"`` → 08:00 (24-hour)."""
    hour, _, minute = text.strip().partition(":")
    try:
        return time(int(hour), int(minute or 0))
    except ValueError:
        raise CommandError(f"expected a time like 08:00, not {text!r}") from None


def known_zone(name: str) -> str:
    """``name`` when it is an IANA time zone this machine knows, else empty."""
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return ""
    return name if name else ""


def due_at(following: Following, now: datetime) -> datetime:
    """The latest moment at or before ``now`` (aware) when ``following``'s digest fell due."""
    zone = ZoneInfo(following.timezone)
    local = now.astimezone(zone)
    due = datetime.combine(local.date(), parse_at(following.at), tzinfo=zone)
    return due if due <= local else due - timedelta(days=1)


class DirectDigests:
    """Queues each reader's digest when it falls due."""

    def __init__(
        self, follows: Follows, index: PaperIndex, feed: Feed, outbox: Outbox, clock: Callable[[], datetime], size: int = 10
    ) -> None:
        self._follows = follows
        self._index = index
        self._feed = feed
        self._outbox = outbox
        self._clock = clock
        self._size = size
        self._done: dict[str, str] = {}  # reader → the last day this process settled (queued, or nothing to send)

    async def queue(self) -> int:
        """Queue every digest that fell due and was not queued yet; returns how many were queued."""
        queued = 0
        now = self._clock()
        days: dict[datetime, set[str]] = {}  # readers due at the same moment share their day's papers
        for following in await self._follows.everyone():
            due = due_at(following, now)
            day, reader = due.date().isoformat(), following.user.key
            if self._done.get(reader) == day:
                continue
            if due not in days:
                await self._feed.sync()  # the index and the vectors, current (cheap when nothing changed)
                days[due] = set(self._index.added_between((due - timedelta(days=1)).timestamp(), due.timestamp()))
            digest = await self._digest(following, due, days[due])
            if digest is not None and await self._outbox.queue_recap(digest, day, KEEP_GUARD):
                queued += 1
                log.info("digest queued", extra={"kv": {"user": reader, "papers": len(digest.recap)}})
            self._done[reader] = day  # only once settled: a store error leaves it for the next poll
        return queued

    async def undeliverable(self, inbox: Destination, problem: str) -> None:
        """A digest could not reach ``inbox`` (a person's direct messages): tell them why, once."""
        user = UserRef(inbox.platform, inbox.person)
        await self._follows.notice(
            user,
            f"Your daily digest could not be sent to you by direct message ({problem}). "
            "Allow direct messages from paperbot (Discord: this server's privacy settings; Slack: open its "
            "Messages tab), or /papers unfollow to stop it.",
        )

    async def _digest(self, following: Following, due: datetime, day: set[str]) -> Delivery | None:
        """The reader's digest for the day ending at ``due``: the best of ``day`` (the papers first seen
        in those 24 hours), taken from each follow in turn (so one broad follow cannot crowd out the
        others), each paper once; None when there is none."""
        lists = [await self._matches(following, query, day) for query in following.queries]
        chosen: dict[str, str] = {}
        for rank in range(self._size):
            for found in lists:
                if rank < len(found) and len(chosen) < self._size:
                    chosen.setdefault(*found[rank])
        if not chosen:
            return None
        ids = tuple(chosen)
        title = f"Your papers for {due:%A %d %B}"
        return Delivery(following.inbox, ids[0], tuple(chosen.values()), recap=ids, title=title)

    async def _matches(self, following: Following, query: str, day: set[str]) -> list[tuple[str, str]]:
        if not day:
            return []
        if query == SAVED:
            try:
                picks = await self._feed.for_you(following.user, self._size, among=day)
            except CommandError:  # no saved papers (any more): nothing to learn from
                return []
            return [(p.paper_id, f"like your saved: {p.because}") for p in picks]
        try:
            parsed = await self._feed.resolve(parse_query(query))
        except CommandError as exc:  # no longer parses (the grammar changed), or like: a paper long gone
            log.warning("a follow was skipped", extra={"kv": {"user": following.user.key, "problem": str(exc)}})
            return []
        return [(pid, f"follows: {parsed.text}") for pid in self._index.among(parsed, day)[: self._size]]
