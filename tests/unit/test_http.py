"""The shared GET: what is retried, how long it waits, and what it gives up with."""

import random

import httpx
import pytest

from bot.errors import SourceError, SourceUnreachableError
from bot.pacing import MinInterval
from bot.sources.http import USER_AGENT, RetryingGetter, make_client


def scripted(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    queue, seen = list(responses), []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler), seen


def getter(transport: httpx.MockTransport, sleeps: list[float], token: str | None = None, retries: int = 3) -> RetryingGetter:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = make_client(5.0, token, transport)
    return RetryingGetter(client, retries=retries, backoff=1.0, backoff_max=8.0, sleep=sleep, rng=random.Random(1))


async def test_retries_429_and_5xx_then_succeeds_honouring_retry_after() -> None:
    transport, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}, text="Rate exceeded."),
        httpx.Response(503),
        httpx.Response(200, json=[]),
    )
    sleeps: list[float] = []
    response = await getter(transport, sleeps).get("https://hf.test/api/daily_papers")
    assert response.status_code == 200
    assert len(seen) == 3
    assert sleeps[0] >= 7  # Retry-After is a floor
    assert 1.0 <= sleeps[1] <= 2.0  # 2**1 with jitter in [0.5, 1)


async def test_gives_up_with_a_source_error_naming_the_url_and_status() -> None:
    transport, _ = scripted(*[httpx.Response(500)] * 4)
    sleeps: list[float] = []
    with pytest.raises(SourceError, match=r"GET https://hf.test/x: HTTP 500 after 4 attempts") as caught:
        await getter(transport, sleeps).get("https://hf.test/x")
    assert not isinstance(caught.value, SourceUnreachableError)
    assert len(sleeps) == 3
    assert all(s <= 8.0 for s in sleeps)


async def test_timeouts_and_connection_errors_mean_unreachable() -> None:
    transport, _ = scripted(httpx.ConnectTimeout("slow"), httpx.ConnectError("refused"))
    with pytest.raises(SourceUnreachableError, match="connection failed"):
        await getter(transport, [], retries=1).get("https://hf.test/x")


async def test_other_client_errors_are_returned_at_once() -> None:
    transport, seen = scripted(httpx.Response(400, json={"error": "bad date"}))
    response = await getter(transport, []).get("https://hf.test/x")
    assert response.status_code == 400
    assert len(seen) == 1


async def test_a_very_long_retry_after_gives_up_this_cycle_instead_of_hanging() -> None:
    transport, _ = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(SourceError, match="asked to wait 3600s"):
        await getter(transport, []).get("https://hf.test/x")


async def test_user_agent_always_and_token_only_when_asked() -> None:
    transport, seen = scripted(httpx.Response(200), httpx.Response(200))
    g = getter(transport, [], token="hf_abcdef123456")
    await g.get("https://hf.test/a", bearer=True)
    await g.get("https://arxiv.test/b")
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert seen[0].headers["Authorization"] == "Bearer hf_abcdef123456"
    assert "Authorization" not in seen[1].headers


async def test_min_interval_spaces_calls() -> None:
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pace = MinInterval(3.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        async with pace:
            now[0] += 0.5  # the request itself
    assert waits == [3.0, 3.0]  # measured from the end of the previous request
