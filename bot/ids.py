"""arXiv identifiers: one canonical, version-less form for every way a source spells them."""

from __future__ import annotations

import re

# New style YYMM.NNNN(N) and old style archive(.subject)/YYMMNNN, each with an optional vN.
_NEW = r"\d{4}\.\d{4,5}"
_OLD = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ID = re.compile(rf"(?P<id>{_NEW}|{_OLD})(?:v(?P<version>\d+))?$")
_PREFIXES = re.compile(r"^(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|oai:arXiv\.org:|arXiv:)", re.I)


def bare_arxiv_id(raw: str) -> str | None:
    """Return the bare arXiv id (no URL, no ``oai:`` prefix, no ``vN``), or None if ``raw`` is not one.

    >>> bare_arxiv_id("http://arxiv.org/abs/2602.23229v2")
    '2602.23229'
    >>> bare_arxiv_id("oai:arXiv.org:hep-ex/0307015v1")
    'hep-ex/0307015'
    """
    text = _PREFIXES.sub("", raw.strip())
    text = text.removesuffix(".pdf")
    match = _ID.fullmatch(text)
    return match.group("id") if match else None
