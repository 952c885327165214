"""The one HTTP client every source shares, and a GET that retries what is worth retrying.

Every request is bounded: ``http.timeout`` per phase, a total deadline per attempt (a server that
trickles one byte a second cannot hold a poll), and a cap on the decompressed body (a gzip bomb is
an error, not a gigabyte of memory)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
import zlib
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot import __version__
from bot.errors import SourceError, SourceUnreachableError
from bot.pacing import Sleep, backoff

log = logging.getLogger(__name__)

USER_AGENT = f"paperbot/{__version__} (research paper chat bot; python-httpx)"
_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_RETRY_AFTER = 300.0  # a longer Retry-After means "not this cycle"; the next poll will try again
MAX_BODY = 32 * 1024 * 1024  # decompressed; a busy Daily Papers page is about 2 MB
DEADLINE = 120.0  # seconds for one attempt, from connecting to the last byte


def make_client(timeout: float, token: str | None = None, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The shared client: timeouts on every phase, a User-Agent naming paperbot, redirects followed."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        headers=headers,
        follow_redirects=True,
        transport=transport,
        # The token is attached only to requests that ask for it, so it never reaches another host.
        auth=_BearerForHost(token) if token else None,
    )


class _BearerForHost(httpx.Auth):
    """Adds ``Authorization: Bearer`` only for requests marked with the ``bearer`` extension."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.extensions.get("bearer"):
            request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


@dataclass(frozen=True, slots=True)
class Answer:
    """A response read whole, within the size cap: status, headers and the decompressed body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not JSON or is nested too deeply to parse."""
        return parse_json(self.content)


def parse_json(raw: str | bytes) -> Any:
    """``json.loads`` that fails with ``ValueError`` on absurd nesting too (it would raise ``RecursionError``)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


@dataclass
class RetryingGetter:
    """GET with exponential backoff and jitter on 429, 5xx, timeouts and connection errors.

    ``Retry-After`` is honoured (seconds or an HTTP date). Other 4xx answers are returned at once:
    retrying a bad request only spends the rate limit.
    """

    client: httpx.AsyncClient
    retries: int = 4
    backoff: float = 1.0
    backoff_max: float = 60.0
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)
    deadline: float = DEADLINE
    max_body: int = MAX_BODY

    async def get(self, url: str, params: Mapping[str, Any] | None = None, *, bearer: bool = False) -> Answer:
        """The final response (2xx or a non-retryable 4xx); ``SourceError`` once retries are spent, when
        an attempt outlives the deadline, or when the body is larger than the cap."""
        what = f"GET {url}"
        for attempt in range(self.retries + 1):
            try:
                async with asyncio.timeout(self.deadline):
                    response = await self._read(url, params, bearer, what)
            except TimeoutError:
                # Not retried: a server this slow would spend the whole poll's budget again.
                raise SourceError(f"{what}: no complete answer within {self.deadline:.0f}s") from None
            except httpx.TimeoutException:
                problem, wait = "timed out", None
            except httpx.TransportError as exc:
                problem, wait = f"connection failed ({type(exc).__name__})", None
            else:
                if response.status_code not in _RETRY_STATUS:
                    return response
                problem, wait = f"HTTP {response.status_code}", _retry_after(response.headers)
                if wait is not None and wait > _MAX_RETRY_AFTER:
                    raise SourceError(f"{what}: HTTP {response.status_code}, asked to wait {wait:.0f}s; giving up this cycle")
            if attempt == self.retries:
                error = SourceError if problem.startswith("HTTP") else SourceUnreachableError
                raise error(f"{what}: {problem} after {attempt + 1} attempts")
            delay = self._delay(attempt, wait)
            log.info(
                "retrying request",
                extra={"kv": {"url": url, "problem": problem, "attempt": attempt + 1, "delay": round(delay, 2)}},
            )
            await self.sleep(delay)
        raise AssertionError("unreachable")

    async def _read(self, url: str, params: Mapping[str, Any] | None, bearer: bool, what: str) -> Answer:
        async with self.client.stream("GET", url, params=params, extensions={"bearer": bearer}) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_body:
                raise SourceError(f"{what}: the answer is {int(declared) // 1_000_000} MB, over the {self._cap_mb} MB cap")
            body = bytearray()
            encoding = response.headers.get("Content-Encoding", "").strip().lower()
            if encoding in ("gzip", "deflate"):
                # Inflated here, never more than the cap at a time: httpx would inflate each network chunk
                # whole (64 KB of a gzip bomb is 64 MB of memory).
                inflater = zlib.decompressobj(47)  # 47: a gzip or a zlib header, whichever it is
                async for raw in response.aiter_raw():
                    while raw:
                        body += inflater.decompress(raw, self.max_body + 1 - len(body))
                        self._check(body, what)
                        raw = inflater.unconsumed_tail
            else:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    self._check(body, what)
            return Answer(response.status_code, response.headers, bytes(body))

    def _check(self, body: bytearray, what: str) -> None:
        if len(body) > self.max_body:
            raise SourceError(f"{what}: the answer is over the {self._cap_mb} MB cap (decompressed); not read further")

    @property
    def _cap_mb(self) -> int:
        return self.max_body // (1024 * 1024)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        return max(backoff(attempt, self.backoff, self.backoff_max, self.rng), retry_after or 0.0)


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
