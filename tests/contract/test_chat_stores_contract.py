"""Contract of the chat-side stores (subscriptions, saved papers, the query cache, the post map),
run against fakeredis, the embedded Redis binary and Debian's redis-server."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import redis.asyncio as redis

from bot.errors import StoreError
from bot.model import Backlog, Delivery, Destination, Following, PostRef, UserRef
from bot.store.coordination import RedisCoordination
from bot.store.follows import RedisFollows
from bot.store.installations import RedisInstallations
from bot.store.library import RedisLibrary
from bot.store.records import vector_bucket
from bot.store.redis import RedisStore
from bot.store.sealing import Seal
from bot.store.subscriptions import RedisSubscriptions
from tests.fakes import make_paper

HERE, THERE = Destination("slack", "C1"), Destination("discord", "123")
ADA = UserRef("slack", "UADA")


@pytest.fixture
def subscriptions(store: RedisStore, redis_client: redis.Redis) -> RedisSubscriptions:
    return RedisSubscriptions(redis_client, store.key())


@pytest.fixture
def library(store: RedisStore, redis_client: redis.Redis) -> RedisLibrary:
    return RedisLibrary(redis_client, store.key())


async def test_subscriptions_keep_order_and_are_idempotent(subscriptions: RedisSubscriptions) -> None:
    assert await subscriptions.subscribe(HERE, "reasoning")
    await asyncio.sleep(0.002)
    assert await subscriptions.subscribe(HERE, "cat:cs.RO")
    assert not await subscriptions.subscribe(HERE, "reasoning")
    assert await subscriptions.topics(HERE) == ["reasoning", "cat:cs.RO"]
    assert await subscriptions.everything() == {HERE: ["reasoning", "cat:cs.RO"]}
    assert await subscriptions.unsubscribe(HERE, "reasoning")
    assert not await subscriptions.unsubscribe(HERE, "reasoning")
    assert await subscriptions.topics(THERE) == []


async def test_configured_topics_are_seeded_once_so_unsubscribing_sticks(subscriptions: RedisSubscriptions) -> None:
    assert await subscriptions.seed(HERE, ["reasoning", "robot"]) == ["reasoning", "robot"]
    await subscriptions.unsubscribe(HERE, "robot")
    assert await subscriptions.seed(HERE, ["reasoning", "robot", "protein"]) == ["protein"]  # a restart
    assert sorted(await subscriptions.topics(HERE)) == ["protein", "reasoning"]


async def test_saved_papers_are_per_user_newest_first_and_idempotent(library: RedisLibrary) -> None:
    first, second = make_paper("2603.00001"), make_paper("2603.00002")
    assert await library.save(ADA, first)
    await asyncio.sleep(0.002)
    assert await library.save(ADA, second)
    assert not await library.save(ADA, first)
    assert [s.paper for s in await library.saved(ADA)] == [second, first]
    assert [s.paper.id for s in await library.saved(ADA, limit=1)] == ["2603.00002"]
    assert await library.saved(UserRef("discord", "UADA")) == []
    assert await library.unsave(ADA, "2603.00002")
    assert not await library.unsave(ADA, "2603.00002")
    assert [s.paper for s in await library.saved(ADA)] == [first]


async def test_a_saved_paper_stays_while_anyone_has_it_and_then_leaves(library: RedisLibrary) -> None:
    paper, bob = make_paper("2603.00002"), UserRef("discord", "BOB")
    await library.save(ADA, paper)
    await library.save(bob, paper)
    await library.save(bob, paper)  # saving twice holds it once
    await library.unsave(ADA, paper.id)
    await library.unsave(ADA, paper.id)  # unsaving twice lets go once
    assert await library.paper(paper.id) == paper  # Bob still has it
    assert [s.paper for s in await library.saved(bob)] == [paper]
    await library.unsave(bob, paper.id)
    assert await library.paper(paper.id) is None  # nobody has it: the library does not grow forever


async def test_a_library_from_before_holders_were_counted_loses_nothing(store: RedisStore, redis_client: redis.Redis) -> None:
    paper, bob = make_paper("2603.00002"), UserRef("discord", "BOB")
    await RedisLibrary(redis_client, store.key()).save(ADA, paper)
    await RedisLibrary(redis_client, store.key()).save(bob, paper)
    await redis_client.delete(store.key("library", "holders"))  # as an older paperbot left it
    upgraded = RedisLibrary(redis_client, store.key())
    await upgraded.unsave(ADA, paper.id)
    assert [s.paper for s in await upgraded.saved(bob)] == [paper]
    await upgraded.unsave(bob, paper.id)
    assert await upgraded.paper(paper.id) is None


async def test_saved_papers_never_expire(library: RedisLibrary, store: RedisStore, redis_client: redis.Redis) -> None:
    await library.save(ADA, make_paper("2603.00001"))
    assert await redis_client.ttl(store.key("library")) == -1
    assert await redis_client.ttl(store.key("saved", ADA.key)) == -1


async def test_last_search_is_remembered_for_an_hour(library: RedisLibrary, store: RedisStore, redis_client: redis.Redis) -> None:
    assert await library.last_search(ADA) is None
    await library.remember_search(ADA, "reasoning", 2)
    assert await library.last_search(ADA) == ("reasoning", 2)
    assert 0 < await redis_client.ttl(store.key("search", ADA.key)) <= 3600


async def test_the_query_cache_lists_commits_incrementally(store: RedisStore) -> None:
    await store.commit([make_paper("2603.00001"), make_paper("2603.00002")], [])
    ids, cursor = await store.recent(0)
    assert sorted(ids) == ["2603.00001", "2603.00002"]
    assert await store.recent(cursor) == ([], cursor)
    await asyncio.sleep(0.002)
    await store.commit([make_paper("2603.00003")], [])
    assert (await store.recent(cursor))[0] == ["2603.00003"]
    assert [p.id for p in await store.papers(["2603.00003", "2603.09999", "2603.00001"])] == ["2603.00003", "2603.00001"]


async def test_posts_map_back_to_their_paper(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(HERE, paper.id)])
    [entry] = await store.take("w", claim_idle=60)
    await store.done(entry, PostRef(HERE, "1700000000.000100"))
    assert await store.paper_for_post(PostRef(HERE, "1700000000.000100")) == paper.id
    assert await store.paper_for_post(PostRef(THERE, "1700000000.000100")) is None  # ts is per channel


async def test_skipped_deliveries_are_settled_without_a_post(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(HERE, paper.id)])
    [entry] = await store.take("w", claim_idle=60)
    await store.skip(entry, "daily cap")
    assert await store.delivered(HERE, paper.id) == "skipped:daily cap"
    assert await store.take("w", claim_idle=0) == []


async def test_post_counts_per_day(store: RedisStore, redis_client: redis.Redis) -> None:
    coordination = RedisCoordination(redis_client, store.key())
    assert await coordination.count_post(HERE, "2026-03-06", 0) == 0
    assert await coordination.count_post(HERE, "2026-03-06") == 1
    assert await coordination.count_post(HERE, "2026-03-06", 3) == 4
    assert await coordination.count_post(HERE, "2026-03-07", 0) == 0
    assert 0 < await redis_client.ttl(store.key("posted", HERE.key, "2026-03-06")) <= 2 * 86400


async def test_a_lock_says_who_holds_it_until_it_is_released(store: RedisStore, redis_client: redis.Redis) -> None:
    coordination = RedisCoordination(redis_client, store.key())
    assert await coordination.holder("listener:discord") is None
    assert await coordination.lock("listener:discord", "host-1", 60)
    assert await coordination.holder("listener:discord") == "host-1"
    await coordination.unlock("listener:discord", "host-1")
    assert await coordination.holder("listener:discord") is None


async def test_the_backlog_counts_what_is_owed_its_age_and_the_dead_letters(store: RedisStore) -> None:
    assert await store.backlog() == Backlog(0, 0.0, 0)
    papers = [make_paper("2603.00001"), make_paper("2603.00002")]
    await store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    await asyncio.sleep(0.05)
    depth, age, dead = dataclasses.astuple(await store.backlog())
    assert (depth, dead) == (2, 0)
    assert 0.04 <= age < 5
    first, _ = await store.take("w", claim_idle=60)
    await store.bury(first, "the platform refused this message")
    assert (await store.backlog()).depth == 1
    assert (await store.backlog()).dead == 1


async def test_a_pause_says_when_its_destination_falls_due(store: RedisStore, redis_client: redis.Redis) -> None:
    coordination = RedisCoordination(redis_client, store.key())
    assert await coordination.next_due() is None
    await coordination.pause(HERE, "retrying after: 500", 30)
    await coordination.pause(THERE, "retrying after: 500", 2)
    assert 1.5 < (await coordination.next_due() or 0) <= 2.0  # the earliest of the two
    await coordination.unpause(THERE)
    assert 29 < (await coordination.next_due() or 0) <= 30
    await coordination.unpause(HERE)
    assert await coordination.next_due() is None


async def test_vectors_are_kept_beside_their_papers_as_raw_bytes_and_expire_with_them(
    store: RedisStore, redis_client: redis.Redis
) -> None:
    blob = bytes(range(64)) + bytes(range(192, 256))  # every kind of byte survives the round trip
    many = {f"2603.{n:05d}": blob[n % 128 :] + blob[: n % 128] for n in range(2500)}  # more than a round trip's
    await store.keep_vectors(many)
    asked = ["2603.00002", "2603.09999", *many]
    assert await store.vectors(asked) == many
    assert len({vector_bucket(pid) for pid in many}) > 500  # spread over the buckets
    ttl = await redis_client.ttl(store.key("vec", str(vector_bucket("2603.00001"))))
    assert 29 * 86400 < ttl <= 30 * 86400  # the paper cache period the store was made with
    assert await store.vectors([]) == {}


async def test_follows_are_per_reader_replaced_whole_and_forgotten_when_empty(
    store: RedisStore, redis_client: redis.Redis
) -> None:
    follows = RedisFollows(redis_client, store.key())
    bob = UserRef("discord", "42")
    assert await follows.following(ADA) is None
    await follows.keep(Following(ADA, ("diffusion", "saved"), "07:30", "Europe/Berlin"))
    await follows.keep(Following(bob, ("cat:cs.RO",)))
    assert await follows.following(ADA) == Following(ADA, ("diffusion", "saved"), "07:30", "Europe/Berlin")
    assert sorted(await follows.everyone(), key=lambda f: f.user.key) == [
        Following(bob, ("cat:cs.RO",), "08:00", "UTC"),
        Following(ADA, ("diffusion", "saved"), "07:30", "Europe/Berlin"),
    ]
    await follows.keep(Following(ADA, (), "07:30", "Europe/Berlin"))
    assert await follows.following(ADA) is None
    assert [f.user for f in await follows.everyone()] == [bob]


async def test_a_notice_is_read_once(store: RedisStore, redis_client: redis.Redis) -> None:
    follows = RedisFollows(redis_client, store.key())
    assert await follows.take_notice(ADA) == ""
    await follows.notice(ADA, "could not send you a direct message")
    assert await follows.take_notice(ADA) == "could not send you a direct message"
    assert await follows.take_notice(ADA) == ""


async def test_installations_are_per_workspace_and_states_are_accepted_once(store: RedisStore, redis_client: redis.Redis) -> None:
    installations = RedisInstallations(redis_client, store.key())
    assert (await installations.find("T1"), await installations.count()) == (None, 0)
    await installations.save("T1", {"team_id": "T1", "bot_token": "xoxb-1"})
    await installations.save("T2", {"team_id": "T2", "bot_token": "xoxb-2"})
    await installations.save("T1", {"team_id": "T1", "bot_token": "xoxb-1b"})  # a reinstall replaces
    assert await installations.find("T1") == {"team_id": "T1", "bot_token": "xoxb-1b"}
    assert (await installations.count(), await installations.workspaces()) == (2, ["T1", "T2"])
    assert await installations.delete("T1")
    assert not await installations.delete("T1")
    assert await installations.workspaces() == ["T2"]
    await installations.issue("s1", 60)
    await installations.issue("s2", 1)
    assert await installations.consume("s1")
    assert not await installations.consume("s1")  # a replay
    assert not await installations.consume("forged")
    await asyncio.sleep(1.1)
    assert not await installations.consume("s2")  # expired


async def test_a_workspace_s_subscriptions_and_queue_go_and_no_other_s(store: RedisStore, redis_client: redis.Redis) -> None:
    subscriptions = RedisSubscriptions(redis_client, store.key())
    gone, kept = Destination("slack", "C1", "T1"), Destination("slack", "C1", "T2")
    assert Destination.parse(gone.key) == gone
    assert gone.key == "slack:T1/C1"
    for where in (gone, kept, HERE):
        await subscriptions.subscribe(where, "robots")
    await subscriptions.subscribe(gone, "diffusion")
    papers = [make_paper(f"2603.{n:05d}") for n in range(3)]
    dm = Destination("slack", "@UADA", "T1")
    await store.commit(papers, [Delivery(d, p.id) for p in papers for d in (gone, kept, dm)])
    assert await subscriptions.forget(gone) == 2
    assert await subscriptions.forget(gone) == 0
    assert set(await subscriptions.everything()) == {kept, HERE}
    posted = next(e for e in await store.take("w", claim_idle=60, count=100) if e.delivery.destination == gone)
    await store.done(posted, PostRef(gone, "1700000000.000100"))
    assert await store.delivered(gone, posted.delivery.paper_id) == "1700000000.000100"
    assert await store.drop(["slack:T1/"]) == 5  # the channel's and the person's still queued
    assert await store.delivered(gone, posted.delivery.paper_id) is None  # its records went too
    left = await store.take("w", claim_idle=60, count=100)
    assert {e.delivery.destination for e in left} == {kept}
    assert await store.drop(["slack:T1/"]) == 0


async def test_sealed_installations_show_no_token_and_open_only_with_their_secret(
    store: RedisStore, redis_client: redis.Redis
) -> None:
    sealed = RedisInstallations(redis_client, store.key(), Seal("client-secret-1"))
    await sealed.save("T1", {"team_id": "T1", "bot_token": "xoxb-very-secret"})
    raw = await redis_client.hget(store.key("installs"), "T1")
    assert b"xoxb-very-secret" not in raw
    assert b"team_id" not in raw  # nothing of it readable (short strings may occur in base64 by chance)
    assert await sealed.find("T1") == {"team_id": "T1", "bot_token": "xoxb-very-secret"}
    with pytest.raises(StoreError, match="SLACK_CLIENT_SECRET_PREVIOUS"):
        await RedisInstallations(redis_client, store.key(), Seal("client-secret-2")).find("T1")
    rotated = RedisInstallations(redis_client, store.key(), Seal("client-secret-2", "client-secret-1"))
    assert (await rotated.find("T1") or {})["bot_token"] == "xoxb-very-secret"  # and sealed again, with the new secret
    assert (await RedisInstallations(redis_client, store.key(), Seal("client-secret-2")).find("T1") or {})["team_id"] == "T1"
    await redis_client.hset(store.key("installs"), "T1", raw[:-3] + b"abc")  # altered
    with pytest.raises(StoreError, match="altered"):
        await sealed.find("T1")
