"""Living posts: cards follow their paper (edits through the outbox) and rising papers reach the
channels that wait for them, with the poller, the deliverer and RedisStore on fakeredis."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from bot.errors import DeliveryError
from bot.flow.changes import new_leaders, news
from bot.flow.recap import last_due, parse_when
from bot.model import Channel, Destination, Links
from bot.query.index import PaperIndex
from bot.query.parser import parse_query
from bot.store.coordination import RedisCoordination
from bot.store.redis import RedisStore
from tests.fakes import StaticSource, make_paper
from tests.unit.test_poll_and_deliver import ALL, Bot

POPULAR = Destination("console", "popular")
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def coordination(store: RedisStore, redis_client: redis.Redis) -> RedisCoordination:
    return RedisCoordination(redis_client, store.key(""))  # the store's prefix: cleaned up with it


def test_news_is_code_a_project_page_or_an_upvote_milestone_never_noise() -> None:
    before = make_paper("2603.00001", upvotes=11)
    assert news(before, dataclasses.replace(before, upvotes=24)) == ()  # noise: no milestone crossed
    assert news(before, dataclasses.replace(before, upvotes=25)) == ("▲ 25",)
    assert news(before, dataclasses.replace(before, upvotes=120)) == ("▲ 100",)  # the highest crossed
    with_code = dataclasses.replace(before, links=dataclasses.replace(before.links, code="https://github.com/a/b"))
    assert news(before, with_code) == ("code",)
    assert news(with_code, with_code) == ()
    project = dataclasses.replace(before, links=Links(project="https://a.example"))
    assert news(before, project) == ("project page",)


def test_becoming_the_most_upvoted_paper_of_its_day_is_news() -> None:
    day = datetime(2026, 11, 27, 3, tzinfo=UTC)
    a, b = (make_paper(pid, upvotes=up, featured_on=day) for pid, up in (("2611.00001", 40), ("2611.00002", 30)))
    other_day = make_paper("2611.00003", upvotes=5, featured_on=day - timedelta(days=1))
    assert new_leaders([a, b, other_day], [a, dataclasses.replace(b, upvotes=41), other_day]) == {"2611.00002"}
    assert new_leaders([a, b, other_day], [a, dataclasses.replace(b, upvotes=39), other_day]) == set()


def paper(upvotes: int, code: str = "", pid: str = "2603.00001"):  # type: ignore[no-untyped-def]
    base = make_paper(pid, title="Reasoning", upvotes=upvotes)
    return dataclasses.replace(base, links=dataclasses.replace(base.links, code=code))


async def test_a_posted_card_is_edited_in_place_on_news_and_never_reposted(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    source = StaticSource("hf", [paper(3)])
    bot = Bot(store, coordination, [source], [Channel(ALL, topics=("reasoning",))], follow=True)
    assert await bot.cycle() == (1, 1)
    [(original, _)] = bot.adapter.posts
    source.papers = [paper(4)]  # noise: the cache follows, no edit
    poll = await bot.poller.poll()
    assert (poll.updated, poll.edits) == (1, 0)
    assert (await store.paper("2603.00001")).upvotes == 4  # type: ignore[union-attr]
    source.papers = [paper(4, code="https://github.com/a/b")]
    poll = await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert (poll.edits, report.edited, report.delivered) == (1, 1, 0)
    [(post, card)] = bot.adapter.edits
    assert post.message_id == "m1"
    assert post.destination == original
    assert ("Code", "https://github.com/a/b") in card.links
    assert card.why == ("reasoning",)  # the updated card still says why it was posted here
    assert len(bot.adapter.posts) == 1  # never reposted
    assert await bot.cycle() == (0, 0)
    assert len(bot.adapter.edits) == 1  # nothing new: no edit


async def test_edits_of_one_message_are_spaced_and_merged(store: RedisStore, redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client, prefix=store.key(""), edit_spacing=0.3)
    coordination = RedisCoordination(redis_client, store.key(""))
    source = StaticSource("hf", [paper(3)])
    bot = Bot(store, coordination, [source], [Channel(ALL)], follow=True)
    await bot.cycle()
    source.papers = [paper(12)]  # ▲ 10: edit at once
    await bot.cycle()
    source.papers = [paper(30, code="https://github.com/a/b")]  # ▲ 25 and code, within the spacing: waits
    assert (await bot.poller.poll()).edits == 0
    source.papers = [paper(60, code="https://github.com/a/b")]  # ▲ 50, still within it: merged with the last
    assert (await bot.poller.poll()).edits == 0
    await bot.deliverer.deliver()
    assert len(bot.adapter.edits) == 1
    await asyncio.sleep(0.35)
    await bot.cycle()  # the parked edit's time came: queued by this poll, rendering the paper as it is now
    assert [card.upvotes for _, card in bot.adapter.edits] == [12, 60]


async def test_a_failed_edit_is_retried_and_a_deleted_message_drops_its_edit(
    store: RedisStore, coordination: RedisCoordination, caplog: pytest.LogCaptureFixture
) -> None:
    source = StaticSource("hf", [paper(3), paper(3, pid="2603.00002")])
    bot = Bot(store, coordination, [source], [Channel(ALL)], follow=True)
    await bot.cycle()
    source.papers = [paper(3, code="https://github.com/a/b"), paper(3, code="https://github.com/c/d", pid="2603.00002")]
    bot.adapter.edit_failures = [DeliveryError("HTTP 503")]
    await bot.poller.poll()
    report = await bot.deliverer.deliver()
    assert report.failed == {"console:all": "HTTP 503"}
    assert report.edited == 0
    await coordination.unpause(ALL)
    bot.adapter.edit_failures = [DeliveryError("message_not_found", gone=True)]
    with caplog.at_level(logging.INFO, logger="bot.flow.delivery"):
        report = await bot.deliverer.deliver()
    assert (report.edited, report.skipped, report.delivered) == (1, 1, 0)  # one retried and made, one dropped
    assert [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()] == ["card to update was deleted; edit dropped"]
    assert len(bot.adapter.posts) == 2  # an edit never posts
    assert await store.queued() == []


async def test_a_rising_paper_reaches_the_channel_waiting_for_it_once_and_only_there(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    source = StaticSource("hf", [paper(3)])
    channels = [Channel(ALL), Channel(POPULAR, min_upvotes=25)]
    bot = Bot(store, coordination, [source], channels, follow=True)
    await bot.cycle()
    assert bot.adapter.ids("popular") == []
    source.papers = [paper(20)]  # risen, but not enough
    await bot.cycle()
    assert bot.adapter.ids("popular") == []
    source.papers = [paper(120)]
    poll = await bot.poller.poll()
    await bot.deliverer.deliver()
    assert poll.rising == 1
    assert bot.adapter.ids("popular") == ["2603.00001"]
    assert bot.adapter.ids("all") == ["2603.00001"]  # not reposted where it already was
    [card] = [c for d, c in bot.adapter.posts if d == POPULAR]
    assert card.why[0] == "rising: ▲ 120 (was ▲ 3 when first seen)"
    source.papers = [paper(300)]
    await bot.cycle()
    assert bot.adapter.ids("popular") == ["2603.00001"]  # once


async def test_papers_held_back_by_a_first_run_do_not_trickle_in_as_rising(
    store: RedisStore, coordination: RedisCoordination
) -> None:
    papers = [paper(3, pid=f"2603.0000{n}") for n in range(5)]
    source = StaticSource("hf", papers)
    bot = Bot(store, coordination, [source], [Channel(ALL)], follow=True, first_run_limit=2)
    await bot.cycle()
    assert len(bot.adapter.posts) == 2
    source.papers = [dataclasses.replace(p, upvotes=500) for p in papers]
    await bot.cycle()
    assert len(bot.adapter.posts) == 2  # a catch-all channel was owed them as they were: nothing is late


async def test_the_query_index_sees_a_papers_new_upvotes(store: RedisStore, coordination: RedisCoordination) -> None:
    source = StaticSource("hf", [paper(3), paper(5, pid="2603.00002")])
    bot = Bot(store, coordination, [source], [Channel(ALL)], follow=True)
    await bot.cycle()
    index = PaperIndex(store, ttl_seconds=30 * 86400)
    await index.refresh()
    assert index.top(0, 1).ids == ["2603.00002"]
    source.papers = [paper(90), paper(5, pid="2603.00002")]
    await bot.poller.poll()
    assert await index.refresh() == 1  # the updated paper, read again
    assert index.top(0, 1).ids == ["2603.00001"]
    assert index.search(parse_query("reasoning"), 5).total == 2  # replaced, not doubled


def test_a_recap_falls_due_at_its_weekday_and_hour_in_the_channels_time_zone() -> None:
    monday_morning = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)  # 08:30 in Berlin: not yet 09:00
    assert last_due("mon 09:00", "Europe/Berlin", monday_morning) == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert last_due("Monday 09:00", "Europe/Berlin", monday_morning + timedelta(hours=1)) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert last_due("fri 17:00", "America/New_York", monday_morning) == datetime(2026, 11, 27, 22, tzinfo=UTC)
    for wrong in ("xx 09:00", "mon", "mon 25:00", "mo 09:00"):
        with pytest.raises(ValueError, match="like 'mon 09:00'"):
            parse_when(wrong)


async def test_the_weekly_recap_posts_the_weeks_most_upvoted_once_per_week(
    store: RedisStore, coordination: RedisCoordination, redis_client: redis.Redis
) -> None:
    now = [datetime(2026, 11, 30, 9, 5, tzinfo=UTC)]  # a Monday, just after the recap fell due
    store = RedisStore(redis_client, prefix=store.key(""), clock=lambda: now[0].timestamp())  # one clock for all
    week = [
        make_paper(f"2611.0000{n}", title=f"Paper {n}", upvotes=up, published=now[0] - timedelta(days=days))
        for n, (up, days) in enumerate([(5, 1), (50, 2), (500, 9), (20, 6), (0, 3)])
    ]  # 2611.00002 is older than the week: not in it
    channel = Channel(ALL, mode="each", digest_size=3, top_digest="mon 09:00", timezone="UTC")
    bot = Bot(store, coordination, [StaticSource("hf", week)], [channel], clock=lambda: now[0])
    first = await bot.poller.poll()
    await bot.deliverer.deliver()
    assert first.recaps == 1
    assert bot.adapter.digests == [(ALL, ["2611.00001", "2611.00003", "2611.00000"], 3)]
    assert bot.adapter.titles == ["Top papers of the week"]
    assert len(bot.adapter.posts) == 5 + 3  # the five new papers, each on its own; then the recap's three
    now[0] += timedelta(hours=6)
    source = StaticSource("hf", week)
    again = Bot(store, coordination, [source], [channel], clock=lambda: now[0])  # a restart
    assert (await again.poller.poll()).recaps == 0  # that week's recap went out already
    source.papers = [make_paper("2612.00001", upvotes=7, published=now[0] + timedelta(days=2))]
    now[0] += timedelta(days=7)
    assert (await again.poller.poll()).recaps == 1  # next week's, of next week's papers
    await again.deliverer.deliver()
    assert again.adapter.digests == [(ALL, ["2612.00001"], 3)]
