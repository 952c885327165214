"""Card → discord.Embed. Pure functions: markdown and mentions escaped, every Discord limit enforced.

Limits (platforms.md rule 11): title 256, description 4096, 25 fields, field name 256 and value
1024, footer 2048, and 6000 characters over all embeds of one message; content 2000; 10 embeds.
discord.py checks only the embed count, so the renderer checks the characters (``len(embed)``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

import discord
from discord.utils import escape_mentions

from bot.model import Card, upvotes
from bot.text import fit_escaped, shorten

TITLE, DESCRIPTION, FIELD_VALUE, FOOTER, CONTENT, MESSAGE_TOTAL, EMBEDS = 256, 4096, 1024, 2048, 2000, 6000, 10
DIGEST_EMBEDS = 5  # cards in one digest message: a phone shows them without endless scrolling
CARD_BUDGET = 1800  # one card's characters, so that a digest of three still fits in one message
COLOUR = discord.Colour(0x1D3557)


# What Discord can read as markup: emphasis, code, spoilers, quotes, headings, lists, <…>, and masked
# links (escaped brackets are enough: "\[x\](url)" is no link).
_MARKDOWN = re.compile(r"([\\*_~`|>#\-\[\]<])")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(?=//)")


def escape(text: str) -> str:
    """Untrusted text as literal Discord text: every markdown character backslash-escaped (discord.py's
    ``escape_markdown`` leaves the second masked link of a line live), mentions defused, and bare URLs
    broken with a zero-width space so they cannot become links."""
    text = _SCHEME.sub(lambda m: m.group(1) + ":\u200b", escape_mentions(text))
    return _MARKDOWN.sub(r"\\\1", text)


def link(label: str, url: str) -> str:
    """One of our own links, ``[label](<url>)``: the URL percent-encoded so that no character in it can
    end the link or start another, and wrapped in angle brackets (no preview)."""
    return f"[{label}](<{quote(url, safe=_URL_SAFE)}>)"


_URL_SAFE = ":/?#@!$&'+,;=%~-._"  # everything else in a feed's URL is percent-encoded


def fit(text: str, limit: int) -> str:
    """``text`` shortened at a word boundary so that, escaped, it fits in ``limit`` characters."""
    return fit_escaped(text, limit, escape)


def embed_for(card: Card, budget: int = CARD_BUDGET) -> discord.Embed:
    """One paper as an embed: linked title, TL;DR, authors, organization, upvotes, links, why; thumbnail; footer."""
    embed = discord.Embed(title=fit(card.title, min(TITLE, 250)), url=card.url or None, colour=COLOUR)
    if card.byline:
        embed.add_field(name="Authors", value=fit(card.credit, 300), inline=False)
    if card.organization:
        embed.add_field(name="Organization", value=fit(card.organization, 200), inline=True)
    if card.upvotes is not None:
        embed.add_field(name="Hugging Face", value=upvotes(card.upvotes), inline=True)
    links = ""
    for label, url in card.links:
        if label in ("arXiv", "PDF", "Code", "Project"):
            more = (" · " if links else "") + link(label, url)
            if len(links) + len(more) <= FIELD_VALUE:  # whole links only, never one cut in half
                links += more
    if links:
        embed.add_field(name="Links", value=links, inline=False)
    if card.why:
        embed.add_field(name="Matched", value=fit(", ".join(card.why), 300), inline=False)
    if card.thumbnail:
        embed.set_thumbnail(url=card.thumbnail)
    # Footers are plain text on Discord (no markdown, no mentions): escaping would show the backslashes.
    embed.set_footer(
        text=shorten(" · ".join(f for f in (card.date, ", ".join(card.sources), f"arXiv {card.paper_id}") if f), 200)
    )
    embed.description = fit(card.tldr, max(100, min(DESCRIPTION, budget - len(embed))))
    return embed


def batches(embeds: Sequence[discord.Embed], most: int = DIGEST_EMBEDS) -> list[list[discord.Embed]]:
    """Group embeds into messages: at most ``most`` each (Discord allows 10; five read well on a phone)
    and 6000 characters in all."""
    messages: list[list[discord.Embed]] = []
    size = 0
    for embed in embeds:
        if not messages or len(messages[-1]) >= min(most, EMBEDS) or size + len(embed) > MESSAGE_TOTAL:
            messages.append([])
            size = 0
        messages[-1].append(embed)
        size += len(embed)
    return messages


def content(text: str) -> str:
    """Message content (a command's reply): escaped and within 2000 characters."""
    return fit(text, CONTENT)
