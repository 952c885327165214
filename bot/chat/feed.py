"""The personal feed: papers like a given one (``/papers similar``) and papers for a reader
(``/papers foryou``, followed ``saved``), from the vectors of the papers the query index holds.

Vectors live in the store next to each paper (``Papers.vectors``); the poller writes them when it
first sees a paper, and this module computes any that are missing (papers cached before vectors
existed) and writes them back. In memory: one int8 row per indexed paper (256 bytes).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from bot.chat.vectors import DIMENSIONS, Embedder, packed, text_of, train_taste, unit, unpacked
from bot.errors import CommandError, PaperbotError
from bot.model import Paper, UserRef
from bot.ports import Library, Papers
from bot.query.index import PaperIndex
from bot.query.matcher import Field, Query, fields_of, with_likes
from bot.query.routing import Router

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
EMBED_BATCH = 64  # papers embedded at once: the model's working memory grows with the batch

NEGATIVES = 1000  # papers not saved that a reader's model learns from (a fixed sample: stable, and fast)
CHUNK = 8192  # rows scored at once: the float32 copy of a chunk is 8 MB, never the whole matrix (and as fast)
MODELS = 256  # readers' models kept (retrained when their saves change)


class Pick(NamedTuple):
    """A recommended paper, how close it is (cosine, or the model's score), and why."""

    paper_id: str
    score: float
    because: str = ""


class Feed:
    """Vectors of the indexed papers, and the rankings made from them."""

    def __init__(self, index: PaperIndex, papers: Papers, library: Library, embedder: Embedder) -> None:
        self._index = index
        self._papers = papers
        self._library = library
        self._embedder = embedder
        self._rows: dict[str, int] = {}  # paper id → its row
        self._ids: list[str] = []  # row → paper id ("" once it left the index)
        self._matrix: np.ndarray | None = None  # int8, rows × 256 (capacity grows by doubling)
        self._inverse: np.ndarray | None = None  # 1 / each row's norm; 0 for a paper that left
        self._synced: tuple[int, int] | None = None  # the index version the rows match
        self._syncing = asyncio.Lock()
        self._models: OrderedDict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = OrderedDict()
        self._fresh: dict[str, np.ndarray] = {}  # vectors of papers routed but not yet committed

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def nbytes(self) -> int:
        """The memory the rows take: the matrix and norms (at their capacity), the id map and list."""
        arrays = sum(a.nbytes for a in (self._matrix, self._inverse) if a is not None)
        return arrays + sys.getsizeof(self._rows) + sys.getsizeof(self._ids)

    async def sync(self) -> int:
        """Give every paper in the query index its row (from the store, or embedded now and stored);
        drop the rows of papers that left. Returns how many rows were added."""
        async with self._syncing:
            await self._index.refresh()
            version = self._index.version
            if version == self._synced:  # nothing added or forgotten since: most commands
                return 0
            live = self._index.live_ids()
            gone = self._rows.keys() - set(live)
            for paper_id in gone:
                row = self._rows.pop(paper_id)
                self._ids[row] = ""
                if self._inverse is not None:
                    self._inverse[row] = 0.0  # scores 0, and left out by _best
            if gone and len(self._ids) > 2 * len(self._rows):
                self._compact()
            missing = [paper_id for paper_id in live if paper_id not in self._rows]
            self._append(*await self._vectors_for(missing))
            self._synced = version
            return len(missing)

    async def _vectors_for(self, paper_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
        import numpy as np

        stored = await self._papers.vectors(paper_ids) if paper_ids else {}
        found = {pid: row for pid, blob in stored.items() if (row := unpacked(blob)) is not None}
        need = [pid for pid in paper_ids if pid not in found]
        for start in range(0, len(need), 1000):  # papers cached before vectors existed: made once, kept
            made = await self.embed(await self._papers.papers(need[start : start + 1000]))
            found.update(made)
            await self._papers.keep_vectors({pid: packed(row) for pid, row in made.items()})
        ids = [pid for pid in paper_ids if pid in found]
        rows = np.vstack([found[pid] for pid in ids]) if ids else np.zeros((0, DIMENSIONS), dtype=np.int8)
        return ids, rows

    async def embed(self, papers: Sequence[Paper]) -> dict[str, np.ndarray]:
        """Vectors of ``papers`` (int8 rows), computed in a worker thread ``EMBED_BATCH`` papers at a time,
        so a poll's memory is bounded by the batch, not by how many papers arrived."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(papers), EMBED_BATCH):
            batch = papers[start : start + EMBED_BATCH]
            rows = await asyncio.to_thread(self._embedder.embed, [text_of(p) for p in batch])
            found.update((p.id, row) for p, row in zip(batch, rows, strict=True))
        return found

    async def remember(self, papers: Sequence[Paper]) -> None:
        """Compute and store the vectors of papers just seen (the poller calls it as it commits them).
        A failure costs only time later: ``sync`` computes what is missing."""
        try:
            made = {p.id: self._fresh.pop(p.id) for p in papers if p.id in self._fresh}  # routed by like: already
            made.update(await self.embed([p for p in papers if p.id not in made]))
            await self._papers.keep_vectors({pid: packed(row) for pid, row in made.items()})
        except Exception as exc:  # the store, or the model itself: never the poll's concern
            problem = str(exc) if isinstance(exc, PaperbotError) else f"{type(exc).__name__}: {exc}"
            log.warning("could not store paper vectors; they are made when needed", extra={"kv": {"problem": problem[:300]}})

    def _append(self, ids: list[str], rows: np.ndarray) -> None:
        import numpy as np

        if not ids:
            return
        start = len(self._ids)
        needed = start + len(ids)
        if self._matrix is None or needed > len(self._matrix):
            capacity = max(1024, needed, 2 * (0 if self._matrix is None else len(self._matrix)))
            matrix = np.zeros((capacity, DIMENSIONS), dtype=np.int8)
            inverse = np.zeros(capacity, dtype=np.float32)
            if self._matrix is not None and self._inverse is not None:
                matrix[:start], inverse[:start] = self._matrix[:start], self._inverse[:start]
            self._matrix, self._inverse = matrix, inverse
        assert self._inverse is not None
        self._matrix[start:needed] = rows
        self._inverse[start:needed] = 1 / np.linalg.norm(rows.astype(np.float32), axis=1).clip(1e-9)
        for offset, paper_id in enumerate(ids):
            self._rows[paper_id] = start + offset
        self._ids.extend(ids)

    def _compact(self) -> None:
        import numpy as np

        if self._matrix is None or self._inverse is None:
            return
        kept = np.array(sorted(self._rows.values()), dtype=np.int64)
        ids = [self._ids[n] for n in kept]
        self._matrix, self._inverse = self._matrix[kept], self._inverse[kept]
        self._ids = ids
        self._rows = {paper_id: n for n, paper_id in enumerate(ids)}

    def _scores(self, weights: np.ndarray) -> np.ndarray:
        """``weights`` · every row (cosine when ``weights`` is a unit vector); rows of gone papers -inf."""
        import numpy as np

        size = len(self._ids)
        out = np.full(size, -np.inf, dtype=np.float32)
        if self._matrix is None or self._inverse is None:
            return out
        for start in range(0, size, CHUNK):
            end = min(size, start + CHUNK)
            out[start:end] = (self._matrix[start:end].astype(np.float32) @ weights) * self._inverse[start:end]
        out[self._inverse[:size] == 0] = -np.inf  # papers that left the index
        return out

    def _best(
        self, scores: np.ndarray, limit: int, exclude: set[str], allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        import numpy as np

        for paper_id in exclude:
            if (row := self._rows.get(paper_id)) is not None:
                scores[row] = -np.inf
        if allowed is not None:
            keep = np.zeros(len(scores), dtype=bool)
            keep[[self._rows[p] for p in allowed if p in self._rows]] = True
            scores[~keep] = -np.inf
        take = min(len(scores), limit + len(exclude))
        if take <= 0:
            return []
        top = np.argpartition(-scores, take - 1)[:take] if take < len(scores) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda n: (-scores[n], self._ids[n]))
        return [(self._ids[n], float(scores[n])) for n in ranked if np.isfinite(scores[n])][:limit]

    async def vector(self, paper: Paper) -> np.ndarray:
        """A paper's unit vector: its row when indexed, else from the store, else embedded now (a paper
        saved long ago that left the cache keeps its vector this way: the same model, the same text)."""
        if (number := self._rows.get(paper.id)) is not None and self._matrix is not None:
            return unit(self._matrix[number])
        blob = (await self._papers.vectors([paper.id])).get(paper.id, b"")
        if (row := unpacked(blob)) is not None:
            return unit(row)
        return unit((await self.embed([paper]))[paper.id])

    async def similar(self, paper: Paper, limit: int) -> list[Pick]:
        """The indexed papers closest to ``paper`` (cosine), best first, without the paper itself."""
        await self.sync()
        scores = self._scores(await self.vector(paper))
        return [Pick(pid, score) for pid, score in self._best(scores, limit, {paper.id})]

    async def for_you(self, user: UserRef, limit: int, among: set[str] | None = None) -> list[Pick]:
        """The indexed papers (or those ``among``) ranked by ``user``'s model, saved ones left out; each
        with the saved paper it is most like. A user with no saved papers gets a ``CommandError``."""
        saved = [s.paper for s in await self._library.saved(user)]
        if not saved:
            raise CommandError(
                "paperbot learns what you like from the papers you save: react with the save emoji on a few "
                "papers (or /papers save <arXiv id>), then ask again"
            )
        await self.sync()
        weights, liked = await self._model(user, saved)
        scores = self._scores(weights)
        picks = self._best(scores, limit, {p.id for p in saved}, among)
        titles = {p.id: p.title for p in saved}
        return [Pick(pid, score, self._because(pid, liked, titles)) for pid, score in picks]

    def _because(self, paper_id: str, liked: dict[str, np.ndarray], titles: dict[str, str]) -> str:
        row = unit(self._matrix[self._rows[paper_id]]) if self._matrix is not None else None
        if row is None or not liked:
            return ""
        nearest = max(liked, key=lambda pid: float(liked[pid] @ row))
        return titles[nearest]

    async def _model(self, user: UserRef, saved: list[Paper]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``user``'s weights, trained again only when their saved papers changed (cached, ~256 readers)."""
        import numpy as np

        key = user.key + ":" + hashlib.sha1(",".join(sorted(p.id for p in saved)).encode()).hexdigest()
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        liked = {p.id: await self.vector(p) for p in saved}
        rng = np.random.default_rng(int.from_bytes(hashlib.sha1(user.key.encode()).digest()[:4], "big"))
        negatives = np.zeros((0, DIMENSIONS), np.float32)
        if self._matrix is not None and self._inverse is not None:
            candidates = self._inverse[: len(self._ids)] > 0  # papers in the index
            candidates[[self._rows[pid] for pid in liked if pid in self._rows]] = False  # not the saved ones
            pool = np.flatnonzero(candidates)
            if len(pool):
                sample = rng.choice(pool, size=min(NEGATIVES, len(pool)), replace=False)
                negatives = unit(self._matrix[np.sort(sample)])
        weights = await asyncio.to_thread(train_taste, np.vstack(list(liked.values())), negatives)
        self._models[key] = (weights, liked)
        while len(self._models) > MODELS:
            self._models.popitem(last=False)
        return weights, liked

    async def resolve(self, query: Query) -> Query:
        """``query`` with each ``like:`` term decided over the indexed papers; a term naming a paper
        paperbot never saw is a ``CommandError``."""
        values = {f.value for f in fields_of(query.root) if f.name == "like"}
        if not values:
            return query
        await self.sync()
        return Query(query.text, with_likes(query.root, await self._members(values, self._scores, self._ids, strict=True)))

    async def route_likes(self, router: Router, papers: Sequence[Paper]) -> Router:
        """``router`` with each ``like:`` subscription decided for ``papers`` (new, not yet committed);
        their vectors are kept for ``remember``. A term naming an unknown paper matches nothing."""
        values = router.likes
        self._fresh.clear()  # what the last poll routed was committed (and stored) or taken by another process
        if not values or not papers:
            return router
        import numpy as np

        stored = await self._papers.vectors([p.id for p in papers])
        rows = {pid: row for pid, blob in stored.items() if (row := unpacked(blob)) is not None}
        try:
            made = await self.embed([p for p in papers if p.id not in rows])
        except Exception as exc:  # a broken model must not stop the poll: like: matches nothing this time
            log.error(
                "like: subscriptions skipped: the model failed", extra={"kv": {"problem": f"{type(exc).__name__}: {exc}"[:300]}}
            )
            return router.with_likes({})
        self._fresh.update(made)
        rows.update(made)
        ids = [p.id for p in papers]
        matrix = unit(np.vstack([rows[pid] for pid in ids]))
        return router.with_likes(await self._members(values, matrix.__matmul__, ids, strict=False))

    async def _members(
        self, values: Iterable[str], scores_of: Callable[[np.ndarray], np.ndarray], ids: Sequence[str], *, strict: bool
    ) -> dict[str, frozenset[str]]:
        """Each ``like:`` term's matches among ``ids`` (``scores_of`` a vector gives their cosines), the
        liked paper itself left out. A paper paperbot never saw: a ``CommandError`` when ``strict``,
        else no matches."""
        members: dict[str, frozenset[str]] = {}
        for value in values:
            paper_id, threshold = Field("like", ":", value).target
            paper = await self._papers.paper(paper_id) or await self._library.paper(paper_id)
            if paper is None:
                if strict:
                    raise CommandError(f"like:{paper_id}: paperbot has not seen that paper in the last days")
                members[value] = frozenset()
                continue
            scores = scores_of(await self.vector(paper))
            members[value] = frozenset(ids[n] for n in (scores >= threshold).nonzero()[0].tolist()) - {paper_id}
        return members
