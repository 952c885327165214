"""Hugging Face Daily Papers: the JSON API, with the server-rendered page as a fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.errors import SourceError, SourceUnreachableError
from bot.ids import bare_arxiv_id
from bot.model import Links, Paper
from bot.sources.http import RetryingGetter, parse_json
from bot.sources.skipped import Skipped
from bot.text import clean, https_url, parse_time

log = logging.getLogger(__name__)

NAME = "huggingface"
_MAX_PAGES = 20  # 2,000 papers a day is ten times the busiest day seen; stop a runaway pager


def _int(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _organization(*candidates: Any) -> str:
    for org in candidates:
        if isinstance(org, dict):
            name = clean(org.get("fullname") or org.get("name"))
            if name:
                return name
    return ""


def paper_from_item(item: dict[str, Any]) -> Paper:
    """One Daily Papers item (``{"paper": {...}, ...}``) as a Paper; ``ValueError`` if it has no usable id or title."""
    nested = item.get("paper")
    inner: dict[str, Any] = nested if isinstance(nested, dict) else item
    paper_id = bare_arxiv_id(str(inner.get("id", "")))
    if not paper_id:
        raise ValueError(f"item without an arXiv id: {str(inner.get('id'))[:40]!r}")
    title = clean(inner.get("title") or item.get("title"))
    if not title:
        raise ValueError(f"{paper_id}: item without a title")
    authors = tuple(
        clean(a.get("name"))
        for a in inner.get("authors") or []
        if isinstance(a, dict) and not a.get("hidden") and clean(a.get("name"))
    )
    published = parse_time(inner.get("publishedAt")) or parse_time(item.get("publishedAt"))
    featured = parse_time(inner.get("submittedOnDailyAt"))
    when = published or featured
    if when is None:
        raise ValueError(f"{paper_id}: no usable publication date")
    keywords = inner.get("ai_keywords") or []
    return Paper(
        id=paper_id,
        title=title,
        abstract=clean(inner.get("summary") or item.get("summary")),
        authors=authors,
        published=when,
        links=Links(
            hf=f"https://huggingface.co/papers/{paper_id}",
            abstract=f"https://arxiv.org/abs/{paper_id}",
            pdf=f"https://arxiv.org/pdf/{paper_id}",
            code=https_url(inner.get("githubRepo")),
            project=https_url(inner.get("projectPage")),
        ),
        sources=frozenset({NAME}),
        ai_summary=clean(inner.get("ai_summary")),
        keywords=tuple(clean(k) for k in keywords if isinstance(k, str) and clean(k)),
        organization=_organization(inner.get("organization"), item.get("organization")),
        upvotes=_int(inner.get("upvotes")),
        github_stars=_int(inner.get("githubStars")),
        num_comments=_int(item.get("numComments")),
        thumbnail=https_url(item.get("thumbnail"))
        or f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{paper_id}.png",
        featured_on=featured,
    )


def papers_from_items(items: Iterable[Any], where: str, skipped: Skipped | None = None) -> list[Paper]:
    """Parse every item, skipping the ones that are broken; one bad item must not hide the rest. The
    skipped ones are counted in ``skipped`` (or, without one, logged here as one line)."""
    papers, counted = [], skipped or Skipped()
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {type(item).__name__}")
            papers.append(paper_from_item(item))
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            counted.add(str(exc))
    if skipped is None:
        counted.log(log, where)
    return papers


def papers_from_page(html: str, where: str, skipped: Skipped | None = None) -> list[Paper]:
    """Papers from the ``data-target="DailyPapers"`` JSON of a ``/papers/date/...`` page."""
    from bs4 import BeautifulSoup  # ~0.1 s to import, and only this fallback needs it

    soup = BeautifulSoup(html, "html.parser")
    node = soup.find(None, {"data-target": "DailyPapers"})
    raw = node.get("data-props") if node is not None else None
    if not isinstance(raw, str):
        raise SourceError(f"{where}: no DailyPapers data on the page; the Hugging Face page layout changed")
    try:
        props = parse_json(raw)
    except ValueError as exc:
        problem = f"the DailyPapers data is not usable JSON ({str(exc)[:80]})"
        raise SourceError(f"{where}: {problem}; the page layout changed") from None
    items = props.get("dailyPapers") if isinstance(props, dict) else None
    if not isinstance(items, list):
        raise SourceError(f"{where}: the DailyPapers data has no dailyPapers list; the page layout changed")
    return papers_from_items(items, where, skipped)


class HuggingFaceSource:
    """Daily Papers for today and ``lookback_days`` days before it (UTC), every page of each day."""

    name = NAME

    def __init__(
        self,
        getter: RetryingGetter,
        endpoint: str,
        lookback_days: int = 2,
        page_size: int = 100,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        self._get = getter.get
        self._endpoint = endpoint.rstrip("/")
        self._lookback_days = lookback_days
        self._page_size = page_size
        self._today = today

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        """Every paper on the lists of the window's days (wider after downtime: ``catch_up`` days).
        A day that fails is skipped with a warning; ``SourceError`` only if every day failed."""
        today = self._today()
        papers: list[Paper] = []
        failures: list[str] = []
        skipped = Skipped()
        days = max(self._lookback_days, catch_up)
        try:
            for back in range(days + 1):
                day = today - timedelta(days=back)
                try:
                    papers.extend(await self._day(day, skipped))
                except SourceUnreachableError:
                    raise  # the host is down: the other days would only repeat the wait
                except SourceError as exc:
                    failures.append(str(exc))
                    log.warning("a Daily Papers day failed", extra={"kv": {"day": day.isoformat(), "problem": str(exc)}})
        finally:
            skipped.log(log, NAME)  # one line for the whole fetch, however many pages and days
        if len(failures) == days + 1:
            raise SourceError(f"every day failed; last: {failures[-1]}")
        return papers

    async def fetch_day(self, day: date) -> list[Paper]:
        """One day's list from the API, or from the page when the API misbehaves."""
        skipped = Skipped()
        try:
            return await self._day(day, skipped)
        finally:
            skipped.log(log, f"{NAME} {day.isoformat()}")

    async def _day(self, day: date, skipped: Skipped) -> list[Paper]:
        try:
            return await self._api_day(day, skipped)
        except SourceUnreachableError:
            raise
        except SourceError as api_problem:
            log.info("falling back to the Daily Papers page", extra={"kv": {"day": day.isoformat(), "problem": str(api_problem)}})
            try:
                return await self._page_day(day, skipped)
            except SourceError as page_problem:
                raise SourceError(f"{api_problem}; fallback page: {page_problem}") from None

    async def _api_day(self, day: date, skipped: Skipped) -> list[Paper]:
        url = f"{self._endpoint}/api/daily_papers"
        papers: list[Paper] = []
        for page in range(_MAX_PAGES):
            params = {"date": day.isoformat(), "p": page, "limit": self._page_size}
            response = await self._get(url, params, bearer=True)
            where = f"GET {url}?date={day.isoformat()}&p={page}"
            if response.status_code != 200:
                raise SourceError(f"{where}: HTTP {response.status_code} {_error_text(response.text)}".rstrip())
            try:
                items = response.json()
            except ValueError:
                raise SourceError(f"{where}: the answer is not JSON") from None
            if not isinstance(items, list):
                raise SourceError(f"{where}: expected a JSON list, got {type(items).__name__}")
            papers.extend(papers_from_items(items, where, skipped))
            if len(items) < self._page_size:
                return papers
        log.warning("stopped paging", extra={"kv": {"day": day.isoformat(), "pages": _MAX_PAGES}})
        return papers

    async def _page_day(self, day: date, skipped: Skipped) -> list[Paper]:
        url = f"{self._endpoint}/papers/date/{day.isoformat()}"
        response = await self._get(url, bearer=True)
        if response.status_code != 200:
            raise SourceError(f"GET {url}: HTTP {response.status_code}")
        return papers_from_page(response.text, f"GET {url}", skipped)


def _error_text(body: str) -> str:
    try:
        data = parse_json(body)
    except ValueError:
        return ""
    return f"({clean(str(data.get('error')))[:200]})" if isinstance(data, dict) and data.get("error") else ""
