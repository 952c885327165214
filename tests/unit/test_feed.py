"""The personal feed on a real arXiv day: similar papers, a reader's model, follows and their digests."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.chat.digests import due_at
from bot.chat.vectors import Embedder
from bot.flow.poller import Poller, PollReport, digests_due, with_new
from bot.model import Destination, Following, Paper, UserRef
from tests.fakes import EMBEDDER, StaticSource, listing
from tests.world import World

ADA = UserRef("slack", "UADA")
HERE = Destination("slack", "C1")
PAPERS = listing()
CATEGORY = {p.id: p.categories[0] for p in PAPERS}  # the primary category
CATEGORIES = {p.id: p.categories for p in PAPERS}
ROBOTS = [p for p in PAPERS if p.categories[0] == "cs.RO"]


class CountingEmbedder(Embedder):
    """The real model, counting the texts it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self._model = EMBEDDER._loaded()
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += len(texts)
        return super().embed(texts)


class BrokenEmbedder(Embedder):
    """A model whose weights cannot be read."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("the model's weights are unreadable")


async def indexed(world: World, papers: Sequence[Paper] = PAPERS) -> None:
    await world.store.commit(list(papers), [])
    await world.feed.sync()


async def test_similar_papers_share_the_papers_field_far_more_often_than_chance() -> None:
    world = World()
    await indexed(world)
    shares = []
    for paper in PAPERS[::17]:  # 30 papers as queries
        picks = await world.feed.similar(paper, 5)
        assert len(picks) == 5
        assert paper.id not in {p.paper_id for p in picks}
        assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
        shares.append(sum(CATEGORY[p.paper_id] == CATEGORY[paper.id] for p in picks) / 5)
    chance = sum(n * n for n in Counter(CATEGORY.values()).values()) / len(PAPERS) ** 2
    # Measured 0.31 (30 queries); picking at random shares the field 0.08 of the time.
    assert np.mean(shares) > 0.25 > 3 * chance
    await world.aclose()


async def test_for_you_learns_a_readers_field_from_five_saves_and_says_why() -> None:
    world = World()
    await indexed(world)
    robots = [p for p in PAPERS if p.categories[0] == "cs.RO"]
    for paper in robots[:5]:
        await world.library.save(ADA, paper)
    picks = await world.feed.for_you(ADA, 10)
    assert not {p.paper_id for p in picks} & {p.id for p in robots[:5]}  # never what they saved
    assert sum(CATEGORY[p.paper_id] == "cs.RO" for p in picks) >= 5  # cs.RO is 23 of 501 papers
    titles = {p.title for p in robots[:5]}
    assert all(p.because in titles for p in picks)
    reply = await world.ask("foryou", ADA, HERE)
    assert reply.startswith("Recent papers for you")
    await world.aclose()


async def test_a_reader_with_no_saves_is_told_how_to_start() -> None:
    world = World()
    await indexed(world, PAPERS[:20])
    assert "learns what you like from the papers you save" in await world.ask("foryou", ADA, HERE)
    await world.aclose()


async def test_similar_works_for_a_saved_paper_that_left_the_cache() -> None:
    world = World()
    await indexed(world, PAPERS[1:100])
    gone = PAPERS[0]  # in the library only: never cached (or long expired)
    await world.library.save(ADA, gone)
    answer = await world.core.handle(f"similar {gone.id}", ADA, HERE)
    assert answer.text.startswith("Recent papers most like")
    assert len(answer.cards) == 2
    assert all(card.why[0].startswith("similarity 0.") for card in answer.cards)
    assert "has not seen" in await world.ask("similar 2601.99999", ADA, HERE)
    assert "is not an arXiv id" in await world.ask("similar nonsense", ADA, HERE)
    await world.aclose()


async def test_vectors_are_made_once_when_papers_are_first_seen_and_reused_by_every_process() -> None:
    world = World()
    poller_embedder, other_embedder = CountingEmbedder(), CountingEmbedder()
    from bot.chat.feed import Feed

    writer = Feed(world.index, world.store, world.library, poller_embedder)
    poller = Poller(
        [StaticSource("arxiv", list(PAPERS[:40]))],
        world.store,
        _no_routes,
        coordination=world.coordination,
        after_commit=[with_new(writer.remember)],
    )
    await poller.ingest(PAPERS[:40], PollReport())
    assert poller_embedder.texts == 40
    assert len(await world.store.vectors([p.id for p in PAPERS[:40]])) == 40
    reader = Feed(world.index, world.store, world.library, other_embedder)  # another process's feed
    assert await reader.sync() == 40
    assert other_embedder.texts == 0
    await world.store.commit(list(PAPERS[40:50]), [])  # committed without vectors (an older paperbot)
    assert await reader.sync() == 10
    assert other_embedder.texts == 10
    assert len(await world.store.vectors([p.id for p in PAPERS[40:50]])) == 10
    await world.aclose()


async def _no_routes():  # type: ignore[no-untyped-def]
    from bot.query.routing import Router

    return Router({})


async def test_follow_following_unfollow_and_the_time_of_the_digest() -> None:
    world = World()
    assert "follow nothing yet" in await world.ask("following", ADA, HERE)
    assert await world.ask("follow diffusion cat:cs.CV", ADA, HERE) == (
        "Following new papers matching “diffusion cat:cs.CV”. Your digest arrives by direct message daily at 08:00 (UTC)."
    )
    berlin = UserRef("slack", "UADA", timezone="Europe/Berlin")  # Slack's users.info said so
    assert "daily at 07:30 (Europe/Berlin)" in await world.ask("follow saved at 7:30", berlin, HERE)
    assert "already follow" in await world.ask("follow saved at 07:30", ADA, HERE)
    assert await world.ask("following", ADA, HERE) == (
        "You follow (daily digest at 07:30, Europe/Berlin):\n1. diffusion cat:cs.CV\n2. saved"
    )
    assert "expected a time like 08:00" in await world.ask("follow robots at 25:00", ADA, HERE)
    assert "unfollow a number" in await world.ask("unfollow 3", ADA, HERE)
    assert await world.ask("unfollow 1", ADA, HERE) == "Stopped following “diffusion cat:cs.CV”."
    assert await world.follows.following(ADA) == Following(ADA, ("saved",), "07:30", "Europe/Berlin")
    await world.ask("unfollow 1", ADA, HERE)
    assert await world.follows.everyone() == []
    await world.aclose()


async def test_a_typed_at_option_is_never_read_from_the_query_text() -> None:
    from bot.model import Command

    world = World()
    reply = await world.core.run(
        Command("follow", "meet at 10", at="06:15"), UserRef("discord", "42"), Destination("discord", "1")
    )
    assert reply.text == "Following new papers matching “meet at 10”. Your digest arrives by direct message daily at 06:15 (UTC)."
    await world.aclose()


def test_a_digest_is_due_at_the_readers_hour_in_their_zone() -> None:
    following = Following(ADA, ("saved",), "08:00", "Europe/Berlin")  # UTC+1 in winter
    assert due_at(following, datetime(2026, 11, 30, 7, 0, tzinfo=UTC)) == datetime(2026, 11, 30, 8, 0, tzinfo=following_zone())
    assert due_at(following, datetime(2026, 11, 30, 6, 59, tzinfo=UTC)).date().isoformat() == "2026-11-29"


def following_zone():  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


async def test_digests_are_queued_once_a_day_taking_each_follow_in_turn_and_saying_why() -> None:
    world = World()
    await indexed(world)
    robots = [p for p in PAPERS if p.categories[0] == "cs.RO"]
    for paper in robots[:5]:
        await world.library.save(ADA, paper)
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)  # the next hour
    await world.follows.keep(Following(ADA, ("cat:cs.CL", "saved"), f"{due:%H:%M}", "UTC"))
    assert await world.digests(lambda: due - timedelta(minutes=1)).queue() == 0  # not due yet: yesterday's had nothing
    assert await world.digests(lambda: due).queue() == 1
    assert await world.digests(lambda: due + timedelta(minutes=30)).queue() == 0  # another run, the same day
    [entry] = await world.store.queued()
    assert entry["dest"] == "slack:@UADA"
    assert entry["title"].startswith("Your papers for ")
    ids, whys = json.loads(entry["recap"]), json.loads(entry["why"])
    assert len(ids) == 10 == len(set(ids)) == len(whys)
    by_follow = Counter("saved" if w.startswith("like your saved: ") else w for w in whys)
    assert by_follow == {"follows: cat:cs.CL": 5, "saved": 5}  # in turn: one broad follow cannot crowd out the other
    assert all("cs.CL" in CATEGORIES[i] for i, w in zip(ids, whys, strict=True) if w == "follows: cat:cs.CL")
    liked = [i for i, w in zip(ids, whys, strict=True) if w.startswith("like your saved: ")]
    assert sum(CATEGORY[i] == "cs.RO" for i in liked) >= 3
    assert await world.digests(lambda: due + timedelta(days=1)).queue() == 0  # nothing first seen that day
    await world.aclose()


def test_like_terms_parse_with_a_threshold_and_say_what_is_wrong() -> None:
    from bot.errors import CommandError
    from bot.query.matcher import fields_of
    from bot.query.parser import parse_query

    term, category = fields_of(parse_query("like:arXiv:2601.15077v2~0.7 cat:cs.RO").root)
    assert category.name == "cat"
    assert (term.value, term.target) == ("2601.15077~0.7", ("2601.15077", 0.7))
    assert next(fields_of(parse_query("like:2601.15077").root)).target == ("2601.15077", 0.5)
    for bad, why in [
        ("like:nonsense", "takes an arXiv id"),
        ("like:2601.15077~2", "between 0 and 1"),
        ("like:2601.15077~x", "between 0 and 1"),
    ]:
        with pytest.raises(CommandError, match=why):
            parse_query(bad)


async def test_like_in_a_search_combines_with_the_other_operators() -> None:
    world = World(page_size=50)
    await indexed(world)
    robot = ROBOTS[0]
    scores = {p.paper_id: p.score for p in await world.feed.similar(robot, 500)}
    close = {pid for pid, score in scores.items() if score >= 0.5}
    assert 0 < len(close) < 50  # one page holds them all
    near = await world.core.handle(f"like:{robot.id}", ADA, HERE)  # ~0.5 when left out
    assert {c.paper_id for c in near.cards} == close  # exactly the papers that close, never the paper itself
    only_robots = await world.core.handle(f"like:{robot.id} cat:cs.RO", ADA, HERE)
    assert {c.paper_id for c in only_robots.cards} == {i for i in close if "cs.RO" in CATEGORIES[i]}
    others = await world.core.handle(f"like:{robot.id} -cat:cs.RO", ADA, HERE)
    assert {c.paper_id for c in others.cards} == {i for i in close if "cs.RO" not in CATEGORIES[i]}
    either = await world.core.handle(f"like:{robot.id}~0.55 OR like:{ROBOTS[1].id}~0.55", ADA, HERE)
    assert {c.paper_id for c in either.cards} >= {i for i, s in scores.items() if s >= 0.55}
    assert "has not seen that paper" in (await world.core.handle("like:2601.99999", ADA, HERE)).text
    await world.aclose()


async def test_a_like_subscription_routes_only_the_new_papers_that_close() -> None:
    from bot.chat.feed import Feed
    from bot.flow.channels import Channels

    world = World()
    robot = ROBOTS[0]
    await world.store.commit([robot], [])  # the paper liked, seen days ago
    await world.subscriptions.subscribe(HERE, f"like:{robot.id}")
    embedder = CountingEmbedder()
    feed = Feed(world.index, world.store, world.library, embedder)
    channels = Channels((), world.subscriptions)
    poller = Poller(
        [],
        world.store,
        channels.router,
        coordination=world.coordination,
        likes=feed.route_likes,
        after_commit=[with_new(feed.remember)],
    )
    fresh = [p for p in PAPERS if p.id != robot.id]
    await poller.ingest(fresh, PollReport())
    embedded = embedder.texts
    routed = [json.loads(e["why"]) and e["paper"] for e in await world.store.queued()]
    robot_vector = await feed.vector(robot)
    close = {p.id for p in fresh if float(robot_vector @ await feed.vector(p)) >= 0.5}
    assert set(routed) == close
    assert 0 < len(close) < 25  # under 5 % of the day
    assert embedded == len(fresh) + 1  # each new paper embedded once (routing, then kept), the liked one once
    await world.aclose()


async def test_papers_that_leave_the_index_are_never_recommended_again() -> None:
    from bot.chat.feed import Feed
    from bot.query.index import PaperIndex

    world = World()
    now = [1_800_000_000.0]
    index = PaperIndex(world.store, ttl_seconds=86400, clock=lambda: now[0])
    feed = Feed(index, world.store, world.library, EMBEDDER)
    robot, rest = ROBOTS[0], [p for p in PAPERS if p.id != ROBOTS[0].id]
    await world.store.commit(rest[:200], [])
    await feed.sync()
    before = {p.paper_id for p in await feed.similar(robot, 10)}
    now[0] += 2 * 86400  # the first 200 expire from the index; 100 more arrive
    await world.store.commit(rest[200:300], [])
    await feed.sync()
    assert len(feed) == 100
    after = {p.paper_id for p in await feed.similar(robot, 10)}
    assert before <= {p.id for p in rest[:200]}
    assert after <= {p.id for p in rest[200:300]}
    assert len(after) == 10
    await world.aclose()


async def test_one_cycle_delivers_a_digest_that_fell_due_during_its_poll() -> None:
    """``paperbot run --once`` (cron-style): the digest queued by the poll goes out in the same run."""
    from bot.flow.channels import Channels
    from bot.flow.delivery import Deliverer
    from bot.service.runner import App
    from tests.fakes import RecordingAdapter

    world = World()
    await indexed(world, PAPERS[:60])
    reader = UserRef("console", "you")
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    await world.follows.keep(Following(reader, ("cat:cs.CV",), f"{due:%H:%M}", "UTC"))
    adapter = RecordingAdapter("console")
    channels = Channels((), world.subscriptions)
    poller = Poller(
        [],
        world.store,
        channels.router,
        coordination=world.coordination,
        after_commit=[digests_due(world.digests(lambda: due).queue)],
    )
    deliverer = Deliverer(world.store, world.store, {"console": adapter}, "w", 60, coordination=world.coordination)
    app = App(poller, deliverer, world.core, world.store, world.coordination, world.store, adapters={"console": adapter})
    report = await app.cycle()
    assert report.poll.digests == 1
    assert report.delivery.delivered == 1
    [(inbox, ids, _)] = adapter.digests
    assert inbox == Destination("console", "@you")
    assert ids
    assert all("cs.CV" in CATEGORIES[i] for i in ids)
    await world.aclose()


async def test_with_the_store_unreachable_each_command_says_so_once() -> None:
    import redis.asyncio as redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from bot.chat.commands import OUTAGE, ChatStores, CommandCore
    from bot.chat.feed import Feed
    from bot.query.index import PaperIndex
    from bot.store.coordination import RedisCoordination
    from bot.store.follows import RedisFollows
    from bot.store.library import RedisLibrary
    from bot.store.redis import RedisStore
    from bot.store.subscriptions import RedisSubscriptions
    from tests.redis_servers import free_port

    # Nobody listens there; no retries in the client (redis-py's own would take seconds a command).
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, protocol=2, retry=Retry(NoBackoff(), 0))
    store, library = RedisStore(client, "gone:"), RedisLibrary(client, "gone:")
    index = PaperIndex(store, 86400)
    stores = ChatStores(
        store, RedisSubscriptions(client, "gone:"), library, RedisCoordination(client, "gone:"), RedisFollows(client, "gone:")
    )
    core = CommandCore(stores, index, feed=Feed(index, store, library, EMBEDDER))
    for text in ("saved", "foryou", "following", "follow saved", f"similar {PAPERS[0].id}", "reasoning"):
        assert (await core.handle(text, ADA, HERE)).text == OUTAGE, text
    await client.aclose()


async def test_a_broken_model_never_stops_a_poll_and_the_vectors_are_made_later() -> None:
    from bot.chat.feed import Feed
    from bot.flow.channels import Channels

    world = World()
    await world.subscriptions.subscribe(HERE, "cat:cs OR cat:eess OR cat:stat")  # every paper of the day
    broken = Feed(world.index, world.store, world.library, BrokenEmbedder())
    router = Channels((), world.subscriptions).router
    poller = Poller([], world.store, router, coordination=world.coordination, after_commit=[with_new(broken.remember)])
    report = PollReport()
    await poller.ingest(PAPERS[:30], report)
    assert report.new == 30  # committed and routed all the same
    assert report.queued == 30
    assert await world.store.vectors([p.id for p in PAPERS[:30]]) == {}
    assert await world.feed.sync() == 30  # a working process makes them when it needs them
    assert len(await world.store.vectors([p.id for p in PAPERS[:30]])) == 30
    await world.aclose()


async def test_a_broken_model_skips_like_subscriptions_but_routes_the_rest() -> None:
    from bot.chat.feed import Feed
    from bot.flow.channels import Channels

    world = World()
    await world.store.commit([ROBOTS[0]], [])
    await world.subscriptions.subscribe(HERE, f"like:{ROBOTS[0].id}")
    await world.subscriptions.subscribe(Destination("slack", "C2"), "cat:cs.RO")
    broken = Feed(world.index, world.store, world.library, BrokenEmbedder())
    channels = Channels((), world.subscriptions)
    poller = Poller([], world.store, channels.router, coordination=world.coordination, likes=broken.route_likes)
    report = PollReport()
    await poller.ingest(ROBOTS[1:], report)
    assert report.new == len(ROBOTS) - 1
    assert {e["dest"] for e in await world.store.queued()} == {"slack:C2"}
    await world.aclose()
