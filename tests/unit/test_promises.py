"""README promises that no other test held (each was shown to survive its mutation): one test each.

- "each source a poll budget": a source still answering after it counts as failed, the others go on;
- "rises past a channel's min_upvotes (or an upvotes>=N topic)": the topic alone is enough;
- "the terminal prints updated: <title> — code: <url>": through a poll and a delivery pass;
- "what is already queued goes out while the poll runs, never after it" (``App.cycle``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io

import pytest
import redis.asyncio as redis

from adapters.console import ConsoleAdapter
from bot.flow.delivery import Deliverer
from bot.flow.following import Follower
from bot.flow.poller import POLL_BUDGET, Poller, PollOptions
from bot.model import Channel, Delivery, Destination, Paper
from bot.query.routing import Router, compile_route
from bot.service.runner import App
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import StaticSource, make_paper
from tests.unit.test_poll_and_deliver import ALL, Bot, RecordingAdapter

POPULAR = Destination("console", "popular")
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def coordination(store: RedisStore, redis_client: redis.Redis) -> RedisCoordination:
    return RedisCoordination(redis_client, store.key(""))


class StuckSource:
    """A source that answers only when ``release`` is set (a slow or hung upstream)."""

    def __init__(self, name: str, papers: list[Paper]) -> None:
        self.name, self.papers, self.release = name, papers, asyncio.Event()

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        await self.release.wait()
        return self.papers


def router_for(*channels: Channel):  # type: ignore[no-untyped-def]
    async def router() -> Router:
        return Router([compile_route(c.destination, c.topics, c.catch_all, c.min_upvotes) for c in channels])

    return router


async def test_a_source_past_its_poll_budget_fails_alone(store: RedisStore, coordination: RedisCoordination) -> None:
    assert PollOptions().budget == POLL_BUDGET == 600  # the default a user runs: ten minutes
    stuck, quick = StuckSource("huggingface", []), StaticSource("arxiv", [make_paper("2603.00001")])
    options = PollOptions(budget=0.3)  # shortened for the test
    poller = Poller([stuck, quick], store, router_for(Channel(ALL)), coordination=coordination, options=options)
    report = await asyncio.wait_for(poller.poll(), 10)
    assert report.answered == ["arxiv"]
    assert "poll budget" in report.failed["huggingface"]
    assert report.new == report.queued == 1  # arXiv's paper is committed and queued all the same


async def test_an_upvotes_topic_alone_lets_a_rising_paper_in_once(store: RedisStore, coordination: RedisCoordination) -> None:
    source = StaticSource("hf", [make_paper("2603.00001", title="Reasoning", upvotes=3)])
    channels = [Channel(ALL), Channel(POPULAR, topics=("upvotes>=25",))]  # no min_upvotes: only the topic
    bot = Bot(store, coordination, [source], channels, follow=True)
    await bot.cycle()
    assert bot.adapter.ids("popular") == []
    source.papers = [dataclasses.replace(source.papers[0], upvotes=120)]
    await bot.cycle()
    assert bot.adapter.ids("popular") == ["2603.00001"]
    assert bot.adapter.ids("all") == ["2603.00001"]
    source.papers = [dataclasses.replace(source.papers[0], upvotes=300)]
    await bot.cycle()
    assert bot.adapter.ids("popular") == ["2603.00001"]  # once


async def test_the_terminal_says_what_changed_on_a_posted_card(store: RedisStore, coordination: RedisCoordination) -> None:
    out = io.StringIO()
    first = make_paper("2603.00001", title="Reasoning", upvotes=3)
    source = StaticSource("hf", [first])
    poller = Poller(
        [source],
        store,
        router_for(Channel(ALL)),
        coordination=coordination,
        options=PollOptions(watch=True),
        after_commit=[Follower(store, store).after_commit],
    )
    deliverer = Deliverer(store, store, {"console": ConsoleAdapter(out, color=False)}, "w", 60, coordination=coordination)
    await poller.poll()
    await deliverer.deliver()
    assert "Reasoning" in out.getvalue()
    source.papers = [dataclasses.replace(first, links=dataclasses.replace(first.links, code="https://github.com/a/b"))]
    assert (await poller.poll()).edits == 1
    await deliverer.deliver()
    assert "updated: Reasoning — code: https://github.com/a/b" in out.getvalue().splitlines()[-1]


async def test_what_is_queued_goes_out_while_the_poll_is_still_running(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    waiting = make_paper("2603.00001")
    await store.commit([waiting], [Delivery(ALL, waiting.id)])  # queued by an earlier poll
    stuck = StuckSource("huggingface", [make_paper("2603.00002")])
    adapter = RecordingAdapter()
    poller = Poller([stuck], store, router_for(Channel(ALL)), coordination=coordination)
    deliverer = Deliverer(store, store, {"console": adapter}, "w", 60, coordination=coordination)
    app = App(poller, deliverer, None, store, coordination, store, adapters={"console": adapter})  # type: ignore[arg-type]
    cycle = asyncio.create_task(app.cycle())
    for _ in range(200):  # up to 10 s; the poll is held the whole time
        if adapter.ids("all"):
            break
        await asyncio.sleep(0.05)
    assert adapter.ids("all") == ["2603.00001"]
    assert not cycle.done()
    stuck.release.set()
    report = await asyncio.wait_for(cycle, 10)
    assert adapter.ids("all") == ["2603.00001", "2603.00002"]  # and what the poll found, when it ended
    assert report.delivery.delivered == 2


async def test_a_slow_source_does_not_hold_the_others_papers(store: RedisStore, coordination: RedisCoordination) -> None:
    stuck, quick = StuckSource("huggingface", [make_paper("2603.00002")]), StaticSource("arxiv", [make_paper("2603.00001")])
    options = PollOptions(merge_window=0.2)  # shortened for the test (default 30 s)
    poller = Poller([stuck, quick], store, router_for(Channel(ALL)), coordination=coordination, options=options)
    polling = asyncio.create_task(poller.poll())
    for _ in range(100):
        if not await store.unseen(["2603.00001"]):
            break
        await asyncio.sleep(0.05)
    assert await store.unseen(["2603.00001"]) == []  # arXiv's paper is committed and queued already
    assert [e.delivery.paper_id for e in await store.take("w", 60)] == ["2603.00001"]
    assert not polling.done()  # while Hugging Face still answers
    stuck.release.set()
    report = await asyncio.wait_for(polling, 10)
    assert sorted(report.answered) == ["arxiv", "huggingface"]
    assert report.new == report.queued == 2  # the slow one's paper is committed on its own, once it answers


async def test_the_first_run_limit_holds_after_a_failed_first_poll(store: RedisStore, coordination: RedisCoordination) -> None:
    source = StaticSource("huggingface", [])
    source.failing = "503 Service Unavailable"
    poller = Poller([source], store, router_for(Channel(ALL)), coordination=coordination, options=PollOptions(first_run_limit=10))
    assert (await poller.poll()).answered == []
    source.failing = None
    source.papers = [make_paper(f"2603.{n:05d}") for n in range(45)]
    assert (await poller.poll()).queued == 10  # still a first run: not 45 to every channel


async def test_a_source_answering_for_the_first_time_brings_no_flood(store: RedisStore, coordination: RedisCoordination) -> None:
    hf, arxiv = StaticSource("huggingface", [make_paper("2603.00001")]), StaticSource("arxiv", [])
    arxiv.failing = True  # down on the first poll
    poller = Poller(
        [hf, arxiv], store, router_for(Channel(ALL)), coordination=coordination, options=PollOptions(first_run_limit=10)
    )
    assert (await poller.poll()).queued == 1
    arxiv.failing = None
    arxiv.papers = [make_paper(f"2603.{n:05d}") for n in range(100, 145)]  # its whole backlog
    hf.papers = [make_paper(f"2603.{n:05d}") for n in range(2, 7)]  # Hugging Face's new ones go out whole
    report = await poller.poll()
    assert report.queued == 10 + 5
