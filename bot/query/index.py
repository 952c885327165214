"""The query index: an in-memory mirror of the store's recent papers, refreshed incrementally.

``/papers <query>`` must answer within Slack's 3 seconds from what paperbot already has, never
from a slow source. The index keeps each cached paper's words as numbers and postings from each
index key to paper numbers (``bot.query.table``), evaluates a query on sets of paper numbers
(``bot.query.planner``), and reads only the page of results from Redis.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.errors import CommandError, PaperbotError
from bot.model import Paper
from bot.ports import Papers
from bot.query.matcher import Doc, Query, Words, rank
from bot.query.planner import DIRECT, PER_MATCH, VERIFY_ALL, Found, Plan, Views, estimate
from bot.query.table import Capture, DocTable

# Cost units of ~40 ns (bot.query.planner; measured with bench/hostile_queries.py on this project's 2-core machines).
INLINE = 1_000_000  # up to ~40 ms: answered on the event loop, no thread hand-off
# Up to ~150 ms: answered in the heavy-search lane. Above it, refused: a thread that holds the GIL in
# long set operations starves the event loop (measured: ordinary p99 3 s beside five 8M-unit queries,
# 0.2 s beside five 3M-unit ones; bench/README.md).
COST_BUDGET = 3_000_000
SNAPSHOT_EVERY = 2_000  # papers added before the snapshot is written again (about a day's worth)

log = logging.getLogger(__name__)


T = TypeVar("T")


class PaperIndex:
    """Recent papers for queries. ``refresh()`` pulls what the store committed since last time.

    A new process starts from the snapshot the store keeps (``DocTable.dump``) and then applies the
    papers committed since it was taken; it writes a fresh snapshot after a full build and whenever
    ``SNAPSHOT_EVERY`` papers were added since the last one.
    """

    def __init__(self, papers: Papers, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._papers = papers
        self._ttl = ttl_seconds
        self._clock = clock
        self._table = DocTable()
        self._expiry_from = 0  # the expiry scan's next paper number
        self._late: list[tuple[float, int]] = []  # (added, number) of papers added out of time order
        self._newest = float("-inf")  # the latest added time so far
        self._cursor = 0
        self._started = False
        self._unsaved = 0  # papers added since the last snapshot
        self._refreshing = asyncio.Lock()
        self._saving: asyncio.Task[None] | None = None
        self.budget = COST_BUDGET
        self.verify_all = VERIFY_ALL  # a phrase with more candidates is checked lazily, its count estimated
        self.direct = DIRECT  # a class of matches this small is scored whole, a bigger one walked
        self._views = Views(self._table)
        self._lane: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return self._table.live

    async def refresh(self) -> int:
        """Add papers committed since the last refresh and drop expired ones; returns how many were added."""
        async with self._refreshing:  # one at a time: a refresh awaits the store between its steps
            if not self._started:
                self._started = True
                await self._restore()
            ids, cursor = await self._papers.recent(self._cursor)  # new papers, and updated ones again
            added = 0
            for start in range(0, len(ids), 1000):  # chunks: never all 60,000 papers in memory at once
                for paper in await self._papers.papers(ids[start : start + 1000]):
                    earlier = self._table.numbers.get(paper.id)  # an update keeps its paper's place in time
                    self.add(paper, None if earlier is None else self._table.added[earlier])
                    added += 1
            self._cursor = cursor
            await self._expire()
            if self._views.table is not self._table:  # restored or compacted: what was derived is stale
                self._views = Views(self._table)
            self._views.warm()
            self._unsaved += added
            if self._unsaved >= SNAPSHOT_EVERY and (self._saving is None or self._saving.done()):
                # In the background: a command waiting on this refresh should not wait for a snapshot.
                self._unsaved = 0
                self._saving = asyncio.create_task(self._save(self._table.capture(), self._cursor))
            return added

    async def _restore(self) -> None:
        blob = await self._papers.index_snapshot()
        if blob is None:
            self._unsaved = SNAPSHOT_EVERY  # nothing to start from: save what this process builds
            return
        # Decompressing and copying arrays release the GIL or are C loops: off the event loop.
        restored = await asyncio.to_thread(DocTable.load, blob)
        if restored is None:  # another format, or damaged: build from the papers and replace it
            log.info("index snapshot unusable; rebuilding it from the cached papers")
            self._unsaved = SNAPSHOT_EVERY
            return
        self._table, self._cursor = restored
        self._expiry_order()
        log.info("index loaded from snapshot", extra={"kv": {"papers": self._table.live}})

    async def _save(self, capture: Capture, cursor: int) -> None:
        try:
            blob = await asyncio.to_thread(DocTable.dump, capture, cursor)
            await self._papers.keep_index_snapshot(blob)
        except PaperbotError as exc:  # a snapshot is an optimisation: the index itself is fine
            self._unsaved = SNAPSHOT_EVERY  # try again after the next refresh
            log.warning("could not save the index snapshot", extra={"kv": {"problem": str(exc)}})

    async def saved(self) -> None:
        """Wait for a snapshot being written, if any (tests, and a clean stop)."""
        if self._saving is not None:
            await asyncio.gather(self._saving, return_exceptions=True)

    def add(self, paper: Paper, added: float | None = None) -> None:
        """Index one paper (replacing an earlier copy); ``added`` keeps an updated paper's first time."""
        when = self._clock() if added is None else added
        number = self._table.append(Doc.of(paper), when)
        if when < self._newest:  # out of time order (an update): expired from a heap, not by the scan
            heapq.heappush(self._late, (when, number))
        self._newest = max(self._newest, when)

    def _expiry_order(self) -> None:
        """For a table just loaded or compacted: where the expiry scan starts, and its late entries."""
        self._expiry_from, self._late, self._newest = 0, [], float("-inf")
        for number, when in enumerate(self._table.added):
            if when < self._newest:
                self._late.append((when, number))
            self._newest = max(self._newest, when)
        heapq.heapify(self._late)

    async def _expire(self) -> None:
        table = self._table
        cutoff = self._clock() - self._ttl
        # Papers are added in time order, but for updates (in ``_late``): scan on from where the last
        # refresh stopped, then take the late ones whose time came.
        number, added = self._expiry_from, table.added
        while number < len(added) and added[number] < cutoff:
            table.forget(number)
            number += 1
        self._expiry_from = number
        while self._late and self._late[0][0] < cutoff:
            table.forget(heapq.heappop(self._late)[1])
        # Postings keep dead numbers until they are a quarter of all; then rebuild compactly, off the
        # event loop (a new table: searches running on the old one finish undisturbed).
        if table.dead and table.dead * 4 >= len(table):
            self._table = await asyncio.to_thread(table.compacted)
            self._expiry_order()

    def search(self, query: Query, limit: int, offset: int = 0, now: datetime | None = None) -> Found:
        """Ids of the best matches, ``offset`` to ``offset + limit``, and how many papers match.

        Ranked by quality (title 3, keywords 2, abstract 1), then recency and upvotes (``topics.rank``);
        see ``bot.query.planner`` for how the page is found without ranking every match.
        """
        plan = self._plan(query, now)
        numbers, total, exact = plan.page(query.root, offset + limit)
        page = [plan.table.ids[n] for n in numbers[offset:]]
        # An estimate never says fewer than the page shows.
        return Found(page, total if exact else max(total, offset + len(page)), exact)

    @property
    def version(self) -> tuple[int, int]:
        """Changes whenever a paper is added or forgotten (or the table is rebuilt)."""
        return id(self._table), self._table.version

    def live_ids(self) -> list[str]:
        """The ids of every indexed paper."""
        return list(self._table.numbers)

    def added_between(self, start: float, end: float) -> list[str]:
        """The ids of indexed papers the index took in ``[start, end)`` (timestamps; when first seen)."""
        added = self._table.added
        return [paper_id for paper_id, n in self._table.numbers.items() if start <= added[n] < end]

    def among(self, query: Query, paper_ids: Iterable[str], now: datetime | None = None) -> list[str]:
        """Those of ``paper_ids`` (indexed ones) that match ``query``, best first (``topics.rank``): for a
        small set, such as a day's papers, testing each is cheaper than planning over the whole index."""
        table, moment = self._table, now or datetime.now(UTC)
        scored = []
        for paper_id in paper_ids:
            if (number := table.numbers.get(paper_id)) is not None:
                doc = table.doc(number)
                if (quality := query.quality(doc)) > 0:
                    scored.append((-rank(quality, doc, moment), paper_id))
        return [paper_id for _, paper_id in sorted(scored)]

    def top(self, since: float, limit: int, offset: int = 0) -> Found:
        """The most upvoted papers published since ``since`` (a timestamp), ``offset`` to ``offset + limit``;
        ties newest first."""
        table = self._table
        published, upvotes, ids = table.published, table.upvotes, table.ids
        recent = [n for n in table.numbers.values() if published[n] >= since]
        best = heapq.nlargest(offset + limit, recent, key=lambda n: (upvotes[n], published[n], ids[n]))
        return Found([ids[n] for n in best[offset:]], len(recent))

    def count(self, query: Query) -> Found:
        """How many indexed papers match ``query`` (``ids`` empty)."""
        return self.search(query, 0)

    def cost(self, query: Query) -> int:
        """What evaluating ``query`` will cost, estimated before running it from posting sizes (see
        ``bot.query.planner``: building sets, checking phrases and names, scoring matches)."""
        work, matches = estimate(query.root, self._table.postings, self._table.live)
        cost = work + PER_MATCH * min(matches, DIRECT)
        root = query.root
        if isinstance(root, Words) and len(root.words) > 1 and matches > self.verify_all:
            # Checked as the walk reaches its candidates: few, when the page fills at once; all of them,
            # when almost none match. Never on the event loop, then.
            cost = max(cost, INLINE + 1)
        return cost

    async def find(self, query: Query, limit: int, offset: int = 0) -> Found:
        """``search``, scheduled by cost so that no query can stall the others: cheap ones run on the
        event loop at once; costly ones queue, one at a time, in a lane of their own (a worker thread);
        a query over the budget is refused with a ``CommandError`` before any work."""
        if self.cost(query) <= INLINE:
            return self.search(query, limit, offset)
        return await self._heavy(self.search, query, limit, offset)

    async def tally(self, query: Query) -> Found:
        """``count``, scheduled like ``find``."""
        if self.cost(query) <= INLINE:
            return self.count(query)
        return await self._heavy(self.count, query)

    async def _heavy(self, work: Callable[..., T], *args: Any) -> T:
        if self._lane is None:
            self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paperbot-heavy-search")
        return await asyncio.get_running_loop().run_in_executor(self._lane, functools.partial(work, *args))

    def close(self) -> None:
        """Stop the heavy-search lane (queued searches are dropped; a running one finishes)."""
        if self._lane is not None:
            self._lane.shutdown(wait=False, cancel_futures=True)

    def _plan(self, query: Query, now: datetime | None) -> Plan:
        cost = self.cost(query)
        if cost > self.budget:
            raise CommandError(
                f"“{query.text}” is too broad to search ({cost:,} units of work over {self._table.live:,} papers); "
                "use a rarer word, fewer phrases, cat: or upvotes>="
            )
        if self._views.table is not self._table:  # a table built by add() alone (tests, benches)
            self._views = Views(self._table)
        return Plan(self._views, (now or datetime.now(UTC)).timestamp(), self.verify_all, self.direct)
