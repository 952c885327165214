"""Nothing an adapter (or the boundary) raises ends delivery: a destination fails alone, the loop goes on,
and a loop that stops anyway shows in /readyz."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest

from bot.flow.delivery import Deliverer
from bot.model import Delivery, Destination
from bot.service import runner
from bot.service.health import Status
from bot.service.metrics import Metrics
from bot.service.runner import App, Schedule, deliver_forever
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import RecordingAdapter, make_paper

pytestmark = pytest.mark.timeout(30)
OK, BROKEN = Destination("console", "ok"), Destination("console", "broken")


class SdkBug(Exception):
    """What an SDK raises that no adapter translated (slack_sdk's SlackTokenRotationError, say)."""


@pytest.fixture
async def parts() -> AsyncIterator[tuple[RedisStore, RedisCoordination]]:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    yield RedisStore(client, "t:"), RedisCoordination(client, "t:")
    await client.aclose()


async def test_an_adapter_raising_something_foreign_fails_its_destination_alone(
    parts: tuple[RedisStore, RedisCoordination], caplog: pytest.LogCaptureFixture
) -> None:
    store, coordination = parts
    papers = [make_paper(f"2612.0000{n}") for n in range(3)]
    await store.commit(papers, [Delivery(d, p.id) for p in papers for d in (OK, BROKEN)])
    adapter = RecordingAdapter()
    adapter.refuse("broken", SdkBug("token rotation failed"))  # type: ignore[arg-type]
    deliverer = Deliverer(store, store, {"console": adapter}, "w", 60, backoff=0, coordination=coordination)
    with caplog.at_level(logging.ERROR, logger="bot.flow.delivery"):
        report = await deliverer.deliver()
    assert [d.channel for d, _ in adapter.posts] == ["ok", "ok", "ok"]
    assert report.delivered == 3
    assert report.failed == {"console:broken": "unexpected SdkBug: token rotation failed"}
    assert [r.getMessage() for r in caplog.records] == ["delivery failed unexpectedly; will retry"]
    adapter.refuse("broken", None)
    await coordination.unpause(BROKEN)
    assert (await deliverer.deliver()).delivered == 3  # nothing was lost: the three wait and go out


class FlakyOutbox(RedisStore):
    """The boundary answering something unexpected once (a Redis client bug, say), then normally."""

    failures = 1

    async def take(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise ValueError("unexpected reply")
        return await super().take(*args, **kwargs)


async def test_the_delivery_loop_outlives_an_unexpected_error(monkeypatch: pytest.MonkeyPatch) -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    store, coordination = FlakyOutbox(client, "t:"), RedisCoordination(client, "t:")
    paper = make_paper("2612.00009")
    await store.commit([paper], [Delivery(OK, paper.id)])
    adapter = RecordingAdapter()
    deliverer = Deliverer(store, store, {"console": adapter}, "w", 60, coordination=coordination)
    app = App(None, deliverer, None, store, coordination, store, Schedule(deliver_seconds=0.2), "worker")  # type: ignore[arg-type]
    monkeypatch.setattr(runner, "RETRY_FIRST", 0.05)  # shortened for the test (default 5 s, doubling)
    loop = asyncio.create_task(deliver_forever(app))
    for _ in range(200):
        if adapter.posts:
            break
        await asyncio.sleep(0.02)
    assert [d for d, _ in adapter.posts] == [OK]
    assert not loop.done()
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await client.aclose()


async def test_a_stopped_delivery_loop_makes_the_process_unready(parts: tuple[RedisStore, RedisCoordination]) -> None:
    store, coordination = parts
    status = Status(Metrics(), store, coordination, {}, poll_overdue=None)

    async def stops() -> None:
        raise RuntimeError("gone")

    task = asyncio.create_task(stops())
    status.watch_task("delivery", task)
    await asyncio.gather(task, return_exceptions=True)
    assert await status.problems() == ["delivery: stopped (RuntimeError: gone)"]


async def test_a_task_cancelled_mid_command_stops_on_every_backend(store: RedisStore) -> None:
    """redis-py answers a command whose task was cancelled meanwhile as if nothing happened; the store
    raises the cancellation itself once the command is done, so a loop told to stop does stop."""
    after: list[str] = []

    async def beat() -> None:
        while True:
            await store.heartbeat("w", 60)
            after.append("went on")
            await asyncio.sleep(5)

    for turns in range(4):  # cancelled before, and at several points during, its first command
        task = asyncio.create_task(beat())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
        assert task.cancelled()
    assert after == []
