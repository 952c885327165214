"""Delivery through SlackOutbound to the stand-in Web API: limits, bursts of 429/500, refusals, pace."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter

import pytest

from adapters.slack.outbound import SlackOutbound, web_client
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.flow.delivery import Deliverer
from bot.model import Channel, Delivery, Destination
from tests.fakes import make_paper
from tests.hostile.papers import hostile_papers
from tests.slack.conftest import no_sleep
from tests.slack.standin import SlackStandIn
from tests.world import World

C1, C2 = Destination("slack", "C1"), Destination("slack", "C2")


async def deliver_until_settled(world: World, adapter: SlackOutbound, passes: int = 10) -> None:
    deliverer = Deliverer(
        world.store, world.store, {"slack": adapter}, "w", claim_idle=60, backoff=0, coordination=world.coordination
    )  # no waiting between passes
    for _ in range(passes):
        report = await deliverer.deliver()
        if not report.pending:
            return


@pytest.fixture
async def world():  # type: ignore[no-untyped-def]
    world = World()
    yield world
    await world.aclose()


async def test_hostile_papers_are_accepted_by_slack_and_ping_nobody(world: World, slack_api: SlackStandIn) -> None:
    papers = hostile_papers()
    await world.store.commit(papers, [Delivery(C1, p.id, ("<!channel>",)) for p in papers])
    await deliver_until_settled(world, SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep))
    assert [m.get("error") for _, m in slack_api.calls if m.get("ok") is False] == []
    assert len(slack_api.accepted) == len(papers)
    for message in slack_api.accepted:
        assert message["unfurl_links"] is False
        assert message["unfurl_media"] is False
        assert "link_names" not in message
        assert "parse" not in message
        assert "<!channel>" not in str(message)
        assert "<!here>" not in str(message)
        assert "<@U0123ABC>" not in str(message)


async def test_429_and_500_bursts_lose_nothing_and_duplicate_nothing(world: World, slack_api: SlackStandIn) -> None:
    papers = [make_paper(f"2611.0000{i}") for i in range(6)]
    await world.store.commit(papers, [Delivery(c, p.id) for p in papers for c in (C1, C2)])
    slack_api.fail(
        "chat.postMessage",
        (429, {"Retry-After": "0"}, {"ok": False, "error": "ratelimited"}),
        (500, {}, {"ok": False}),
        (503, {}, {"ok": False}),
        *[(500, {}, {"ok": False})] * 6,  # more than one call's retries: those papers wait for the next pass
        (429, {"Retry-After": "0"}, {"ok": False, "error": "ratelimited"}),
    )
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, retries=2, sleep=no_sleep)
    await deliver_until_settled(world, adapter)
    shown = Counter((m["channel"], m["blocks"][-1]["elements"][0]["value"]) for m in slack_api.accepted)
    assert shown == Counter({(c.channel, p.id): 1 for p in papers for c in (C1, C2)})
    assert [p.id for p in papers] == [m["blocks"][-1]["elements"][0]["value"] for m in slack_api.accepted if m["channel"] == "C1"]


async def test_a_channel_the_bot_is_not_in_is_paused_once_and_keeps_its_papers(
    world: World, slack_api: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    slack_api.forbidden.add("C2")
    papers = [make_paper(f"2611.0000{i}") for i in range(3)]
    await world.store.commit(papers, [Delivery(c, p.id) for p in papers for c in (C1, C2)])
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    deliverer = Deliverer(world.store, world.store, {"slack": adapter}, "w", claim_idle=60, coordination=world.coordination)
    for _ in range(3):
        await deliverer.deliver()
    assert len([m for m in slack_api.methods("chat.postMessage") if m["channel"] == "C2"]) == 1  # one try, no storm
    [paused] = [r for r in caplog.records if r.getMessage().startswith("destination paused")]
    assert paused.kv["problem"] == "Slack chat.postMessage to C2: not_in_channel"  # type: ignore[attr-defined]
    assert len(slack_api.accepted) == 3
    assert [d["paper"] for d in await world.store.dead_letters()] == ["2611.00000"]  # the refused post
    slack_api.forbidden.clear()  # someone invited the bot; then `paperbot deliveries --retry`:
    await world.store.requeue_dead()
    await world.coordination.unpause(C2)
    report = await deliverer.deliver()
    assert report.delivered == 3


async def test_one_message_per_second_per_channel_channels_in_parallel(world: World, slack_api: SlackStandIn) -> None:
    slack_api.channel_interval = 0.2  # the stand-in answers 429 to anything faster
    papers = [make_paper(f"2611.0000{i}") for i in range(3)]
    await world.store.commit(papers, [Delivery(c, p.id) for p in papers for c in (C1, C2)])
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0.25)  # real sleeps: pacing is the point
    started = time.monotonic()
    report = await Deliverer(
        world.store, world.store, {"slack": adapter}, "w", claim_idle=60, coordination=world.coordination
    ).deliver()
    elapsed = time.monotonic() - started
    assert report.delivered == 6
    assert slack_api.limited == 0
    assert 0.5 <= elapsed < 1.5  # 3 posts a channel at 0.25 s, both channels at once


async def test_digest_mode_posts_a_parent_and_a_thread(world: World, slack_api: SlackStandIn) -> None:
    papers = [make_paper(f"2611.0000{i}", upvotes=i) for i in range(5)]
    await world.store.commit(papers, [Delivery(C1, p.id) for p in papers])
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    deliverer = Deliverer(
        world.store,
        world.store,
        {"slack": adapter},
        "w",
        60,
        channel=lambda d: Channel(d, mode="digest", digest_size=2),
        coordination=world.coordination,
    )
    assert (await deliverer.deliver()).delivered == 5
    parent, *replies = slack_api.accepted
    assert parent["text"] == "5 new papers"
    assert "thread_ts" not in parent
    assert [r["thread_ts"] for r in replies] == [parent["ts"]] * 3
    assert [r["blocks"][-1]["elements"][0]["value"] for r in replies] == ["2611.00002", "2611.00001", "2611.00000"]


@pytest.mark.redis
async def test_three_workers_share_each_channels_pace_through_redis(embedded_redis) -> None:  # type: ignore[no-untyped-def]
    import redis.asyncio as redis_asyncio

    from bot.store.coordination import RedisCoordination
    from bot.store.redis import RedisStore

    client = redis_asyncio.Redis.from_url(embedded_redis.url, protocol=2)
    prefix = f"pace{time.time_ns()}:"
    store, coordination = RedisStore(client, prefix=prefix), RedisCoordination(client, prefix=prefix)
    papers = [make_paper(f"2611.0000{i}") for i in range(6)]
    await store.commit(papers, [Delivery(C1, p.id) for p in papers])
    with SlackStandIn(channel_interval=0.45) as api:  # 429 for anything faster; 150 ms of margin for transit jitter
        workers = []
        for n in range(3):
            adapter = SlackOutbound(web_client("xoxb-t", api.api_url), channel_interval=0.6)
            adapter.share_pace(coordination)
            workers.append(
                Deliverer(store, store, {"slack": adapter}, f"worker-{n}", claim_idle=60, batch=2, coordination=coordination)
            )
        # Each worker takes its share of the queue; together they post to the one channel.
        reports = await asyncio.gather(*(w.deliver() for w in workers))
    await client.aclose()
    assert sum(r.delivered for r in reports) == 6
    assert all(r.delivered > 0 for r in reports)  # all three workers posted to the one channel
    assert api.limited == 0
    gaps = [b["_at"] - a["_at"] for a, b in zip(api.accepted, api.accepted[1:], strict=False)]
    assert min(gaps) >= 0.45


async def test_a_card_slack_refuses_is_buried_and_the_papers_behind_it_post_in_the_same_pass(
    world: World, slack_api: SlackStandIn
) -> None:
    papers = [make_paper(f"2611.0000{i}") for i in range(4)]
    await world.store.commit(papers, [Delivery(C1, p.id) for p in papers])
    slack_api.fail("chat.postMessage", (200, {}, {"ok": False, "error": "invalid_blocks"}))  # the first card
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    report = await Deliverer(
        world.store, world.store, {"slack": adapter}, "w", claim_idle=60, coordination=world.coordination
    ).deliver()
    assert (report.delivered, report.dead, report.pending) == (3, 1, 0)  # one pass, not eight backoffs
    assert [m["blocks"][-1]["elements"][0]["value"] for m in slack_api.accepted] == ["2611.00001", "2611.00002", "2611.00003"]
    [dead] = await world.store.dead_letters()
    assert dead["paper"] == "2611.00000"
    assert "invalid_blocks" in dead["reason"]
    assert await world.coordination.paused(C1) is None  # the channel itself is fine


async def test_a_refused_digest_is_posted_card_by_card_so_only_the_bad_card_is_buried(
    world: World, slack_api: SlackStandIn
) -> None:
    papers = [make_paper(f"2611.0000{i}", upvotes=10 - i) for i in range(3)]
    await world.store.commit(papers, [Delivery(C1, p.id) for p in papers])
    refused = (200, {}, {"ok": False, "error": "msg_too_long"})
    slack_api.fail("chat.postMessage", refused, refused)  # the digest, then its best card
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    digest = {C1: Channel(C1, mode="digest")}
    deliverer = Deliverer(
        world.store,
        world.store,
        {"slack": adapter},
        "w",
        claim_idle=60,
        channel=lambda d: digest.get(d, Channel(d)),
        coordination=world.coordination,
    )
    report = await deliverer.deliver()
    assert (report.delivered, report.dead, report.pending) == (2, 1, 0)
    assert [d["paper"] for d in await world.store.dead_letters()] == ["2611.00000"]


async def test_a_web_api_answering_with_an_html_page_is_a_clear_transient_failure(world: World, slack_api: SlackStandIn) -> None:
    paper = make_paper("2611.00001")
    await world.store.commit([paper], [Delivery(C1, paper.id)])
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    slack_api.fail("chat.postMessage", *[(200, {"Content-Type": "text/html"}, page)] * 2)  # type: ignore[list-item]
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, retries=1, sleep=no_sleep)
    deliverer = Deliverer(world.store, world.store, {"slack": adapter}, "w", claim_idle=60, coordination=world.coordination)
    report = await deliverer.deliver()
    assert report.failed == {C1.key: "Slack chat.postMessage to C1: HTTP 200 without a Web API answer after 2 attempts"}
    assert report.pending == 1  # kept for the next pass, not a dead letter


@pytest.mark.parametrize("history_scope", [True, False])
async def test_a_post_made_by_a_process_that_died_before_recording_it_is_found_not_repeated(
    world: World, slack_api: SlackStandIn, history_scope: bool
) -> None:
    slack_api.history_scope = history_scope
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    papers = [make_paper(f"2611.0009{i}") for i in range(3)]
    await world.store.commit(papers, [Delivery(C1, p.id) for p in papers])
    # A process takes the first entry, begins posting it, Slack accepts … and the process dies unrecorded.
    (dying, *_) = await world.store.take("dead-worker", claim_idle=60, count=1)
    await world.store.intend(dying)
    await adapter.post(C1, to_card(papers[0]))
    await asyncio.sleep(1.1)  # an orphan is claimed once idle for a second (two takers never race for it)
    await deliver_until_settled(world, adapter)  # another worker takes over (the dead one has no heartbeat)
    shown = Counter(m["metadata"]["event_payload"]["paper"] for m in slack_api.accepted)
    if history_scope:
        assert shown == Counter({p.id: 1 for p in papers})  # found in the channel and recorded: no duplicate
        assert len(slack_api.methods("conversations.history")) == 1  # asked once, for the one begun entry
    else:
        # Slack would not say: a duplicate, never a loss.
        assert shown == Counter({papers[0].id: 2, papers[1].id: 1, papers[2].id: 1})
    assert set(await world.store.earlier_posts(C1, [p.id for p in papers])) == {p.id for p in papers}
    assert not await world.store.intended(await world.store.take("w", claim_idle=0))


async def test_an_edit_replaces_the_card_in_place_and_a_deleted_message_is_gone(slack_api: SlackStandIn) -> None:
    adapter = SlackOutbound(web_client("xoxb-t", slack_api.api_url), channel_interval=0, sleep=no_sleep)
    paper = make_paper("2611.00001", title="Q&A <for> *all*")
    post = await adapter.post(C1, to_card(paper))
    updated = dataclasses.replace(paper, upvotes=150, links=dataclasses.replace(paper.links, code="https://github.com/a/b"))
    await adapter.edit(post, to_card(updated))
    [edited] = slack_api.updated
    assert (edited["channel"], edited["ts"]) == ("C1", post.message_id)  # the same message
    assert "https://github.com/a/b" in json.dumps(edited["blocks"])
    assert "<for>" not in json.dumps(edited["blocks"])  # escaped like a post
    assert len(slack_api.accepted) == 1
    slack_api.accepted.clear()  # someone deleted it
    with pytest.raises(DeliveryError) as gone:
        await adapter.edit(post, to_card(updated))
    assert gone.value.gone
    assert not gone.value.permanent  # the channel is fine
