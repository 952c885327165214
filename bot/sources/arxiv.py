"""arXiv export API (Atom): newest papers in the configured categories, at most one request per 3 s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from bot.errors import SourceError
from bot.ids import bare_arxiv_id
from bot.model import Links, Paper
from bot.pacing import MinInterval
from bot.sources.http import RetryingGetter
from bot.sources.skipped import Skipped
from bot.text import clean, parse_time

log = logging.getLogger(__name__)

NAME = "arxiv"
_NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
_MAX_PAGES = 10


def _text(entry: Element, path: str) -> str:
    node = entry.find(path, _NS)
    return clean("".join(node.itertext())) if node is not None else ""


def parse_feed(xml: bytes | str, where: str = "arXiv", skipped: Skipped | None = None) -> list[Paper]:
    """Papers from an arXiv API Atom feed, old (pre-2025-11) or new format; ``SourceError`` for error feeds.
    Malformed entries are counted in ``skipped`` (or, without one, logged here as one line)."""
    try:
        root = fromstring(xml)
    except (ParseError, DefusedXmlException) as exc:
        raise SourceError(f"{where}: the answer is not an Atom feed ({exc})") from None
    if root.tag != f"{{{_NS['atom']}}}feed":
        raise SourceError(f"{where}: expected an Atom <feed>, got <{root.tag}>")
    papers, counted = [], skipped or Skipped()
    for entry in root.findall("atom:entry", _NS):
        raw_id = _text(entry, "atom:id")
        if "/api/errors" in raw_id:
            raise SourceError(f"{where}: arXiv reported an error: {_text(entry, 'atom:summary') or raw_id}")
        paper = _paper(entry)
        if paper is None:
            counted.add(f"entry {raw_id[:80]!r} has no usable id, title or date")
        else:
            papers.append(paper)
    if skipped is None:
        counted.log(log, where)
    return papers


def _paper(entry: Element) -> Paper | None:
    paper_id = bare_arxiv_id(_text(entry, "atom:id"))
    title = _text(entry, "atom:title")
    published = parse_time(_text(entry, "atom:published")) or parse_time(_text(entry, "atom:updated"))
    if not paper_id or not title or published is None:
        return None
    primary = entry.find("arxiv:primary_category", _NS)
    categories = [primary.get("term", "")] if primary is not None else []
    categories += [c.get("term", "") for c in entry.findall("atom:category", _NS)]
    return Paper(
        id=paper_id,
        title=title,
        abstract=_text(entry, "atom:summary"),
        authors=tuple(a for a in (_text(node, "atom:name") for node in entry.findall("atom:author", _NS)) if a),
        published=published,
        links=Links(abstract=f"https://arxiv.org/abs/{paper_id}", pdf=f"https://arxiv.org/pdf/{paper_id}"),
        sources=frozenset({NAME}),
        categories=tuple(dict.fromkeys(c for c in categories if c)),
    )


class ArxivSource:
    """Newest submissions in ``categories`` since ``lookback_days`` before today (UTC), newest first."""

    name = NAME

    def __init__(
        self,
        getter: RetryingGetter,
        api_url: str,
        categories: tuple[str, ...],
        lookback_days: int = 4,
        page_size: int = 200,
        pace: MinInterval | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._get = getter.get
        self._url = api_url
        self._query = " OR ".join(f"cat:{c}" for c in categories)
        self._lookback_days = lookback_days
        self._page_size = page_size
        self._pace = pace or MinInterval(3.0)
        self._today = today

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        """Page newest-first until a page is short or reaches past the window (wider after downtime)."""
        since = datetime.combine(self._today() - timedelta(days=max(self._lookback_days, catch_up)), time(), UTC)
        papers: list[Paper] = []
        retried_empty, skipped = False, Skipped()
        try:
            await self._pages(since, papers, skipped, retried_empty)
        finally:
            skipped.log(log, NAME)  # one line for the whole fetch, however many pages
        return papers

    async def _pages(self, since: datetime, papers: list[Paper], skipped: Skipped, retried_empty: bool) -> None:
        for page in range(_MAX_PAGES):
            params = {
                "search_query": self._query,
                "sortBy": "submittedDate",
                "sortOrder": "descending",
                "start": page * self._page_size,
                "max_results": self._page_size,
            }
            async with self._pace:
                response = await self._get(self._url, params)
            where = f"GET {self._url} (page {page + 1})"
            if response.status_code != 200:
                raise SourceError(f"{where}: HTTP {response.status_code} {clean(response.text)[:120]}".rstrip())
            batch = parse_feed(response.content, where, skipped)
            if not batch and page == 0 and self._today().weekday() < 5 and not retried_empty:
                # arXiv sometimes answers 200 with nothing when it is struggling: ask once more before believing it.
                retried_empty = True
                log.info("arXiv answered empty on a weekday; asking again", extra={"kv": {"query": self._query}})
                async with self._pace:
                    response = await self._get(self._url, params)
                if response.status_code == 200:
                    batch = parse_feed(response.content, where, skipped)
            papers.extend(p for p in batch if p.published >= since)
            if len(batch) < self._page_size or min(p.published for p in batch) < since:
                return
