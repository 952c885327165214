"""Verified fakes at the boundary: a source that returns what it is given, an adapter that records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bot.chat.vectors import Embedder
from bot.errors import DeliveryError, SourceError
from bot.model import Card, Destination, Links, Paper, PostRef

EMBEDDER = Embedder()  # the real model, loaded once for the whole test run (~0.6 s)


def make_paper(pid: str, title: str = "", abstract: str = "An abstract about nothing in particular.", **extra: object) -> Paper:
    """A plausible paper with the given id."""
    fields: dict = {
        "id": pid,
        "title": title or f"Paper {pid}",
        "abstract": abstract,
        "authors": ("Ada Lovelace", "Alan Turing"),
        "published": datetime(2026, 3, 6, 12, tzinfo=UTC),
        "links": Links(abstract=f"https://arxiv.org/abs/{pid}", pdf=f"https://arxiv.org/pdf/{pid}"),
        "sources": frozenset({"static"}),
    }
    fields.update(extra)
    return Paper(**fields)


class StaticSource:
    """Returns ``papers``, or raises ``SourceError`` while ``failing`` is set."""

    def __init__(self, name: str, papers: list[Paper]) -> None:
        self.name = name
        self.papers = papers
        self.failing: str | None = None
        self.catch_up = 0

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        self.catch_up = catch_up
        if self.failing:
            raise SourceError(self.failing)
        return list(self.papers)


class RecordingAdapter:
    """Records every accepted post; ``refuse`` makes the next posts to a channel fail."""

    def __init__(self, platform: str = "console") -> None:
        self.platform = platform
        self.posts: list[tuple[Destination, Card]] = []
        self.refusing: dict[str, DeliveryError] = {}
        self.digests: list[tuple[Destination, list[str], int]] = []
        self.edits: list[tuple[PostRef, Card]] = []
        self.titles: list[str] = []  # each digest's title ("" for new papers)
        self.edit_failures: list[DeliveryError] = []  # raised by the next edits, in order

    def refuse(self, channel: str, error: DeliveryError | None) -> None:
        if error is None:
            self.refusing.pop(channel, None)
        else:
            self.refusing[channel] = error

    async def post(self, destination: Destination, card: Card) -> PostRef:
        if destination.channel in self.refusing:
            raise self.refusing[destination.channel]
        self.posts.append((destination, card))
        return PostRef(destination, f"m{len(self.posts)}")

    async def edit(self, post: PostRef, card: Card) -> None:
        if self.edit_failures:
            raise self.edit_failures.pop(0)
        self.edits.append((post, card))

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int, title: str = "") -> list[PostRef]:
        self.digests.append((destination, [card.paper_id for card in cards], top))
        self.titles.append(title)
        return [await self.post(destination, card) for card in cards]

    def ids(self, channel: str | None = None) -> list[str]:
        return [card.paper_id for dest, card in self.posts if channel is None or dest.channel == channel]


def listing() -> list[Paper]:
    """The 501 cs/stat/eess papers of a real arXiv day (2026-01-24): titles, abstracts, categories."""
    import gzip
    import json
    from pathlib import Path

    path = Path(__file__).parent / "fixtures" / "arxiv_listing_2026-01-24.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as file:
        raw = json.load(file)
    return [
        make_paper(
            p["id"].split("v")[0],
            p["title"],
            p["abstract"],
            categories=tuple(p["categories"]),
            published=datetime.fromisoformat(p["published"]),
        )
        for p in raw
    ]
