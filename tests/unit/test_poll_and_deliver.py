"""Poll and delivery together, with fakes at the boundary and RedisStore on fakeredis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from bot.errors import DeliveryError
from bot.flow.delivery import MAX_ATTEMPTS, Deliverer
from bot.flow.following import Follower
from bot.flow.poller import AfterCommit, Poller, PollOptions
from bot.flow.recap import Recaps
from bot.model import Channel, Destination
from bot.query.routing import Router, compile_route
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import RecordingAdapter, StaticSource, make_paper

ALL, ML = Destination("console", "all"), Destination("console", "ml")


@pytest.fixture
async def client() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    yield client
    await client.aclose()


@pytest.fixture
def store(client: fakeredis.FakeAsyncRedis) -> RedisStore:
    return RedisStore(client, prefix="t:")


@pytest.fixture
def coordination(client: fakeredis.FakeAsyncRedis) -> RedisCoordination:
    return RedisCoordination(client, prefix="t:")


class Bot:
    """The poller and deliverer over fakes, with the channels' topics as their only subscriptions."""

    def __init__(
        self,
        store: RedisStore,
        coordination: RedisCoordination,
        sources: list[StaticSource],
        channels: list[Channel],
        follow: bool = False,  # papers seen before are followed (living posts)
        first_run_limit: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),  # what the weekly recaps take as now
    ) -> None:
        self.adapter = RecordingAdapter()
        self.coordination = coordination
        settings = {c.destination: c for c in channels}

        async def router() -> Router:
            return Router([compile_route(c.destination, c.topics, c.catch_all, c.min_upvotes) for c in channels])

        steps: list[AfterCommit] = [Follower(store, store).after_commit] if follow else []
        if recapped := [c for c in channels if c.top_digest]:
            steps.append(Recaps(store, store, recapped, clock).after_commit)
        options = PollOptions(first_run_limit=first_run_limit, watch=follow)
        self.poller = Poller(sources, store, router, coordination=coordination, options=options, after_commit=steps)
        self.deliverer = Deliverer(
            store,
            store,
            {"console": self.adapter},
            "w1",
            claim_idle=300,
            channel=lambda d: settings.get(d, Channel(d)),
            backoff=0,
            coordination=coordination,
        )

    async def cycle(self) -> tuple[int, int]:
        poll = await self.poller.poll()
        delivery = await self.deliverer.deliver()
        return poll.new, delivery.delivered


async def test_overlapping_sources_deliver_each_paper_once_per_destination(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    hf = StaticSource(
        "huggingface", [make_paper("2603.00001", sources=frozenset({"huggingface"}), upvotes=5), make_paper("2603.00002")]
    )
    arxiv = StaticSource(
        "arxiv", [make_paper("2603.00001", sources=frozenset({"arxiv"}), categories=("cs.CL",)), make_paper("2603.00003")]
    )
    bot = Bot(store, coordination, [hf, arxiv], [Channel(ALL), Channel(ML)])
    assert await bot.cycle() == (3, 6)
    assert sorted(bot.adapter.ids("all")) == ["2603.00001", "2603.00002", "2603.00003"]
    assert sorted(bot.adapter.ids("ml")) == ["2603.00001", "2603.00002", "2603.00003"]
    merged = next(card for _, card in bot.adapter.posts if card.paper_id == "2603.00001")
    assert merged.sources == ("arxiv", "huggingface")
    assert merged.upvotes == 5
    assert await bot.cycle() == (0, 0)


async def test_a_failed_source_marks_nothing_seen(store: RedisStore, coordination: RedisCoordination) -> None:
    source = StaticSource("huggingface", [make_paper("2603.00001")])
    source.failing = "HTTP 503 after 5 attempts"
    bot = Bot(store, coordination, [source], [Channel(ALL)])
    report = await bot.poller.poll()
    assert report.failed == {"huggingface": "HTTP 503 after 5 attempts"}
    assert report.new == 0
    source.failing = None
    assert await bot.cycle() == (1, 1)


async def test_a_failed_post_stays_queued_and_goes_out_once_later(store: RedisStore, coordination: RedisCoordination) -> None:
    bot = Bot(
        store,
        coordination,
        [StaticSource("s", [make_paper("2603.00001"), make_paper("2603.00002")])],
        [Channel(ALL), Channel(ML)],
    )
    bot.adapter.refuse("ml", DeliveryError("HTTP 500"))
    poll = await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert poll.new == 2
    assert report.delivered == 2
    assert report.pending == 2
    assert report.failed == {"console:ml": "HTTP 500"}
    bot.adapter.refuse("ml", None)
    assert await bot.cycle() == (0, 2)
    assert sorted(bot.adapter.ids("ml")) == ["2603.00001", "2603.00002"]
    assert await bot.cycle() == (0, 0)
    assert len(bot.adapter.posts) == 4


async def test_a_refused_destination_is_paused_keeps_its_papers_and_does_not_block_others(
    store: RedisStore, coordination: RedisCoordination, caplog: pytest.LogCaptureFixture
) -> None:
    papers = [make_paper(f"2603.0000{i}") for i in range(3)]
    bot = Bot(store, coordination, [StaticSource("s", papers)], [Channel(ALL), Channel(ML)])
    bot.adapter.refuse("ml", DeliveryError("not_in_channel", permanent=True))
    await bot.cycle()
    assert bot.adapter.ids("all") == [p.id for p in papers]
    assert caplog.text.count("destination paused") == 1
    [letter] = await store.dead_letters()  # the refused paper: a dead letter with its reason
    assert (letter["dest"], letter["paper"], letter["reason"]) == ("console:ml", "2603.00000", "not_in_channel")
    bot.adapter.refuse("ml", None)  # fixed, but paused: no retry storm against the platform
    report = await bot.deliverer.deliver()
    assert report.pending == 2
    assert report.failed["console:ml"].startswith("paused: not_in_channel")
    assert caplog.text.count("destination paused") == 1
    assert await store.requeue_dead() == 1  # what `paperbot deliveries --retry` does
    assert await coordination.unpause(ML)
    await bot.cycle()
    assert sorted(bot.adapter.ids("ml")) == [p.id for p in papers]
    assert await store.dead_letters() == []


async def test_topics_route_papers_and_say_why(store: RedisStore, coordination: RedisCoordination) -> None:
    papers = [
        make_paper("2603.00001", title="Scaling Test-Time Reasoning"),
        make_paper("2603.00002", title="A Vision-Language Benchmark"),
        make_paper("2603.00003", title="Protein Folding"),
    ]
    channels = [Channel(ALL), Channel(ML, topics=("reasoning", "vision language"))]
    bot = Bot(store, coordination, [StaticSource("s", papers)], channels)
    await bot.cycle()
    assert sorted(bot.adapter.ids("all")) == ["2603.00001", "2603.00002", "2603.00003"]
    why = {card.paper_id: card.why for dest, card in bot.adapter.posts if dest == ML}
    assert why == {"2603.00001": ("reasoning",), "2603.00002": ("vision language",)}


async def test_a_destination_without_a_running_adapter_keeps_its_papers(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    bot = Bot(store, coordination, [StaticSource("s", [make_paper("2603.00001")])], [Channel(Destination("slack", "C1"))])
    await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert report.pending == 1
    assert "no slack adapter" in report.failed["slack:C1"]


async def test_digest_mode_posts_one_digest_best_first(store: RedisStore, coordination: RedisCoordination) -> None:
    papers = [make_paper(f"2603.0000{i}", upvotes=i) for i in range(4)]
    digest = Channel(ML, mode="digest", digest_size=2)
    bot = Bot(store, coordination, [StaticSource("s", papers)], [Channel(ALL), digest])
    assert await bot.cycle() == (4, 8)
    assert bot.adapter.digests == [(ML, ["2603.00003", "2603.00002", "2603.00001", "2603.00000"], 2)]
    assert await bot.cycle() == (0, 0)


async def test_the_daily_cap_keeps_the_most_upvoted_and_settles_the_rest(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    papers = [make_paper(f"2603.0000{i}", upvotes=u) for i, u in enumerate([5, 50, 1, 20])]
    source = StaticSource("s", papers)
    bot = Bot(store, coordination, [source], [Channel(ML, daily_cap=3)])
    await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert (report.delivered, report.skipped) == (3, 1)
    assert bot.adapter.ids("ml") == ["2603.00000", "2603.00001", "2603.00003"]  # original order kept
    source.papers = [make_paper("2603.00009", upvotes=999)]
    await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert (report.delivered, report.skipped) == (0, 1)  # the cap is per day, across cycles


async def test_papers_below_a_channels_upvote_threshold_are_not_routed_there(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    papers = [make_paper("2603.00001", upvotes=2), make_paper("2603.00002", upvotes=30)]
    bot = Bot(store, coordination, [StaticSource("s", papers)], [Channel(ALL), Channel(ML, min_upvotes=10)])
    await bot.cycle()
    assert sorted(bot.adapter.ids("all")) == ["2603.00001", "2603.00002"]
    assert bot.adapter.ids("ml") == ["2603.00002"]


async def test_a_backlog_larger_than_one_batch_is_delivered_in_one_pass(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    papers = [make_paper(f"2603.{i:05d}") for i in range(1200)]
    bot = Bot(store, coordination, [StaticSource("s", papers)], [Channel(ALL)])
    assert await bot.cycle() == (1200, 1200)


class SlowSource(StaticSource):
    async def fetch(self, catch_up: int = 0) -> list:  # type: ignore[type-arg]
        await asyncio.sleep(0.2)
        return await super().fetch(catch_up)


async def test_transient_failures_become_a_dead_letter_after_enough_attempts(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    from bot.flow.delivery import MAX_ATTEMPTS

    bot = Bot(store, coordination, [StaticSource("s", [make_paper("2603.00001")])], [Channel(ML)])
    bot.adapter.refuse("ml", DeliveryError("HTTP 503 after 5 attempts"))
    await bot.poller.poll()
    for _ in range(MAX_ATTEMPTS):
        report = await bot.deliverer.deliver()
    assert report.dead == 1
    assert report.pending == 0
    [letter] = await store.dead_letters()
    assert letter["reason"] == f"gave up after {MAX_ATTEMPTS} attempts: HTTP 503 after 5 attempts"


async def test_two_pollers_started_together_only_one_polls(store: RedisStore, coordination: RedisCoordination) -> None:
    source = SlowSource("s", [make_paper("2603.00001")])

    async def router() -> Router:
        return Router([compile_route(ALL, [], catch_all=True)])

    first = Poller([source], store, router, coordination=coordination, options=PollOptions(owner="a"))
    second = Poller([source], store, router, coordination=coordination, options=PollOptions(owner="b"))
    reports = await asyncio.gather(first.poll(), second.poll())
    assert sorted(r.skipped for r in reports) == [False, True]
    assert sum(r.new for r in reports) == 1
    assert (await first.poll()).skipped is False  # the lock is released after a poll


async def test_a_lock_is_renewed_and_released_only_by_its_owner(store: RedisStore, coordination: RedisCoordination) -> None:
    assert await coordination.lock("poll", "a", 60)
    assert not await coordination.lock("poll", "b", 60)
    assert not await coordination.renew("poll", "b", 60)
    await coordination.unlock("poll", "b")  # not b's to release
    assert not await coordination.lock("poll", "b", 60)
    assert await coordination.renew("poll", "a", 60)
    await coordination.unlock("poll", "a")
    assert await coordination.lock("poll", "b", 60)


async def test_health_is_recorded_and_downtime_widens_the_window(
    store: RedisStore, coordination: RedisCoordination, caplog: pytest.LogCaptureFixture
) -> None:
    source = StaticSource("huggingface", [make_paper("2603.00001")])
    bot = Bot(store, coordination, [source], [Channel(ALL)])
    await bot.poller.poll()
    assert source.catch_up == 0
    health = (await coordination.health())["huggingface"]
    assert health["count"] == 1
    await coordination.record_health(
        "huggingface", True, "", 1, at=datetime.now(UTC) - timedelta(days=4, hours=2)
    )  # four days down
    source.failing = "HTTP 503"
    await bot.poller.poll()
    assert source.catch_up == 5
    assert "HTTP 503" in (await coordination.health())["huggingface"]["error"]


async def test_transient_failures_back_off_exponentially_for_every_worker(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    bot = Bot(store, coordination, [StaticSource("s", [make_paper("2603.00001")])], [Channel(ML)])
    deliverer = Deliverer(store, store, {"console": bot.adapter}, "w1", claim_idle=300, backoff=30, coordination=bot.coordination)
    bot.adapter.refuse("ml", DeliveryError("HTTP 503"))
    await bot.poller.poll()
    await deliverer.deliver()
    assert (await coordination.paused(ML) or "").startswith("retrying after: HTTP 503")
    assert await coordination.count_failure(ML) == 2  # the pass above counted one
    await coordination.unpause(ML)  # as if the wait were over
    bot.adapter.refuse("ml", None)
    assert (await deliverer.deliver()).delivered == 1
    assert await coordination.count_failure(ML) == 1  # reset by the success, then counted once here


async def test_passes_waited_out_while_backing_off_are_not_attempts(store: RedisStore, coordination: RedisCoordination) -> None:
    from bot.flow.delivery import MAX_ATTEMPTS

    bot = Bot(store, coordination, [StaticSource("s", [make_paper("2603.00001")])], [Channel(ML)])
    deliverer = Deliverer(store, store, {"console": bot.adapter}, "w1", claim_idle=300, backoff=30, coordination=bot.coordination)
    bot.adapter.refuse("ml", DeliveryError("HTTP 503"))
    await bot.poller.poll()
    for _ in range(MAX_ATTEMPTS * 2):  # one real failure, then passes that find the destination paused
        await deliverer.deliver()
    assert await store.dead_letters() == []
    assert len(await store.queued()) == 1


async def test_digest_failures_count_attempts_and_become_dead_letters(store: RedisStore, coordination: RedisCoordination) -> None:
    dest = Destination("console", "digest")
    source = StaticSource("hf", [make_paper("2603.00001"), make_paper("2603.00002")])
    bot = Bot(store, coordination, [source], [Channel(dest, mode="digest")])
    bot.adapter.refuse("digest", DeliveryError("HTTP 500"))
    deliverer = Deliverer(
        store,
        store,
        {"console": bot.adapter},
        "w1",
        claim_idle=300,
        backoff=0,
        coordination=coordination,
        channel=lambda d: Channel(d, mode="digest"),
    )
    await bot.poller.poll()
    for _ in range(MAX_ATTEMPTS):
        report = await deliverer.deliver()
    assert report.dead == 2  # both papers of the failing digest, after MAX_ATTEMPTS real attempts each
    assert len(await store.dead_letters()) == 2


async def test_a_first_run_posts_only_the_newest_papers_per_channel(store: RedisStore, coordination: RedisCoordination) -> None:
    dest = Destination("console", "first")
    old = datetime(2026, 3, 1, tzinfo=UTC)
    papers = [make_paper(f"2603.{n:05d}", published=old + timedelta(hours=n)) for n in range(15)]
    source = StaticSource("hf", papers)

    async def router() -> Router:
        return Router([compile_route(dest, [], catch_all=True)])

    poller = Poller([source], store, router, coordination=coordination, options=PollOptions(first_run_limit=10))
    report = await poller.poll()
    assert report.queued == 10
    assert sorted(e.delivery.paper_id for e in await store.take("w", 60)) == [p.id for p in papers[5:]]  # the newest
    assert await store.unseen([p.id for p in papers]) == []  # the others are seen all the same
    source.papers = [make_paper(f"2603.{n:05d}") for n in range(100, 115)]
    assert (await poller.poll()).queued == 15  # afterwards, everything new goes out
