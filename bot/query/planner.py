"""Evaluating one query over the index's table: which papers match, how well, and the best page.

Matches are bit sets (``bot.query.bits``): words, categories, authors and ``code:``/``upvotes`` columns are
cached sets, so AND, OR and NOT cost microseconds even when a word is in every paper. Only phrases
and CJK names need a look at the papers' words, and only at the papers the sets left.

The page is found without ranking every match: papers are walked in two orders, newest first and
most upvoted first, and the walk stops once no paper not yet seen can beat the page (Fagin's
threshold algorithm: a paper's standing grows with its date and with its upvotes, so the newest date
and the most upvotes not yet passed bound every paper not yet seen).
"""

from __future__ import annotations

import bisect
import functools
import heapq
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import NamedTuple

from bot.query.bits import BitCache, Membership, from_numbers, members
from bot.query.matcher import AllOf, AnyOf, Field, Node, Not, Words, compare, standing, unspaced
from bot.query.table import DocTable, Needle

# Cost units of ~40 ns (bench/hostile_queries.py): building a posting's bit set costs a unit per
# POSTINGS numbers (numpy: ~10 ns a number, measured at 200,000; cached after the first use);
# checking a phrase in one paper PER_VERIFY; decoding a paper for a name test PER_TEST; scoring a match
# PER_MATCH.
POSTINGS, PER_VERIFY, PER_TEST, PER_MATCH = 4, 40, 150, 30
DIRECT = 2_000  # a class this small is scored whole; a bigger one is walked (and the walk may stop early)
VERIFY_ALL = 5_000  # a phrase with more candidates than this is checked as the walk reaches them


class Found(NamedTuple):
    """A search's page of paper ids, how many papers match, and whether that number is an estimate."""

    ids: list[str]
    total: int
    exact: bool = True


class Views:
    """What searches derive from one table and keep while it does not change: the live set, the
    postings' bit sets, the column tests and the two walking orders."""

    def __init__(self, table: DocTable) -> None:
        self.table = table
        self.bits = BitCache()
        self._live = (-1, 0)
        self._columns: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._orders: tuple[int, list[int], list[int]] = (0, [], [])

    def live(self) -> int:
        """The set of live paper numbers."""
        version, bits = self._live
        if version != self.table.version:
            version = self.table.version
            bits = from_numbers(list(self.table.numbers.values()), len(self.table))
            self._live = (version, bits)
        return bits

    def posting(self, key: str) -> int:
        """The set of papers with index key ``key`` (dead numbers included)."""
        posting = self.table.postings.get(key)
        return self.bits.get(key, posting) if posting else 0

    def column(self, field: Field) -> int:
        """The set of papers passing ``code:`` or an ``upvotes`` comparison (dead numbers included)."""
        key = (field.name, field.op, field.value)
        version, bits = self._columns.get(key, (-1, 0))
        if version != self.table.version:
            version, table = self.table.version, self.table
            if field.name == "code":
                want = field.value == "yes"
                bits = from_numbers([n for n, code in enumerate(table.code) if bool(code) == want], len(table))
            else:
                limit = int(field.value)
                bits = from_numbers([n for n, up in enumerate(table.upvotes) if compare(up, field.op, limit)], len(table))
            if len(self._columns) > 64:
                self._columns.clear()
            self._columns[key] = (version, bits)
        return bits

    def orders(self) -> tuple[list[int], list[int]]:
        """Every paper number, newest first, and most upvoted first (dead ones included)."""
        covered, by_date, by_boost = self._orders
        table = self.table
        size = len(table)
        if covered == size:
            return by_date, by_boost
        if size - covered > 200 or not covered:
            import numpy as np  # here: only searches need it

            # Copies of the columns (a view would stop the event loop appending to them meanwhile).
            by_date = np.argsort(-np.array(table.published[:size]), kind="stable").tolist()
            by_boost = np.argsort(-np.array(table.boost[:size]), kind="stable").tolist()
        else:  # a refresh added a few: put them in place (new lists, a search may be walking the old)
            date, boost = table.published.__getitem__, table.boost.__getitem__
            by_date, by_boost = list(by_date), list(by_boost)
            for n in range(covered, size):
                bisect.insort(by_date, n, key=lambda m: (-date(m), m))
                bisect.insort(by_boost, n, key=lambda m: (-boost(m), m))
        self._orders = (size, by_date, by_boost)
        return by_date, by_boost

    def warm(self) -> None:
        """Derive what the next search needs now (after a refresh), so no query pays for it."""
        self.live()
        self.orders()


class Plan:
    """One query's evaluation over one state of the table."""

    def __init__(self, views: Views, stamp: float, verify_all: int = VERIFY_ALL, direct: int = DIRECT) -> None:
        self.views, self.table, self.stamp = views, views.table, stamp
        self.live = views.live()
        self.verify_all, self.direct = verify_all, direct
        self._selected: dict[int, int] = {}

    # ----------------------------------------------------------------------------- matching

    def select(self, node: Node, within: int | None = None) -> int:
        """The live papers ``node`` matches, among ``within`` when given (phrases and name tests then
        look only there)."""
        if within is not None:
            return self._select(node, within)
        key = id(node)
        if key not in self._selected:
            self._selected[key] = self._select(node, self.live)
        return self._selected[key]

    def _select(self, node: Node, within: int) -> int:
        if isinstance(node, Words):
            found = within & self.candidates(node)
            return found if len(node.words) == 1 else self._verify(node, found)
        if isinstance(node, Field):
            return self._field(node, within)
        if isinstance(node, Not):
            return within & ~self.select(node.node, within)
        if isinstance(node, AnyOf):
            found = 0
            for part in node.nodes:
                found |= self.select(part, within)
            return found
        return self._select_all(node, within)

    def _select_all(self, node: AllOf, within: int) -> int:
        # Sets narrow first, then NOTs, phrases and name tests look only at what is left.
        found = within
        slow = [part for part in node.nodes if _slow(part)]
        for fast in sorted((p for p in node.nodes if not _slow(p) and not isinstance(p, Not)), key=self._breadth):
            found &= self.select(fast)
            if not found:
                return 0
        for phrase in slow:
            if isinstance(phrase, Words):
                found &= self.candidates(phrase)
        for negated in node.nodes:
            if isinstance(negated, Not) and found:
                found &= ~self.select(negated.node, found)
        for part in slow:
            if found:
                found = self.select(part, found)
        return found

    def candidates(self, node: Words) -> int:
        """Papers with every word of ``node`` (a phrase's matches are among them)."""
        found = -1
        for word in sorted(node.words, key=lambda w: len(self.table.postings.get(w, ()))):
            found &= self.views.posting(word)
            if not found:
                return 0
        return found & self.live

    def _field(self, node: Field, within: int) -> int:
        views = self.views
        if node.name == "like":  # decided by the feed: the ids it matched
            numbers = self.table.numbers
            liked = sorted(numbers[pid] for pid in node.members or () if pid in numbers)
            return within & from_numbers(liked, len(self.table))
        if node.name == "cat":
            return within & views.posting(f"cat:{node.value}")
        if node.name in ("code", "upvotes"):
            return within & views.column(node)
        if unspaced(node.tokens):  # CJK names: matched inside a word, so no posting to read
            return self._test(node, within)
        prefix = "au" if node.name == "author" else "org"
        found = within
        for token in node.tokens:
            found &= views.posting(f"{prefix}:{token}")
        # One token is exactly its posting; several must stand together in one name.
        return found if len(node.tokens) == 1 else self._test(node, found)

    def _test(self, node: Field, within: int) -> int:
        doc = self.table.doc
        return from_numbers([n for n in members(within) if node.hit(doc(n))], len(self.table))

    def _verify(self, node: Words, within: int) -> int:
        found = 0
        for members_of in self._phrase_classes(node, within).values():
            found |= members_of
        return found

    def _phrase_classes(self, node: Words, within: int) -> dict[float, int]:
        needle = self.table.needle(node.words)
        if needle is None or not within:
            return {}
        quality = self.table.phrase_quality
        by_quality: dict[float, list[int]] = {3.0: [], 2.0: [], 1.0: []}
        for n in members(within):
            if q := quality(n, needle):
                by_quality[q].append(n)
        return {q: from_numbers(numbers, len(self.table)) for q, numbers in by_quality.items() if numbers}

    def _breadth(self, node: Node) -> int:
        if isinstance(node, Words):
            return min(len(self.table.postings.get(word, ())) for word in node.words)
        return len(self.table)

    # ------------------------------------------------------------------------------ quality

    def classes(self, node: Node, within: int) -> dict[float, int]:
        """The papers among ``within`` that ``node`` matches, grouped by quality (``Query.quality``): for
        a word, title 3, keywords 2, abstract 1; fields and NOT 1; AND the average of its parts; OR the
        best part."""
        if isinstance(node, Words):
            if len(node.words) > 1:
                return self._phrase_classes(node, within & self.candidates(node))
            word = node.words[0]
            found = self.select(node) & within
            title = found & self.views.posting(f"t:{word}")
            keywords = found & self.views.posting(f"k:{word}") & ~title
            return _nonempty({3.0: title, 2.0: keywords, 1.0: found & ~title & ~keywords})
        if isinstance(node, AllOf):
            return self._and_classes(node, within)
        if isinstance(node, AnyOf):
            return self._or_classes(node, within)
        return _nonempty({1.0: self.select(node, within)})

    def _and_classes(self, node: AllOf, within: int) -> dict[float, int]:
        matched = self.select(node, within) if within != self.live else self.select(node)
        sums: dict[float, int] = {0.0: matched}
        for part in node.nodes:
            # A field or a NOT scores 1 on every match of the AND: no need to classify it on its own.
            part_classes = {1.0: matched} if isinstance(part, Field | Not) else self.classes(part, matched)
            combined: dict[float, int] = {}
            for total, members_of in sums.items():
                for quality, part_members in part_classes.items():
                    if both := members_of & part_members:
                        # two totals may round to one sum: merging them is exact, Query.quality adds alike
                        combined[total + quality] = combined.get(total + quality, 0) | both
            sums = combined
        averages: dict[float, int] = {}
        for total, members_of in sums.items():
            average = total / len(node.nodes)
            averages[average] = averages.get(average, 0) | members_of
        return averages

    def _or_classes(self, node: AnyOf, within: int) -> dict[float, int]:
        best: dict[float, int] = {}
        for part in node.nodes:
            for quality, members_of in self.classes(part, within).items():
                best[quality] = best.get(quality, 0) | members_of
        taken = 0
        for quality in sorted(best, reverse=True):
            best[quality] &= ~taken
            taken |= best[quality]
        return _nonempty(best)

    # ------------------------------------------------------------------------------ ranking

    def page(self, root: Node, wanted: int) -> tuple[list[int], int, bool]:
        """The ``wanted`` best matches (best first), how many match, and whether that count is exact."""
        if isinstance(root, Words) and len(root.words) > 1:
            found = self.candidates(root)
            if found.bit_count() > self.verify_all:
                return self._phrase_page(root, found, wanted)
        classes = self.classes(root, self.live)
        heap: list[tuple[float, float, str, int]] = []
        for quality in sorted(classes, reverse=True) if wanted else ():  # the best class first fills the page
            self._walk(classes[quality], quality, wanted, heap, functools.partial(_constant, quality))
        return _best_first(heap), sum(m.bit_count() for m in classes.values()), True

    def _phrase_page(self, root: Words, found: int, wanted: int) -> tuple[list[int], int, bool]:
        # Too many candidates to check them all: check them as the walk reaches them, tier by tier
        # (a paper can score 3 only if every word is in its title), and estimate the count.
        needle = self.table.needle(root.words)
        if needle is None:
            return [], 0, True
        quality = self.table.phrase_quality
        views = self.views
        title = found & _all(views.posting(f"t:{w}") for w in root.words)
        keywords = found & _all(views.posting(f"k:{w}") for w in root.words) & ~title
        heap: list[tuple[float, float, str, int]] = []
        for ceiling, tier in ((3.0, title), (2.0, keywords), (1.0, found & ~title & ~keywords)) if wanted else ():
            self._walk(tier, ceiling, wanted, heap, lambda n: quality(n, needle))
        return _best_first(heap), self._estimate_phrase(found, needle), False

    def _estimate_phrase(self, found: int, needle: Needle) -> int:
        # Check an evenly spread sample of ~1,000 candidates; scale what matched.
        count = found.bit_count()
        step = max(1, count // 1000)
        inside = Membership(found)
        sample = [n for n in range(0, len(self.table), max(1, step)) if n in inside][:2000]
        if not sample:
            return 0
        hits = sum(1 for n in sample if self.table.phrase_quality(n, needle))
        return round(count * hits / len(sample))

    def _walk(
        self,
        found: int,
        ceiling: float,
        wanted: int,
        heap: list[tuple[float, float, str, int]],
        quality: Callable[[int], float],
    ) -> None:
        """Push ``found``'s best papers into ``heap`` (the ``wanted`` best so far, worst at the top);
        ``quality`` gives a paper's quality (0: no match after all), never above ``ceiling``."""
        table, stamp = self.table, self.stamp
        published, boost, ids = table.published, table.boost, table.ids

        def push(n: int) -> None:
            q = quality(n)
            if q:
                entry = (q + standing(published[n], boost[n], stamp), published[n], ids[n], n)
                if len(heap) < wanted:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)

        if found.bit_count() <= self.direct:
            for n in members(found):
                push(n)
            return
        self._threshold_walk(found, ceiling, wanted, heap, push)

    def _threshold_walk(
        self, found: int, ceiling: float, wanted: int, heap: list[tuple[float, float, str, int]], push: Callable[[int], None]
    ) -> None:
        # Visit papers newest first and most upvoted first, in step; after each step, no paper not yet
        # seen is newer than the date reached nor more upvoted than the upvotes reached.
        published, boost, stamp = self.table.published, self.table.boost, self.stamp
        by_date, by_boost = self.views.orders()
        data, count, seen = found.to_bytes((found.bit_length() + 7) >> 3, "little"), found.bit_count(), set()
        size = len(data)
        for step in range(len(by_date)):
            for n in (by_date[step], by_boost[step]):
                if (n >> 3) < size and data[n >> 3] >> (n & 7) & 1 and n not in seen:
                    seen.add(n)
                    push(n)
            if len(seen) == count:
                return
            # Every few steps (the bound barely moves in one): stop once nothing unseen can enter the page.
            bounded = step & 7 == 7 and len(heap) == wanted
            if bounded and heap[0][0] > ceiling + standing(published[by_date[step]], boost[by_boost[step]], stamp):
                return


def _constant(value: float, _: int) -> float:
    return value


def _best_first(heap: list[tuple[float, float, str, int]]) -> list[int]:
    return [n for *_, n in sorted(heap, reverse=True)]


def _all(sets: Iterable[int]) -> int:
    found = -1
    for bits in sets:
        found &= bits
    return found


def _slow(node: Node) -> bool:
    """Parts matched by looking at papers, not by sets: phrases and CJK names."""
    if isinstance(node, Words):
        return len(node.words) > 1
    return isinstance(node, Field) and node.name in ("author", "org") and (unspaced(node.tokens) or len(node.tokens) > 1)


def _nonempty(classes: dict[float, int]) -> dict[float, int]:
    return {quality: members_of for quality, members_of in classes.items() if members_of}


def estimate(node: Node, postings: Mapping[str, Sized], papers: int) -> tuple[int, int]:
    """(work, matches) for ``node`` before running it: building the postings' sets, checking phrases
    and names paper by paper, and how many papers it may match (for scoring)."""
    if isinstance(node, Words):
        sizes = [len(postings.get(word, ())) for word in node.words]
        work = sum(sizes) // POSTINGS + (PER_VERIFY * min(min(sizes), VERIFY_ALL) if len(sizes) > 1 else 0)
        return work, min(sizes)
    if isinstance(node, Field):
        if node.name == "like":
            return len(node.members or ()), len(node.members or ())
        if node.name in ("code", "upvotes"):
            return papers // 4, papers
        if unspaced(node.tokens):
            return PER_TEST * papers, papers
        prefix = "cat" if node.name == "cat" else "au" if node.name == "author" else "org"
        keys = [f"cat:{node.value}"] if prefix == "cat" else [f"{prefix}:{t}" for t in node.tokens]
        sizes = [len(postings.get(key, ())) for key in keys]
        return sum(sizes) // POSTINGS + (PER_TEST * min(sizes) if len(sizes) > 1 else 0), min(sizes)
    if isinstance(node, Not):
        work, matches = estimate(node.node, postings, papers)
        return work, papers - matches
    parts = [estimate(part, postings, papers) for part in node.nodes]
    work = sum(w for w, _ in parts)
    if isinstance(node, AnyOf):
        return work, min(papers, sum(m for _, m in parts))
    return work, min((m for part, (_, m) in zip(node.nodes, parts, strict=True) if not isinstance(part, Not)), default=papers)
