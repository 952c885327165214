"""Discord channels as they come and go: a deleted channel is forgotten (not paused for ever), the
channels of servers that removed the bot while no gateway was up are forgotten at READY, a channel's type
is asked once, and an interaction that fails unexpectedly is still answered."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from adapters.discord.client import DISCORD_API, new_client
from adapters.discord.inbound import FAILED, DiscordInbound
from bot.cards import to_card
from bot.model import Delivery, Destination
from tests.discord.conftest import TOKEN, DiscordHarness
from tests.discord.standin import CHANNEL, DiscordStandIn, until
from tests.fakes import make_paper
from tests.world import World

HERE = Destination("discord", str(CHANNEL))
GONE = Destination("discord", "1249000000000000099")


async def test_a_deleted_channel_is_forgotten_and_the_others_go_on(discord_bot: DiscordHarness) -> None:
    world, api = discord_bot.world, discord_bot.discord
    await world.subscriptions.subscribe(GONE, "robots")
    api.deleted.add(int(GONE.channel))
    papers = [make_paper(f"2612.0010{n}") for n in range(3)]
    await world.store.commit(papers, [Delivery(d, p.id) for p in papers for d in (HERE, GONE)])
    report = await discord_bot.deliverer().deliver()
    assert report.delivered == 3  # the channel that exists got its papers
    assert await world.subscriptions.topics(GONE) == []
    assert [q["dest"] for q in await world.store.queued()] == []  # nothing left owed to a channel that is gone
    assert await world.coordination.paused(GONE) is None  # forgotten, not paused for an hour and tried for ever


async def test_a_channel_is_asked_for_its_type_once(discord_bot: DiscordHarness) -> None:
    papers = [make_paper(f"2612.0020{n}") for n in range(4)]
    await discord_bot.world.store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    assert (await discord_bot.deliverer().deliver()).delivered == 4
    looked_up = [r for r in discord_bot.discord.requests if r[0] == "GET" and r[1] == f"/channels/{CHANNEL}"]
    assert len(looked_up) <= 1


async def test_channels_of_servers_gone_while_offline_are_forgotten_at_ready() -> None:
    with DiscordStandIn() as api:
        world = World()
        await world.subscriptions.subscribe(HERE, "agents")
        await world.subscriptions.subscribe(GONE, "robots")  # its server removed the bot while paperbot was down
        inbound = DiscordInbound(new_client(api.api_url), TOKEN)
        running = asyncio.create_task(inbound.run(world.core))
        try:
            await until(lambda: inbound.connected, 10)
            for _ in range(100):  # discord.py calls itself ready ~2 s after the last server arrives
                if not await world.subscriptions.topics(GONE):
                    break
                await asyncio.sleep(0.05)
            assert await world.subscriptions.topics(GONE) == []
            assert await world.subscriptions.topics(HERE) == ["agents"]  # a channel it still sees is kept
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await world.aclose()
            new_client(DISCORD_API)


class Exploding:
    """A command core with a bug: every command raises."""

    async def run(self, *args: Any) -> Any:
        raise RuntimeError("a bug")

    def __getattr__(self, name: str) -> Any:
        async def nothing(*args: Any, **kwargs: Any) -> Any:
            return []

        return nothing


async def test_an_interaction_that_fails_unexpectedly_is_still_answered(discord_bot: DiscordHarness) -> None:
    discord_bot.inbound.attach(Exploding())  # type: ignore[arg-type]
    [answer] = await discord_bot.command("topics")
    assert answer["content"] == FAILED


async def test_a_post_made_by_a_process_that_died_is_found_after_the_nonce_window(discord_bot: DiscordHarness) -> None:
    world, api = discord_bot.world, discord_bot.discord
    api.nonce_seconds = 0  # Discord forgot the nonce: sending the card again would post it twice
    papers = [make_paper(f"2612.0030{n}") for n in range(3)]
    await world.store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    # A process takes the first entry, begins posting it, Discord accepts … and the process dies unrecorded.
    (dying, *_) = await world.store.take("dead-worker", claim_idle=60, count=1)
    await world.store.intend(dying)
    await discord_bot.adapter.post(HERE, to_card(papers[0]))
    await asyncio.sleep(1.1)  # an orphan is claimed once idle for a second
    report = await discord_bot.deliverer().deliver()
    assert report.already_delivered == 1
    shown = Counter(c["custom_id"] for m in api.messages for row in m["components"] for c in row["components"])
    assert shown == Counter({f"paper:save:{p.id}": 1 for p in papers})  # found in the channel: no duplicate
    assert api.history_reads == 1  # one look at the channel, for the one begun entry
