"""The terminal as a destination: readable blocks for people, or one JSON object per line for tools."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.text import Text

from bot.model import Card, Destination, PostRef, Reply


class ConsoleAdapter:
    """Prints each card to ``stream``. Feed text is never interpreted as markup or emoji codes, and
    lines are never broken by paperbot (``soft_wrap``): the terminal wraps, pipes get whole URLs."""

    platform = "console"

    def __init__(self, stream: TextIO, json_lines: bool = False, color: bool | None = None) -> None:
        self._stream = stream
        self._json = json_lines
        self._console = Console(
            file=stream,
            markup=False,
            emoji=False,
            highlight=False,
            no_color=color is False,
            force_terminal=color,
            soft_wrap=True,
        )
        self._count = 0

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """Print ``card``; the returned id is unique within this process run."""
        self._count += 1
        if self._json:
            self._stream.write(json.dumps(card_json(card, destination), ensure_ascii=False) + "\n")
            self._stream.flush()
        else:
            self._console.print(render(card))
        return PostRef(destination, f"{time.time_ns()}-{self._count}")

    async def edit(self, post: PostRef, card: Card) -> None:
        """A terminal cannot change what it printed: print what changed, one line ("updated: <title> —
        code: <url>"), or with ``--json`` the card again with ``"updated"`` naming the message."""
        if self._json:
            fields = card_json(card, post.destination) | {"updated": post.message_id}
            self._stream.write(json.dumps(fields, ensure_ascii=False) + "\n")
            self._stream.flush()
            return
        details = [f"{label.lower()}: {url}" for label, url in card.links if label.lower() in ("code", "project")]
        if card.upvotes is not None:
            details.append(f"▲ {card.upvotes}")
        self._console.print(Text(f"updated: {card.title} — " + " · ".join(details)))

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int, title: str = "") -> list[PostRef]:
        """A header line, then every card (a terminal has no threads, so nothing is hidden)."""
        if not self._json:
            self._console.print(Text(f"── {title or f'{len(cards)} new papers'} ──", style="bold magenta"))
        return [await self.post(destination, card) for card in cards]

    async def show_reply(self, reply: Reply) -> None:
        """A command's answer: its text, then its cards. An export's file goes to stdout alone, whole, so
        ``paperbot ask "/papers export" > saved.bib`` is the file; its caption goes to stderr."""
        if reply.file is not None:
            sys.stderr.write(reply.text + "\n")
            self._stream.write(reply.file.content + "\n")
            self._stream.flush()
            return
        self._stream.write(reply.text + "\n")
        self._stream.flush()
        for card in reply.cards:
            self._console.print(render(card))


def card_json(card: Card, destination: Destination) -> dict[str, object]:
    """The ``--json`` form of a delivered card."""
    return {
        "id": card.paper_id,
        "title": card.title,
        "url": card.url,
        "tldr": card.tldr,
        "authors": list(card.authors),
        "organization": card.organization,
        "date": card.date,
        "upvotes": card.upvotes,
        "links": dict(card.links),
        "keywords": list(card.keywords),
        "why": list(card.why),
        "sources": list(card.sources),
        "destination": destination.key,
    }


def render(card: Card) -> Text:
    """One block per paper: title, byline, facts, TL;DR, keywords, links."""
    text = Text()
    text.append(card.title, style="bold")
    text.append("\n  ")
    text.append(card.credit, style="cyan")
    text.append("\n  " + " · ".join(card.facts), style="dim")
    text.append("\n  TL;DR ", style="bold green")
    text.append(card.tldr)
    if card.keywords:
        text.append("\n  keywords: " + ", ".join(card.keywords[:8]), style="dim")
    for label, url in card.links:
        text.append(f"\n  {label:<13}", style="dim")
        text.append(url, style="blue")
    text.append("\n")
    return text
