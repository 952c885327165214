"""The personal feed on Discord, through the unmodified discord.py client and the loopback Discord:
typed options for follow, similar papers and a reader's picks as embeds, digests by direct message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.model import Delivery, Destination, Following
from tests.discord.conftest import ADA, DiscordHarness
from tests.discord.standin import CHANNEL
from tests.fakes import listing

HERE = Destination("discord", str(CHANNEL))
PAPERS = listing()[:120]


async def test_follow_takes_its_time_as_a_typed_option_and_lists_what_is_followed(discord_bot: DiscordHarness) -> None:
    [answer] = await discord_bot.command("follow", query="robots at 9", at="07:15")
    assert (
        answer["content"]
        == "Following new papers matching “robots at 9”. Your digest arrives by direct message daily at 07:15 (UTC)."
    )
    [listed] = await discord_bot.command("following")
    assert listed["content"] == "You follow (daily digest at 07:15, UTC):\n1. robots at 9"


async def test_similar_and_for_you_answer_with_embeds_that_say_why(discord_bot: DiscordHarness) -> None:
    await discord_bot.world.store.commit(PAPERS, [])
    [similar] = await discord_bot.command("similar", paper=PAPERS[0].id)
    assert similar["content"].startswith("Recent papers most like")
    assert len(similar["embeds"]) == 2  # the World's page size
    assert "similarity 0." in json.dumps(similar["embeds"])
    [empty] = await discord_bot.command("foryou")
    assert "learns what you like from the papers you save" in empty["content"]
    for paper in PAPERS[:3]:
        await discord_bot.world.library.save(ADA, paper)
    [picks] = await discord_bot.command("foryou")
    assert "like your saved: " in json.dumps(picks["embeds"])


async def test_a_digest_goes_to_the_readers_direct_messages_and_closed_ones_are_explained(discord_bot: DiscordHarness) -> None:
    world, api = discord_bot.world, discord_bot.discord
    await world.store.commit(PAPERS, [])
    due = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    await world.follows.keep(Following(ADA, ("cat:cs.CV",), f"{due:%H:%M}", "UTC"))
    assert await world.digests(lambda: due).queue() == 1
    deliverer = discord_bot.deliverer()
    assert (await deliverer.deliver()).delivered == 1
    reader = int(ADA.user_id)
    message = api.messages[0]
    assert {m["channel_id"] for m in api.messages} == {str(api.dm_channels[reader])}  # POST /users/@me/channels first
    assert message["content"] == f"**Your papers for {due:%A %d %B}**"
    assert "follows: cat:cs.CV" in json.dumps(message["embeds"])
    assert all(1 <= len(m["embeds"]) <= 5 for m in api.messages)  # five cards a message read well on a phone

    api.closed_dms.add(reader)
    await world.store.queue_recap(Delivery(Following(ADA).inbox, PAPERS[0].id, recap=(PAPERS[0].id,), title="x"), "t", 60)
    report = await deliverer.deliver()
    assert (report.dead, report.failed) == (1, {})
    assert await world.coordination.paused(Following(ADA).inbox) is None
    [told] = await discord_bot.command("following")
    assert told["content"].startswith("Your daily digest could not be sent to you by direct message")
