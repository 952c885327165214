"""Indexed routing gives exactly the naive all-pairs answer; the search index ranks and expires."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from bot.model import Delivery, Destination
from bot.query.index import INLINE, PaperIndex
from bot.query.matcher import Doc, Query, rank
from bot.query.parser import parse_query
from bot.query.routing import Route, Router, compile_route
from bot.store.redis import RedisStore
from tests.fakes import make_paper
from tests.unit.test_topics import random_paper, random_query


def naive_route(routes: list[Route], papers: list) -> list[Delivery]:  # type: ignore[type-arg]
    deliveries = []
    for paper in papers:
        doc = Doc.of(paper)
        for route in routes:
            why = tuple(q.text for q in route.queries if q.matches(doc))
            if (paper.upvotes or 0) >= route.min_upvotes and (why or route.catch_all):
                deliveries.append(Delivery(route.destination, paper.id, why))
    return deliveries


def test_the_index_routes_exactly_like_the_naive_loop() -> None:
    rng = random.Random(3)
    papers = [random_paper(rng, n) for n in range(150)]
    routes = [
        compile_route(Destination("slack", f"C{n}"), [random_query(rng) for _ in range(rng.randint(0, 3))], catch_all=n % 5 == 0)
        for n in range(60)
    ]
    assert Router(routes).route(papers) == naive_route(routes, papers)


def test_why_lists_every_matching_topic_in_subscription_order_and_thresholds_apply() -> None:
    paper = make_paper("2603.00001", title="Reasoning robots", upvotes=3)
    routes = [
        compile_route(Destination("console", "a"), ["robot", "protein", "reasoning"]),
        compile_route(Destination("console", "b"), ["robot"], min_upvotes=10),
        compile_route(Destination("console", "c"), [], catch_all=True),
        compile_route(Destination("console", "d"), []),
    ]
    assert Router(routes).route([paper]) == [
        Delivery(Destination("console", "a"), paper.id, ("robot", "reasoning")),
        Delivery(Destination("console", "c"), paper.id, ()),
    ]


def test_a_stored_subscription_that_no_longer_parses_is_disabled_alone() -> None:
    route = compile_route(Destination("console", "a"), ["robot", "foo:bar"])
    assert [q.text for q in route.queries] == ["robot"]
    assert [topic for topic, _ in route.disabled] == ["foo:bar"]
    assert "unknown field" in route.disabled[0][1]


@pytest.fixture
async def store():  # type: ignore[no-untyped-def]
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    yield RedisStore(client, prefix="s:")
    await client.aclose()


async def test_search_ranks_title_matches_then_recency_then_upvotes_and_pages(store: RedisStore) -> None:
    now = datetime(2026, 3, 6, 12, tzinfo=UTC)
    papers = [
        make_paper("2603.00001", title="Other", abstract="About reasoning.", published=now),
        make_paper("2603.00002", title="Reasoning at scale", published=now - timedelta(days=20)),
        make_paper("2603.00003", title="Reasoning today", published=now),
        make_paper("2603.00004", title="Reasoning today, popular", published=now, upvotes=100),
        make_paper("2603.00005", title="Proteins", published=now),
    ]
    await store.commit(papers, [])
    index = PaperIndex(store, ttl_seconds=30 * 86400)
    assert await index.refresh() == 5
    assert await index.refresh() == 0  # incremental: nothing new
    ids, total, _ = index.search(parse_query("reasoning"), limit=2, now=now)
    assert total == 4
    assert ids == ["2603.00004", "2603.00003"]
    assert index.search(parse_query("reasoning"), limit=2, offset=2, now=now)[0] == ["2603.00002", "2603.00001"]
    assert index.search(parse_query("-reasoning"), limit=5, now=now)[0] == ["2603.00005"]  # unanchored: full scan


async def test_the_index_follows_new_commits_and_forgets_expired_papers(store: RedisStore) -> None:
    clock = [1_000_000.0]
    index = PaperIndex(store, ttl_seconds=100, clock=lambda: clock[0])
    index.add(make_paper("2603.00001", title="Old reasoning"))
    clock[0] += 60
    await store.commit([make_paper("2603.00002", title="New reasoning")], [])
    await index.refresh()
    assert index.count(parse_query("reasoning")).total == 2
    clock[0] += 50  # the first paper is now 110 s old
    await index.refresh()
    assert index.search(parse_query("reasoning"), 5)[0] == ["2603.00002"]
    assert len(index) == 1


@pytest.mark.parametrize("walk", [False, True], ids=["scored-whole", "walked"])
def test_the_index_searches_exactly_like_the_naive_scan(walk: bool) -> None:
    # The set-algebra engine (postings, quality classes, the page) against the definition: every
    # paper's Query.quality by scanning, ranked by topics.rank, ties by date then id. "walked" makes
    # every class take the threshold walk and every phrase be checked lazily, as big ones are.
    rng = random.Random(7)
    now = datetime(2026, 3, 9, tzinfo=UTC)
    papers = [
        dataclasses.replace(
            random_paper(rng, n), published=now - timedelta(hours=rng.randint(0, 400)), keywords=("robot",) * (n % 3 == 0)
        )
        for n in range(300)
    ]
    index = PaperIndex(None, ttl_seconds=30 * 86400)  # type: ignore[arg-type]  # add() needs no store
    if walk:
        index.direct = index.verify_all = 0
    for paper in papers:
        index.add(paper)
    docs = [Doc.of(p) for p in papers]
    for _ in range(300):
        query = parse_query(random_query(rng))
        hits = sorted(
            ((rank(q, d, now), d.published, d.paper_id) for d in docs if (q := query.quality(d))),
            reverse=True,
        )
        expected = [pid for _, _, pid in hits]
        offset = rng.randint(0, 3)
        ids, total, _ = index.search(query, 5, offset, now=now)
        assert total == len(expected), query.text
        assert ids == expected[offset : offset + 5], query.text


def test_a_subscription_that_fails_on_a_paper_is_disabled_alone(caplog: pytest.LogCaptureFixture) -> None:
    @dataclasses.dataclass(frozen=True)
    class Exploding:  # stands in for any bug a query node could hit on one odd paper
        def hit(self, doc: Doc) -> bool:
            raise RecursionError("maximum recursion depth exceeded")

        def anchors(self) -> None:
            return None

    evil = Route(Destination("console", "evil"), (Query("boom", Exploding()),))  # type: ignore[arg-type]
    good = compile_route(Destination("console", "good"), ["reasoning"])
    router = Router([evil, good])
    papers = [make_paper("2603.00001", title="Reasoning"), make_paper("2603.00002", title="More reasoning")]
    assert router.route(papers) == [Delivery(Destination("console", "good"), p.id, ("reasoning",)) for p in papers]
    assert caplog.text.count("subscription disabled") == 1  # once, not once per paper


async def test_a_new_index_starts_from_the_snapshot_and_adds_only_what_came_after(store: RedisStore) -> None:
    rng = random.Random(11)
    now = datetime(2026, 3, 9, tzinfo=UTC)
    papers = [dataclasses.replace(random_paper(rng, n), published=now - timedelta(hours=n)) for n in range(300)]
    await store.commit(papers[:250], [])
    first = PaperIndex(store, ttl_seconds=30 * 86400)
    assert await first.refresh() == 250  # built from the papers, then saved as the snapshot
    await first.saved()
    assert await store.index_snapshot() is not None
    await store.commit(papers[250:], [])
    second = PaperIndex(store, ttl_seconds=30 * 86400)
    assert await second.refresh() == 50  # the snapshot's 250, then only the 50 committed after it
    assert await first.refresh() == 50
    docs = [Doc.of(p) for p in papers]
    for _ in range(200):
        query = parse_query(random_query(rng))
        expected = sorted(((rank(q, d, now), d.published, d.paper_id) for d in docs if (q := query.quality(d))), reverse=True)
        assert second.search(query, 5, now=now) == first.search(query, 5, now=now), query.text
        assert second.search(query, 5, now=now) == ([pid for *_, pid in expected[:5]], len(expected), True), query.text


async def test_a_damaged_or_foreign_snapshot_is_rebuilt_and_replaced(store: RedisStore) -> None:
    await store.commit([make_paper("2603.00001", title="Reasoning"), make_paper("2603.00002", title="Robots")], [])
    for junk in (b"junk", b'paperbot-index\n{"format": 0}\n', b"paperbot-index\n{}\nnot zlib"):
        await store.keep_index_snapshot(junk)
        index = PaperIndex(store, ttl_seconds=30 * 86400)
        assert await index.refresh() == 2  # built from the cached papers
        assert index.search(parse_query("robot"), 5)[0] == ["2603.00002"]
        await index.saved()
        assert await store.index_snapshot() != junk  # and the snapshot written again


async def test_a_snapshot_keeps_replaced_and_expired_papers_out(store: RedisStore) -> None:
    clock = [1_000_000.0]
    first = PaperIndex(store, ttl_seconds=100, clock=lambda: clock[0])
    first.add(make_paper("2603.00001", title="Old reasoning"))
    first.add(make_paper("2603.00002", title="Robots"))
    first.add(make_paper("2603.00002", title="Reasoning robots"))  # a newer copy replaces the first
    clock[0] += 60
    await store.commit([make_paper("2603.00003", title="New reasoning")], [])
    await first.refresh()
    clock[0] += 50  # 2603.00001 and 2603.00002 expire: two of four numbers dead, so the table is compacted
    await store.commit([make_paper("2603.00004", title="Newest reasoning")], [])
    await first.refresh()
    assert first.search(parse_query("reasoning"), 5)[0] == ["2603.00004", "2603.00003"]
    await first.saved()
    second = PaperIndex(store, ttl_seconds=100, clock=lambda: clock[0])
    await second.refresh()
    assert second.search(parse_query("reasoning"), 5) == first.search(parse_query("reasoning"), 5)
    assert len(second) == 2


async def test_a_phrase_with_many_candidates_is_answered_off_the_event_loop() -> None:
    index = PaperIndex(None, ttl_seconds=30 * 86400)  # type: ignore[arg-type]  # add() needs no store
    index.verify_all = 3
    for n in range(6):
        index.add(make_paper(f"2603.0000{n}", title="Graph networks" if n == 5 else "Networks of a graph"))
    phrase, word = parse_query('"graph networks"'), parse_query("graph")
    assert index.cost(phrase) > INLINE >= index.cost(word)  # the heavy lane, however cheap it looks
    found = await index.find(phrase, 5)
    assert (found.ids, found.exact) == (["2603.00005"], False)
    index.close()


async def test_an_updated_paper_still_expires_when_its_first_copy_would_have(store: RedisStore) -> None:
    clock = [1_000_000.0]
    index = PaperIndex(store, ttl_seconds=100, clock=lambda: clock[0])
    index.add(make_paper("2603.00001", title="Old reasoning", upvotes=1))
    clock[0] += 60
    index.add(make_paper("2603.00002", title="New reasoning"))
    await store.commit([make_paper("2603.00001", title="Old reasoning", upvotes=1)], [])
    await store.update([make_paper("2603.00001", title="Old reasoning", upvotes=90)])
    await index.refresh()  # the update is indexed again, at the end, keeping its first time
    assert index.top(0, 1).ids == ["2603.00001"]
    clock[0] += 50  # 110 s after the first copy, 50 s after the second paper
    await index.refresh()
    assert index.search(parse_query("reasoning"), 5).ids == ["2603.00002"]
    await index.saved()
