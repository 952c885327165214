"""Saved papers as BibTeX and Markdown."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.cards import byline
from bot.model import Paper
from bot.text import delatex

_BIBTEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>])")


def bibtex_escape(text: str) -> str:
    """Text safe inside a braced BibTeX field: every special character escaped, braces balanced."""
    return "".join(_BIBTEX_SPECIALS.get(ch, ch) for ch in text)


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in plain if ch.isascii() and ch.isalnum()).lower()


def citation_key(paper: Paper, taken: set[str]) -> str:
    """``lastname + year + firstword``, e.g. ``garosi2026large``; a letter is added on a clash."""
    surname = _ascii(paper.authors[0].split()[-1]) if paper.authors else "anonymous"
    first = next((w for w in (_ascii(w) for w in delatex(paper.title).split()) if len(w) > 3), "paper")
    base = f"{surname or 'anonymous'}{paper.published.year}{first}"
    key, clash = base, 0
    while key in taken:
        key, clash = f"{base}{_letters(clash)}", clash + 1
    taken.add(key)
    return key


def _letters(n: int) -> str:
    """a, b, …, z, aa, ab, …: a clash suffix that stays a valid key however many papers clash."""
    letters = ""
    n += 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return letters


def to_bibtex(papers: Sequence[Paper]) -> str:
    """One ``@misc`` arXiv entry per paper, in the given order."""
    taken: set[str] = set()
    entries = []
    for paper in papers:
        fields = [
            ("title", bibtex_escape(delatex(paper.title))),
            ("author", " and ".join(bibtex_escape(a) for a in paper.authors) or "Anonymous"),
            ("year", str(paper.published.year)),
            ("eprint", paper.id),
            ("archivePrefix", "arXiv"),
        ]
        if paper.categories:
            fields.append(("primaryClass", paper.categories[0]))
        fields.append(("url", paper.links.abstract or f"https://arxiv.org/abs/{paper.id}"))
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@misc{{{citation_key(paper, taken)},\n{body}\n}}")
    return "\n\n".join(entries) + ("\n" if entries else "")


def markdown_escape(text: str) -> str:
    """Text that renders literally in Markdown."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def to_markdown(papers: Sequence[Paper]) -> str:
    """A bullet per paper: linked title, authors, year and arXiv id."""
    lines = []
    for paper in papers:
        url = paper.links.abstract or f"https://arxiv.org/abs/{paper.id}"
        authors = markdown_escape(byline(paper.authors)) or "Anonymous"
        lines.append(f"- [{markdown_escape(delatex(paper.title))}]({url}) — {authors} ({paper.published.year}), arXiv:{paper.id}")
    return "\n".join(lines) + ("\n" if lines else "")
