"""The personal feed through the real bolt app and Slack adapter: saves by reaction train a reader's
model, ``/papers follow saved`` takes their Slack time zone, and the digest arrives once, by DM."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.flow.delivery import Deliverer, DeliveryReport
from bot.model import Delivery, Destination, UserRef
from tests.fakes import listing
from tests.slack.conftest import SlackHarness, event_body, signed, slash_body

C1 = Destination("slack", "C1")
ADA = UserRef("slack", "UADA")
FORM, JSON = "application/x-www-form-urlencoded", "application/json"
PAPERS = listing()
ROBOTS = [p for p in PAPERS if p.categories[0] == "cs.RO"]


async def deliver(slack: SlackHarness) -> DeliveryReport:
    world = slack.world
    deliverer = Deliverer(
        world.store, world.store, {"slack": slack.adapter}, "w", 60, coordination=world.coordination,
        undeliverable=world.digests(lambda: datetime.now(UTC)).undeliverable,
    )  # fmt: skip
    return await deliverer.deliver()


async def ask(slack: SlackHarness, text: str) -> str:
    status, body = await slack.dispatch(signed(slash_body(text), FORM))
    assert status == 200
    return str(json.loads(body)["text"])


async def save_five_by_reaction(slack: SlackHarness) -> None:
    """Five robotics papers posted in C1, then saved with the bookmark reaction as a person would."""
    await slack.world.store.commit(ROBOTS[:5], [Delivery(C1, p.id) for p in ROBOTS[:5]])
    await slack.world.store.commit([p for p in PAPERS if p not in ROBOTS[:5]], [])
    assert (await deliver(slack)).delivered == 5
    for n, posted in enumerate(slack.api.accepted[:5]):
        reaction = {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": posted["ts"]}}
        assert (await slack.dispatch(signed(event_body("reaction_added", f"Ev{n}", **reaction), JSON)))[0] == 200
    assert {s.paper.id for s in await slack.world.library.saved(ADA)} == {p.id for p in ROBOTS[:5]}


async def test_saves_by_reaction_then_follow_saved_then_one_digest_by_dm_at_that_hour(slack: SlackHarness) -> None:
    await save_five_by_reaction(slack)
    slack.api.zones["UADA"] = "Asia/Tokyo"  # what users.info says
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    due = (tokyo + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)  # the next hour, there
    reply = await ask(slack, f"follow saved at {due:%H}:00")
    assert (
        reply
        == f"Following papers like the ones you save. Your digest arrives by direct message daily at {due:%H}:00 (Asia/Tokyo)."
    )

    assert await slack.world.digests(lambda: due - timedelta(minutes=5)).queue() == 0  # the clock is simulated
    assert await slack.world.digests(lambda: due).queue() == 1
    posted_before = len(slack.api.accepted)
    assert (await deliver(slack)).delivered == 1
    [dm] = slack.api.accepted[posted_before:]
    assert dm["channel"] == "DUADA"  # conversations.open: the person's direct messages, never a channel
    assert dm["text"] == f"Your papers for {due:%A %d %B}"
    # Ranked by the reader's model: the digest's papers are its picks among the papers first seen that day.
    day = set(slack.world.index.added_between((due - timedelta(days=1)).timestamp(), due.timestamp()))
    picks = [p.paper_id for p in await slack.world.feed.for_you(ADA, 10, among=day)]
    shown = json.dumps(dm["blocks"])
    assert [pid for pid in picks if pid in shown][:5] == picks[:5]  # the parent shows the best five, in order
    assert shown.count("like your saved: ") >= 5
    assert sum(1 for p in picks if p in {r.id for r in ROBOTS}) >= 5

    assert await slack.world.digests(lambda: due + timedelta(minutes=30)).queue() == 0  # the scheduler again
    assert (await deliver(slack)).delivered == 0
    assert len([m for m in slack.api.accepted if m["channel"] == "DUADA" and "thread_ts" not in m]) == 1


async def test_a_reader_who_cannot_be_messaged_is_told_once_and_nothing_is_paused(slack: SlackHarness) -> None:
    await save_five_by_reaction(slack)
    slack.api.unreachable.add("UADA")
    now = datetime.now(UTC)
    due = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    await ask(slack, f"follow saved at {due:%H}:00")
    assert await slack.world.digests(lambda: due).queue() == 1
    report = await deliver(slack)
    assert report.dead == 1
    assert report.failed == {}
    [letter] = await slack.world.store.dead_letters()
    assert "user_disabled" in letter["reason"]
    assert await slack.world.coordination.paused(Destination("slack", "@UADA")) is None
    first = await ask(slack, "following")
    assert first.startswith("Your daily digest could not be sent to you by direct message")
    assert "1. saved" in first
    assert (await ask(slack, "following")).startswith("You follow")  # told once
