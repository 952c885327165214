"""Paper → Card: the byline, the TL;DR and the links a reader wants, computed without a network call."""

from __future__ import annotations

import re

from bot.model import Card, Paper
from bot.text import clean, delatex, shorten

# A period that ends these is not the end of a sentence.
_ABBREVIATIONS = {
    "e.g",
    "i.e",
    "et al",
    "etc",
    "vs",
    "fig",
    "figs",
    "eq",
    "eqs",
    "sec",
    "cf",
    "approx",
    "resp",
    "dr",
    "prof",
    "mr",
    "ms",
    "no",
    "vol",
    "al",
    "ref",
    "refs",
    "tab",
    "appx",
    "ca",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"'(\[])")
_LAST_WORD = re.compile(r"(\S*)\s*$")
_WORD_WINDOW = 40  # an abbreviation is short: look this far back for it, never at the whole sentence


def sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping abbreviations (``e.g.``, ``et al.``) and decimals intact.
    Linear in the text's length: each candidate end looks only at the few characters before it."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        window = text[max(start, match.start() - _WORD_WINDOW) : match.start()]
        found = _LAST_WORD.search(window)
        last_word = (found.group(1) if found else "").rstrip(".!?\"')]").lower()
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
            continue
        candidate = text[start : match.start()].strip()
        out.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def extractive_summary(abstract: str, limit: int = 280) -> str:
    """The leading sentences of the abstract that fit in ``limit`` characters; never cut mid-word."""
    # Only the leading sentences can fit: never split more of the abstract than could be chosen.
    text = delatex(abstract[: limit * 4 + 200])
    chosen = ""
    for sentence in sentences(text):
        joined = f"{chosen} {sentence}".strip()
        if len(joined) > limit:
            break
        chosen = joined
    return chosen or shorten(text, limit)


def byline(authors: tuple[str, ...], shown: int = 3) -> str:
    """``A, B, C et al.`` for long author lists; ``A and B`` for two; empty for none."""
    if len(authors) <= 1:
        return "".join(authors)
    if len(authors) == 2:
        return f"{authors[0]} and {authors[1]}"
    if len(authors) <= shown:
        return ", ".join(authors[:-1]) + f" and {authors[-1]}"
    return ", ".join(authors[:shown]) + " et al."


def to_card(paper: Paper, why: tuple[str, ...] = (), tldr_limit: int = 280) -> Card:
    """Build the neutral card for ``paper``; ``why`` says which subscriptions matched."""
    tldr = clean(paper.ai_summary) or extractive_summary(paper.abstract, tldr_limit)
    links = (
        ("Hugging Face", paper.links.hf),
        ("arXiv", paper.links.abstract),
        ("PDF", paper.links.pdf),
        ("Code", paper.links.code),
        ("Project", paper.links.project),
    )
    return Card(
        paper_id=paper.id,
        title=delatex(paper.title),
        url=paper.links.hf or paper.links.abstract,
        authors=paper.authors,
        byline=byline(paper.authors),
        tldr=shorten(tldr, max(tldr_limit, 1)),
        organization=paper.organization,
        date=paper.published.date().isoformat(),
        upvotes=paper.upvotes,
        links=tuple((label, url) for label, url in links if url),
        keywords=paper.keywords,
        why=tuple(clean(w) for w in why),  # subscription text typed in chat: no bidi or control characters
        thumbnail=paper.thumbnail,
        sources=tuple(sorted(paper.sources)),
    )
