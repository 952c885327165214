"""The query index: an in-memory mirror of the store's recent papers, refreshed incrementally.

``/papers <query>`` must answer within Slack's 3 seconds from what paperbot already has, never
from a slow source. The index keeps a compact ``Doc`` per cached paper and postings from each
index key to paper numbers, so a query looks only at the papers that can match it; the few
results shown are then read from Redis.
"""

from __future__ import annotations

import time
from array import array
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

from bot.model import Paper
from bot.ports import Papers
from bot.topics import Doc, Query, rank


class PaperIndex:
    """Recent papers for queries. ``refresh()`` pulls what the store committed since last time."""

    def __init__(self, papers: Papers, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._papers = papers
        self._ttl = ttl_seconds
        self._clock = clock
        self._docs: list[Doc | None] = []
        self._added: list[float] = []
        self._numbers: dict[str, int] = {}
        self._postings: dict[str, array[int]] = defaultdict(lambda: array("I"))
        self._cursor = 0
        self._dead = 0

    def __len__(self) -> int:
        return len(self._numbers)

    async def refresh(self) -> int:
        """Add papers committed since the last refresh and drop expired ones; returns how many were added."""
        ids, self._cursor = await self._papers.recent(self._cursor)
        ids = [pid for pid in ids if pid not in self._numbers]
        added = 0
        for start in range(0, len(ids), 1000):  # chunks: never all 60,000 papers in memory at once
            for paper in await self._papers.papers(ids[start : start + 1000]):
                self.add(paper)
                added += 1
        self._expire()
        return added

    def add(self, paper: Paper, added: float | None = None) -> None:
        """Index one paper (replacing an earlier copy)."""
        self._forget(paper.id)
        doc = Doc.of(paper)
        number = len(self._docs)
        self._docs.append(doc)
        self._added.append(self._clock() if added is None else added)
        self._numbers[paper.id] = number
        for key in doc.index_keys():
            self._postings[key].append(number)

    def _forget(self, paper_id: str) -> None:
        number = self._numbers.pop(paper_id, None)
        if number is not None:
            self._docs[number] = None
            self._dead += 1

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        for number, added in enumerate(self._added):
            if added >= cutoff:
                break
            doc = self._docs[number]
            if doc is not None:
                self._forget(doc.paper_id)
        # Postings keep dead numbers until they are a quarter of all; then rebuild compactly.
        if self._dead and self._dead * 4 >= len(self._docs):
            self._rebuild()

    def _rebuild(self) -> None:
        live = [(doc, added) for doc, added in zip(self._docs, self._added, strict=True) if doc is not None]
        self._docs, self._added, self._numbers, self._dead = [], [], {}, 0
        self._postings = defaultdict(lambda: array("I"))
        for doc, added in live:
            number = len(self._docs)
            self._docs.append(doc)
            self._added.append(added)
            self._numbers[doc.paper_id] = number
            for key in doc.index_keys():
                self._postings[key].append(number)

    def search(self, query: Query, limit: int, offset: int = 0, now: datetime | None = None) -> tuple[list[str], int]:
        """Ids of the best matches, ``offset`` to ``offset + limit``, and the number of matches."""
        now = now or datetime.now(UTC)
        anchors = query.anchors()
        if anchors is None:
            candidates: set[int] | range = range(len(self._docs))
        else:
            candidates = set()
            for key in anchors:
                candidates.update(self._postings.get(key, ()))
        hits = []
        for number in candidates:
            doc = self._docs[number]
            if doc is not None and (quality := query.quality(doc)):
                hits.append((rank(quality, doc, now), doc.published, doc.paper_id))
        hits.sort(reverse=True)
        return [paper_id for _, _, paper_id in hits[offset : offset + limit]], len(hits)

    def count(self, query: Query) -> int:
        """How many indexed papers match ``query``."""
        return self.search(query, 0)[1]
