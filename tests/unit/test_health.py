"""Readiness (``bot.service.health.Status``) and the metrics it renders, on fakeredis with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import fakeredis
import pytest

from bot.model import Delivery, Destination
from bot.service.health import Status
from bot.service.metrics import Metrics
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import make_paper


class Connection:
    """A listener as readiness sees it."""

    def __init__(self, connected: bool, one_per_bot: bool = False) -> None:
        self.connected = connected
        self.one_connection_per_bot = one_per_bot

    async def run(self, commands: object) -> None:  # the Listener port; never run here
        raise NotImplementedError


@pytest.fixture
def parts():  # type: ignore[no-untyped-def]
    server = fakeredis.FakeServer()
    client = fakeredis.FakeAsyncRedis(server=server, protocol=2)
    return RedisStore(client, "t:"), RedisCoordination(client, "t:"), server


async def test_a_polling_process_is_ready_until_no_poll_finished_in_time(parts) -> None:  # type: ignore[no-untyped-def]
    store, coordination, _ = parts
    now = [datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()]
    status = Status(Metrics(), store, coordination, {}, poll_overdue=3600, clock=lambda: now[0])
    assert await status.problems() == []  # just started: nothing was due yet
    now[0] += 3601
    assert await status.problems() == ["poll: none for 60 minutes (allowed: 60)"]
    await coordination.record_health("arxiv", False, "503", at=datetime.fromtimestamp(now[0] - 60, UTC))
    assert await status.problems() == []  # a failed poll is still a poll: the sources' alerts tell the rest
    worker = Status(Metrics(), store, coordination, {}, poll_overdue=None, clock=lambda: now[0] + 86400)
    assert await worker.problems() == []  # a worker never polls


async def test_a_chat_connection_counts_when_up_or_held_by_another_process(parts) -> None:  # type: ignore[no-untyped-def]
    store, coordination, _ = parts
    listeners = {"slack": Connection(True), "discord": Connection(False, one_per_bot=True)}
    status = Status(Metrics(), store, coordination, listeners, poll_overdue=None)  # type: ignore[arg-type]
    assert await status.problems() == ["discord: not connected"]
    await coordination.lock("listener:discord", "other-host-1", 60)
    assert await status.problems() == []
    listeners["slack"].connected = False
    assert await status.problems() == ["slack: not connected"]


async def test_a_store_that_does_not_answer_is_the_one_problem_and_metrics_still_render(parts) -> None:  # type: ignore[no-untyped-def]
    store, coordination, server = parts
    await store.commit([make_paper("2611.00001")], [Delivery(Destination("slack", "C1"), "2611.00001")])
    metrics = Metrics()
    status = Status(metrics, store, coordination, {"slack": Connection(False)}, poll_overdue=60)
    body, content_type = await status.exposition()
    assert content_type.startswith("text/plain")
    assert b"paperbot_outbox_depth 1.0" in body
    assert b"paperbot_store_up 1.0" in body
    server.connected = False  # Redis goes away
    problems = await status.problems()
    assert len(problems) == 1
    assert problems[0].startswith("store: ")
    body, _ = await status.exposition()
    assert b"paperbot_store_up 0.0" in body
    assert b"paperbot_outbox_depth 1.0" in body  # as last read
