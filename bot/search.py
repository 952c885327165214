"""The query index: an in-memory mirror of the store's recent papers, refreshed incrementally.

``/papers <query>`` must answer within Slack's 3 seconds from what paperbot already has, never
from a slow source. The index keeps a compact ``Doc`` per cached paper and postings from each
index key to paper numbers, so a query looks only at the papers that can match it; the few
results shown are then read from Redis.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import time
from array import array
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.errors import CommandError
from bot.model import Paper
from bot.ports import Papers
from bot.topics import AllOf, AnyOf, Doc, Field, Node, Not, Query, Words, standing, unspaced, upvote_boost

# Cost units, measured on this project's 2-core machines (bench/hostile_queries.py): one element through
# a set operation is 1 (~40 ns); a per-paper test in Python is PER_TEST; ranking one match is PER_MATCH.
PER_TEST, PER_MATCH = 50, 30
INLINE = 1_000_000  # up to ~40 ms: answered on the event loop, no thread hand-off
# Up to ~150 ms: answered in the heavy-search lane. Above it, refused: a thread that holds the GIL in
# long set operations starves the event loop (measured: ordinary p99 3 s beside five 8M-unit queries,
# 0.2 s beside five 3M-unit ones; bench/README.md).
COST_BUDGET = 3_000_000


T = TypeVar("T")


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
        self._live: set[int] = set()
        self._published: array[float] = array("d")  # per number: the paper's date (timestamp)
        self._boost: array[float] = array("d")  # per number: 0.5 × log(1 + upvotes), its share of the rank
        self._cursor = 0
        self._dead = 0
        self.budget = COST_BUDGET
        self._lane: ThreadPoolExecutor | None = None

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
        self._live.add(number)
        self._published.append(doc.published.timestamp())
        self._boost.append(upvote_boost(doc.upvotes))
        for key in doc.index_keys():
            self._postings[key].append(number)

    def _forget(self, paper_id: str) -> None:
        number = self._numbers.pop(paper_id, None)
        if number is not None:
            self._docs[number] = None
            self._live.discard(number)
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
        # New objects, never mutated in place: a search running in a worker thread keeps its snapshot.
        docs: list[Doc | None] = []
        added_at: list[float] = []
        numbers: dict[str, int] = {}
        postings: dict[str, array[int]] = defaultdict(lambda: array("I"))
        for doc, added in live:
            number = len(docs)
            docs.append(doc)
            added_at.append(added)
            numbers[doc.paper_id] = number
            for key in doc.index_keys():
                postings[key].append(number)
        self._docs, self._added, self._numbers, self._postings = docs, added_at, numbers, postings
        self._published = array("d", (d.published.timestamp() for d in live_docs(docs)))
        self._boost = array("d", (upvote_boost(d.upvotes) for d in live_docs(docs)))
        self._live, self._dead = set(range(len(docs))), 0

    def search(self, query: Query, limit: int, offset: int = 0, now: datetime | None = None) -> tuple[list[str], int]:
        """Ids of the best matches, ``offset`` to ``offset + limit``, and the number of matches.

        Matching is set algebra on the postings (C speed, whatever the query's shape). Quality takes
        few values, so matches are partitioned by it, and only the best of each class by recency and
        upvotes are ranked: the work grows with the matches, never with matches × query terms.
        """
        now = now or datetime.now(UTC)
        plan = self._plan(query)
        classes = plan.classes(query.root)
        total = sum(len(members) for members in classes.values())
        wanted = offset + limit
        if not wanted or not total:
            return [], total
        stamp, published, boost, docs = now.timestamp(), self._published, self._boost, self._docs

        def order(number: int) -> tuple[float, float, str]:  # within a class: standing, then date, then id
            doc = docs[number]
            return standing(published[number], boost[number], stamp), published[number], doc.paper_id if doc else ""

        ranked = []
        for quality, members in classes.items():
            for number in heapq.nlargest(wanted, members, key=order):
                score, date, paper_id = order(number)
                ranked.append((quality + score, date, paper_id))
        ranked.sort(reverse=True)
        return [paper_id for _, _, paper_id in ranked[offset:wanted]], total

    def count(self, query: Query) -> int:
        """How many indexed papers match ``query``."""
        return len(self._plan(query).select(query.root))

    def cost(self, query: Query) -> int:
        """What evaluating ``query`` will cost, estimated before running it from posting sizes: the set
        operations, the per-paper tests, and ranking the matches (see PER_TEST, PER_MATCH)."""
        work, matches = _estimate(query.root, self._postings, len(self._live))
        return work + PER_MATCH * matches

    async def find(self, query: Query, limit: int, offset: int = 0) -> tuple[list[str], int]:
        """``search``, scheduled by cost so that no query can stall the others: cheap ones run on the
        event loop at once; costly ones queue, one at a time, in a lane of their own (a worker thread);
        a query over the budget is refused with a ``CommandError`` before any work."""
        if self.cost(query) <= INLINE:
            return self.search(query, limit, offset)
        return await self._heavy(self.search, query, limit, offset)

    async def tally(self, query: Query) -> int:
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

    def _plan(self, query: Query) -> _Plan:
        cost = self.cost(query)
        if cost > self.budget:
            raise CommandError(
                f"“{query.text}” is too broad to search ({cost:,} postings to read over {len(self._live):,} papers); "
                "use fewer common words, or narrow it with a rarer word, a phrase, cat: or upvotes>="
            )
        # A snapshot of the live set: a refresh on the event loop may change it while this runs in a thread.
        return _Plan(self._docs, self._postings, set(self._live))


def _tested(field: Field) -> bool:
    """Fields matched by a test per paper (no posting to read): code:, upvotes and CJK names."""
    return field.name in ("code", "upvotes") or unspaced(field.tokens)


def _estimate(node: Node, postings: dict[str, array[int]], papers: int) -> tuple[int, int]:
    """(work, matches) for ``node``: the set and test work it takes, and how many papers it may match."""
    if isinstance(node, Words):
        sizes = [len(postings.get(word, ())) for word in node.words]
        return 3 * sum(sizes), min(sizes)  # each word read thrice: anywhere, title, keywords
    if isinstance(node, Field):
        if _tested(node):
            return PER_TEST * papers, papers
        key = f"cat:{node.value}" if node.name == "cat" else f"{'au' if node.name == 'author' else 'org'}:{node.tokens[0]}"
        return len(postings.get(key, ())), len(postings.get(key, ()))
    if isinstance(node, Not):
        work, matches = _estimate(node.node, postings, papers)
        return work + papers, papers - matches
    parts = [_estimate(part, postings, papers) for part in node.nodes]
    if isinstance(node, AnyOf):
        return sum(w for w, _ in parts), min(papers, sum(m for _, m in parts))
    # AND: per-paper tests run only on what the sets left; the matches are at most the narrowest part's.
    narrow = min((m for part, (_, m) in zip(node.nodes, parts, strict=True) if not _is_test(part)), default=papers)
    work = sum(w for part, (w, _) in zip(node.nodes, parts, strict=True) if not _is_test(part))
    tests = sum(1 for part in node.nodes if _is_test(part))
    return work + PER_TEST * narrow * tests, narrow


def _is_test(node: Node) -> bool:
    return isinstance(node, Field) and _tested(node)


def live_docs(docs: list[Doc | None]) -> list[Doc]:
    """The docs of a freshly rebuilt index (it has no gaps)."""
    return [doc for doc in docs if doc is not None]


class _Plan:
    """One query's evaluation over one snapshot of the index: which papers match each node (memoised,
    so quality can test membership in O(1)), and each match's quality."""

    def __init__(self, docs: list[Doc | None], postings: dict[str, array[int]], live: set[int]) -> None:
        self.docs, self.postings, self.live = docs, postings, live
        self.selected: dict[int, set[int]] = {}

    def posting(self, key: str) -> set[int]:
        # May hold papers forgotten since the last rebuild; ``select`` keeps only live ones.
        return set(self.postings.get(key, ()))

    def select(self, node: Node) -> set[int]:
        """The numbers of the live papers ``node`` matches."""
        key = id(node)
        if key not in self.selected:
            found = self._select(node)
            self.selected[key] = found if isinstance(node, Not) else found & self.live
        return self.selected[key]

    def _select(self, node: Node) -> set[int]:
        if isinstance(node, Words):
            found = self._all_of([self.posting(word) for word in node.words])
            return found if len(node.words) == 1 else {n for n in found if self._hit(node, n)}
        if isinstance(node, Field):
            if node.name == "cat":
                return self.posting(f"cat:{node.value}")
            if node.name in ("author", "org") and not unspaced(node.tokens):
                prefix = "au" if node.name == "author" else "org"
                found = self._all_of([self.posting(f"{prefix}:{token}") for token in node.tokens])
                return {n for n in found if self._hit(node, n)}
            return {n for n in self.live if self._hit(node, n)}  # alone, a tested field looks at every paper
        if isinstance(node, Not):
            return self.live - self.select(node.node)
        if isinstance(node, AllOf):
            return self._select_all(node)
        return set().union(*(self.select(part) for part in node.nodes))

    def _select_all(self, node: AllOf) -> set[int]:
        # Sets first (smallest first), then NOTs subtract, then per-paper tests filter what is left.
        tests = [n for n in node.nodes if isinstance(n, Field) and _tested(n)]
        positive = sorted((n for n in node.nodes if not isinstance(n, Not) and n not in tests), key=self._guess)
        found = set(self.select(positive[0]) if positive else self.live)
        for other in positive[1:]:
            found &= self.select(other)
        for negated in node.nodes:
            if isinstance(negated, Not) and found:
                found -= self.select(negated.node)
        for test in tests:
            found = {n for n in found if self._hit(test, n)}
        return found

    def _guess(self, node: Node) -> int:
        # Cheapest first: a rare word's posting is small, and intersecting starts from the smallest.
        if isinstance(node, Words):
            return min(len(self.postings.get(word, ())) for word in node.words)
        return len(self.live)

    @staticmethod
    def _all_of(sets: list[set[int]]) -> set[int]:
        sets.sort(key=len)
        found = sets[0]
        for other in sets[1:]:
            found &= other
        return found

    def _hit(self, node: Words | Field, number: int) -> bool:
        doc = self.docs[number]
        return doc is not None and node.hit(doc)

    def classes(self, node: Node) -> dict[float, set[int]]:
        """The papers ``node`` matches, grouped by their quality (``Query.quality``): for a word, title 3,
        keywords 2, abstract 1; fields and NOT 1; AND the average of its parts; OR the best part."""
        if isinstance(node, Words):
            return self._word_classes(node)
        if isinstance(node, AllOf):
            return self._and_classes(node)
        if isinstance(node, AnyOf):
            return self._or_classes(node)
        return _nonempty({1.0: self.select(node)})

    def _word_classes(self, node: Words) -> dict[float, set[int]]:
        found = self.select(node)
        if len(node.words) > 1:  # a phrase's matches were verified one by one already: few
            by_quality: dict[float, set[int]] = defaultdict(set)
            for number in found:
                doc = self.docs[number]
                if doc is not None:
                    by_quality[node.quality(doc)].add(number)
            return dict(by_quality)
        word = node.words[0]
        title = found & self.posting(f"t:{word}")
        keywords = (found & self.posting(f"k:{word}")) - title
        return _nonempty({3.0: title, 2.0: keywords, 1.0: found - title - keywords})

    def _and_classes(self, node: AllOf) -> dict[float, set[int]]:
        sums: dict[float, set[int]] = {0.0: self.select(node)}
        for part in node.nodes:
            # A field or a NOT scores 1 on every match of the AND: no need to select it on its own.
            part_classes = {1.0: set()} if isinstance(part, Field | Not) else self.classes(part)
            combined: dict[float, set[int]] = defaultdict(set)
            for total, members in sums.items():
                if len(part_classes) == 1:  # every match of the AND matches the part: just add its quality
                    # (two totals may round to one sum: merging them is exact, Query.quality adds alike)
                    combined[total + next(iter(part_classes))] |= members
                    continue
                for quality, matched in part_classes.items():
                    if both := members & matched:
                        combined[total + quality] |= both
            sums = combined
        averages: dict[float, set[int]] = defaultdict(set)
        for total, members in sums.items():
            averages[total / len(node.nodes)] |= members  # merged when they round alike, as above
        return dict(averages)

    def _or_classes(self, node: AnyOf) -> dict[float, set[int]]:
        best: dict[float, set[int]] = defaultdict(set)
        for part in node.nodes:
            for quality, members in self.classes(part).items():
                best[quality] |= members
        taken: set[int] = set()
        for quality in sorted(best, reverse=True):
            best[quality] -= taken
            taken |= best[quality]
        return _nonempty(best)


def _nonempty(classes: dict[float, set[int]]) -> dict[float, set[int]]:
    return {quality: members for quality, members in classes.items() if members}
