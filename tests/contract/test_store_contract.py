"""The Store contract, run against fakeredis, the embedded Redis binary and Debian's redis-server."""

from __future__ import annotations

import asyncio
import json
import zlib

import pytest
import redis.asyncio as redis

from bot.model import Delivery, Destination, PostRef
from bot.store.redis import RedisStore
from bot.store.retention import SEEN_DAYS
from tests.conftest import unique_prefix
from tests.fakes import make_paper

A, B = Destination("console", "a"), Destination("slack", "C0B")


async def test_unseen_is_everything_at_first_and_keeps_input_order(store: RedisStore) -> None:
    assert await store.unseen(["3", "1", "2"]) == ["3", "1", "2"]
    assert await store.unseen([]) == []


async def test_commit_marks_seen_caches_and_queues_atomically(store: RedisStore) -> None:
    p1, p2 = make_paper("2603.00001"), make_paper("2603.00002")
    deliveries = [Delivery(A, p1.id), Delivery(B, p1.id, ("reasoning",)), Delivery(A, p2.id)]
    assert await store.commit([p1, p2], deliveries) == [p1.id, p2.id]
    assert await store.unseen([p1.id, p2.id, "2603.00003"]) == ["2603.00003"]
    assert await store.paper(p1.id) == p1
    assert await store.paper("2603.09999") is None
    entries = await store.take("w1", claim_idle=60)
    assert sorted((e.delivery.destination.key, e.delivery.paper_id, e.delivery.why) for e in entries) == [
        ("console:a", p1.id, ()),
        ("console:a", p2.id, ()),
        ("slack:C0B", p1.id, ("reasoning",)),
    ]


async def test_a_paper_committed_twice_is_queued_once(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    assert await store.commit([paper], [Delivery(A, paper.id)]) == [paper.id]
    assert await store.commit([paper], [Delivery(A, paper.id)]) == []
    assert len(await store.take("w1", claim_idle=60)) == 1


async def test_concurrent_commits_of_the_same_paper_queue_it_exactly_once(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    results = await asyncio.gather(*(store.commit([paper], [Delivery(A, paper.id)]) for _ in range(20)))
    assert sum(len(r) for r in results) == 1
    assert len(await store.take("w1", claim_idle=60)) == 1


async def test_entries_stay_pending_until_done_and_are_not_handed_to_two_workers(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(A, paper.id)])
    [first] = await store.take("w1", claim_idle=60)
    assert [e.entry_id for e in await store.take("w1", claim_idle=60)] == [first.entry_id]  # still mine, once
    assert await store.take("w2", claim_idle=60) == []  # not idle long enough to be taken over
    await store.done(first, PostRef(A, "1700000000.000100"))
    assert await store.delivered(A, paper.id) == "1700000000.000100"
    assert await store.delivered(B, paper.id) is None
    assert await store.take("w1", claim_idle=60) == []


async def test_a_dead_workers_entries_are_taken_over_once_idle(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(A, paper.id)])
    [lost] = await store.take("dead-worker", claim_idle=60)
    await asyncio.sleep(0.05)
    [taken] = await store.take("w2", claim_idle=0.01)
    assert taken == lost
    assert await store.take("w3", claim_idle=60) == []


async def test_a_workers_entries_are_taken_over_at_once_when_its_heartbeat_stops(store: RedisStore) -> None:
    papers = [make_paper(f"2611.0000{n}") for n in range(3)]
    await store.commit(papers, [Delivery(A, p.id) for p in papers])
    await store.heartbeat("alive", 30)
    assert len(await store.take("alive", claim_idle=300)) == 3
    await asyncio.sleep(1.1)  # orphans are claimed once idle for a second, so two takers never race for one
    assert await store.take("other", claim_idle=300) == []  # a live worker's entries are never taken
    await store.heartbeat("alive", 0.001)  # its heartbeat stops (killed, or exited)
    await asyncio.sleep(0.05)
    taken = await store.take("other", claim_idle=300)
    assert sorted(e.delivery.paper_id for e in taken) == sorted(p.id for p in papers)  # at once, not after 300 s
    assert await store.take("third", claim_idle=300) == []  # and only once


async def test_a_retired_workers_leftovers_are_taken_over_at_once(store: RedisStore) -> None:
    paper = make_paper("2611.00009")
    await store.commit([paper], [Delivery(A, paper.id)])
    await store.heartbeat("leaving", 30)
    assert len(await store.take("leaving", claim_idle=300)) == 1
    await store.retire("leaving")  # exits cleanly with one entry unposted (say, its pipe closed)
    await asyncio.sleep(1.1)
    assert [e.delivery.paper_id for e in await store.take("next", claim_idle=300)] == [paper.id]


async def test_failed_attempts_are_counted_per_entry_and_cleared_when_settled(store: RedisStore) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(A, paper.id), Delivery(B, paper.id)])
    first, second = await store.take("w1", claim_idle=60)
    assert [await store.failed_attempt(first) for _ in range(3)] == [1, 2, 3]
    assert await store.failed_attempt(second) == 1
    await store.done(first, PostRef(A, "m1"))
    await store.bury(second, "gave up")
    requeued = await store.requeue_dead()
    [again] = await store.take("w1", claim_idle=60)
    assert requeued == 1
    assert await store.failed_attempt(again) == 1  # a requeued delivery starts counting afresh


async def test_an_idle_consumer_is_retired_but_one_with_pending_work_is_kept(
    store: RedisStore, redis_client: redis.Redis
) -> None:
    paper = make_paper("2603.00001")
    await store.commit([paper], [Delivery(A, paper.id)])
    [entry] = await store.take("busy", claim_idle=60)
    assert await store.take("idle", claim_idle=60) == []
    await store.retire("idle")
    await store.retire("busy")
    consumers = {c["name"].decode() for c in await redis_client.xinfo_consumers(store.key("outbox"), "delivery")}
    assert consumers == {"busy"}
    await store.done(entry, PostRef(A, "m1"))
    await store.retire("busy")
    assert await redis_client.xinfo_consumers(store.key("outbox"), "delivery") == []


async def test_stores_with_different_prefixes_never_see_each_others_keys(redis_client: redis.Redis) -> None:
    one, two = RedisStore(redis_client, prefix="{test:one}:"), RedisStore(redis_client, prefix="{test:two}:")
    try:
        await one.commit([make_paper("2603.00001")], [])
        assert await two.unseen(["2603.00001"]) == ["2603.00001"]
    finally:
        await redis_client.delete("{test:one}:seen", "{test:one}:paper:2603.00001", "{test:one}:outbox")


async def test_cached_papers_expire(store: RedisStore, redis_client: redis.Redis) -> None:
    await store.commit([make_paper("2603.00001")], [])
    ttl = await redis_client.pttl(store.key("paper", "2603.00001"))
    assert 0 < ttl <= 30 * 86400 * 1000
    assert await redis_client.ttl(store.key("seen")) == -1  # trimmed by period (below), never expired whole


class Clock:
    """A settable "now" for the store (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_seen_set_from_before_periods_is_adopted_and_forgotten_in_time(redis_client: redis.Redis) -> None:
    clock = Clock(1_800_000_000.0)
    store = RedisStore(redis_client, prefix=unique_prefix(), clock=clock)
    try:
        await redis_client.sadd(store.key("seen"), *[f"2401.{n:05d}" for n in range(12_000)])  # an older store's
        await store.commit([make_paper("2611.00041")], [])
        assert await store.unseen(["2401.00001", "2611.00041"]) == []  # nothing is news again …
        clock.now += 200 * 86400
        await store.commit([make_paper("2611.00042")], [])
        assert await store.unseen(["2401.00001", "2611.00041"]) == ["2401.00001", "2611.00041"]  # … nor kept forever
        assert await redis_client.scard(store.key("seen")) == 1
    finally:
        await redis_client.delete(*[key async for key in redis_client.scan_iter(match=store.key("*"))])


async def test_the_store_forgets_in_steps_and_never_too_early(redis_client: redis.Redis) -> None:
    clock = Clock(1_800_000_000.0)
    store = RedisStore(redis_client, prefix=unique_prefix(), paper_ttl=30 * 86400, clock=clock)
    try:
        paper = make_paper("2611.00031")
        await store.commit([paper], [Delivery(A, paper.id)])
        await store.keep_vectors({paper.id: bytes(64)})
        (entry,) = await store.take("w", claim_idle=60)
        await store.done(entry, PostRef(A, "m1"))

        clock.now += 29 * 86400  # within the cache period: everything is still known
        assert await store.unseen([paper.id]) == []
        assert await store.earlier_posts(A, [paper.id]) == {paper.id: "m1"}
        assert await store.paper_for_post(PostRef(A, "m1")) == paper.id
        assert not await store.commit([paper], [Delivery(A, paper.id)])  # never queued twice
        assert await store.vectors([paper.id]) == {paper.id: bytes(64)}

        clock.now += 14 * 86400  # past the cache period (and a week's bucket): post records go
        await store.commit([make_paper("2611.00032")], [])
        assert await store.earlier_posts(A, [paper.id]) == {}
        assert await store.paper_for_post(PostRef(A, "m1")) is None
        assert await store.paper(paper.id) is None  # the cache forgot it at the commit after its period
        assert await store.vectors([paper.id]) == {}  # and its vector with it
        assert await store.unseen([paper.id]) == []  # but the seen-set still knows it

        clock.now = 1_800_000_000.0 + (SEEN_DAYS - 1) * 86400
        assert await store.unseen([paper.id]) == []  # seen ids outlive every window a source reaches back
        clock.now = 1_800_000_000.0 + 180 * 86400  # past the window's last period (it covers 140-168 days)
        await store.commit([make_paper("2611.00033")], [])  # periods that left the window go at a commit
        assert await store.unseen([paper.id]) == [paper.id]
        assert await redis_client.smembers(store.key("seen")) == {b"2611.00032", b"2611.00033"}  # 137 days: kept
        keys = {k.decode() async for k in redis_client.scan_iter(match=store.key("*"))}
        assert len([k for k in keys if k.startswith(store.key("seen", ""))]) == 3  # two periods' lists, the index
        # Post buckets nobody writes again go at their expiry (server time).
        for bucket in [k for k in keys if k.startswith(store.key("posts"))]:
            assert 0 < await redis_client.ttl(bucket) <= 7 * 7 * 86400
    finally:
        await redis_client.delete(*[key async for key in redis_client.scan_iter(match=store.key("*"))])


async def test_aclose_is_idempotent(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client, prefix="test:close:")
    await store.aclose()
    await store.aclose()


@pytest.mark.redis
@pytest.mark.parametrize("redis_client", ["embedded", "system"], indirect=True)
async def test_detection_is_one_round_trip_for_a_whole_batch(store: RedisStore, redis_client: redis.Redis) -> None:
    await redis_client.config_resetstat()
    await store.unseen([f"2603.{i:05d}" for i in range(1000)])
    stats = await redis_client.info("commandstats")
    assert stats["cmdstat_smismember"]["calls"] == 1
    assert "cmdstat_sismember" not in stats


async def test_earlier_posts_answers_for_a_whole_queue_at_once(store: RedisStore) -> None:
    papers = [make_paper(f"2603.0000{n}") for n in range(3)]
    await store.commit(papers, [Delivery(A, p.id) for p in papers])
    first, *_ = await store.take("w1", claim_idle=60)
    await store.done(first, PostRef(A, "m-first"))
    assert await store.earlier_posts(A, [p.id for p in papers]) == {first.delivery.paper_id: "m-first"}
    assert await store.earlier_posts(B, [p.id for p in papers]) == {}
    assert await store.earlier_posts(A, []) == {}


async def test_a_store_knows_its_first_run_until_it_begins(store: RedisStore, redis_client: redis.Redis) -> None:
    assert await store.first_run()
    await store.begin()
    assert not await store.first_run()
    keys = [key async for key in redis_client.scan_iter(match=store.key("*"))]
    await redis_client.delete(*keys)  # Redis lost its data
    assert await store.first_run()


async def test_a_lost_delivery_group_is_made_again(store: RedisStore, redis_client: redis.Redis) -> None:
    paper = make_paper("2611.00007")
    await store.commit([paper], [Delivery(A, paper.id)])
    assert len(await store.take("w", claim_idle=60)) == 1
    await redis_client.delete(store.key("outbox"))  # the stream and its group, gone (a flush, a restart)
    other = make_paper("2611.00008")
    await store.commit([other], [Delivery(A, other.id)])  # the running process goes on committing …
    assert [e.delivery.paper_id for e in await store.take("w", claim_idle=60)] == [other.id]  # … and delivering


async def test_waiting_for_work_wakes_when_something_is_queued(store: RedisStore) -> None:
    tip = await store.wait_for_work("", 0)
    assert await store.wait_for_work(tip, 0.2) == tip  # nothing new: it waited, then said so

    async def queue_later() -> None:
        await asyncio.sleep(0.2)
        paper = make_paper("2611.00011")
        await store.commit([paper], [Delivery(A, paper.id)])

    started = asyncio.get_running_loop().time()
    queued = asyncio.create_task(queue_later())
    newest = await store.wait_for_work(tip, 10)
    await queued
    assert newest != tip
    assert asyncio.get_running_loop().time() - started < 2  # woken by the entry, not by the 10 s limit
    assert await store.wait_for_work(tip, 10) == newest  # an entry newer than the tip: no wait at all


async def test_the_recent_index_is_trimmed_at_commit_time(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client, prefix=unique_prefix(), paper_ttl=1)
    await store.commit([make_paper("2611.00021")], [])
    await asyncio.sleep(1.1)
    await store.commit([make_paper("2611.00022")], [])  # nobody queried in between
    assert await redis_client.zrange(store.key("recent"), 0, -1) == [b"2611.00022"]
    await redis_client.delete(*[key async for key in redis_client.scan_iter(match=store.key("*"))])


async def test_the_index_snapshot_is_kept_whole_and_expires_with_the_cache(store: RedisStore, redis_client: redis.Redis) -> None:
    assert await store.index_snapshot() is None
    blob = bytes(range(256)) * 4096  # binary, 1 MB
    await store.keep_index_snapshot(blob)
    assert await store.index_snapshot() == blob
    await store.keep_index_snapshot(b"newer")
    assert await store.index_snapshot() == b"newer"
    assert 0 < await redis_client.ttl(store.key("index", "snapshot")) <= 30 * 86400


async def test_papers_cached_by_earlier_versions_still_read(store: RedisStore, redis_client: redis.Redis) -> None:
    # Plain JSON (the first stores), zlib without a dictionary (until 2026-11-29), and today's form.
    for n, form in enumerate((bytes, lambda document: zlib.compress(document, 6))):
        old = make_paper(f"2603.0001{n}", title="Reasoning", upvotes=3)
        await redis_client.set(store.key("paper", old.id), form(json.dumps(old.to_json()).encode()))
        assert await store.paper(old.id) == old
    paper = make_paper("2603.00001", title="Reasoning", upvotes=3)
    document = json.dumps(paper.to_json()).encode()
    await store.commit([paper], [])
    stored = await redis_client.get(store.key("paper", paper.id))
    assert await store.paper(paper.id) == paper
    assert len(stored) < len(zlib.compress(document, 6)) - 100  # the preset dictionary pays for itself


async def test_a_paper_is_followed_for_the_tracking_window_then_forgotten(redis_client: redis.Redis) -> None:
    clock = [1_790_000_000.0]
    store = RedisStore(redis_client, prefix=unique_prefix(), clock=lambda: clock[0])
    old = make_paper("2611.00001", upvotes=3)
    await store.commit([old], [Delivery(A, old.id)], watched={A, B})  # A and B have upvote thresholds
    assert await store.first_seen([old.id]) == {old.id: 3}
    assert await store.queue_late([Delivery(A, old.id, ("rising",))]) == 0  # routed there at first sight
    assert await store.queue_late([Delivery(B, old.id, ("rising",))]) == 1
    assert await store.queue_late([Delivery(B, old.id, ("rising",))]) == 0  # once
    clock[0] += 15 * 86400  # two weeks on: its routed bucket left the window (dropped at the next commit)
    await store.commit([make_paper("2611.00002")], [], watched={A})
    assert await store.first_seen([old.id]) == {}
    assert await store.queue_late([Delivery(Destination("slack", "C0C"), old.id, ("rising",))]) == 0
    assert len([k async for k in redis_client.scan_iter(match=store.key("routed", "*"))]) == 1  # this week's only
    unwatched = make_paper("2611.00003", upvotes=3)
    await store.commit([unwatched], [Delivery(A, unwatched.id)])  # no destination with a threshold: not followed
    assert await store.first_seen([unwatched.id]) == {}
    keys = [k async for k in redis_client.scan_iter(match=store.key("*"))]
    await redis_client.delete(*keys)
