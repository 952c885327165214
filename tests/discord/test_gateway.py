"""The Discord connection itself, through the loopback stand-in: login over REST, one gateway session,
no command sync as a side effect of starting, and a dropped socket resumed."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from adapters.discord.client import DISCORD_API, new_client
from adapters.discord.inbound import DiscordInbound
from adapters.discord.outbound import DiscordOutbound
from bot.app import sync_discord
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination
from bot.settings.schema import settings_from
from tests.discord.conftest import TOKEN, DiscordHarness
from tests.discord.standin import APP_ID, BOT_ID, CHANNEL, GUILD, DiscordStandIn, until
from tests.fakes import make_paper
from tests.world import World

HERE = Destination("discord", str(CHANNEL))


async def test_login_and_one_gateway_session_and_no_command_sync_on_start(discord_bot: DiscordHarness) -> None:
    asked = [(method, path) for method, path, _ in discord_bot.discord.requests]
    assert asked[:3] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me"), ("GET", "/gateway/bot")]
    assert discord_bot.discord.identified == 1
    assert discord_bot.inbound.client.user is not None
    assert discord_bot.inbound.client.user.id == BOT_ID
    assert discord_bot.discord.synced == []  # syncing is a deploy step, never a side effect of starting


async def test_a_dropped_gateway_socket_is_resumed_and_commands_go_on(discord_bot: DiscordHarness) -> None:
    discord_bot.discord.drop()
    await until(lambda: discord_bot.discord.resumed == 1)
    assert discord_bot.discord.identified == 1  # the same session, resumed
    await discord_bot.world.store.commit([make_paper("2611.00001", title="Reasoning with tokens")], [])
    [answer] = await discord_bot.command("search", query="reasoning")
    assert answer["content"] == "1 paper matches “reasoning” (showing 1–1)"


@pytest.mark.parametrize(
    ("guild", "clear", "path", "count"),
    [
        (None, False, f"/applications/{APP_ID}/commands", 1),
        (GUILD, False, f"/applications/{APP_ID}/guilds/{GUILD}/commands", 1),
        (GUILD, True, f"/applications/{APP_ID}/guilds/{GUILD}/commands", 0),
    ],
)
async def test_commands_are_synced_only_by_the_explicit_step(guild: int | None, clear: bool, path: str, count: int) -> None:
    with DiscordStandIn() as discord_api:
        env = {"DISCORD_TOKEN": "discord-sync-token", "DISCORD_API_URL": discord_api.api_url}
        try:
            assert await sync_discord(settings_from({}, env), guild, clear) == count
        finally:
            new_client(DISCORD_API)
        [(synced_path, commands)] = discord_api.synced
        assert discord_api.identified == 0  # a REST step: no gateway session
    assert synced_path == path
    assert [c["name"] for c in commands] == ["papers"] * count


async def test_posting_alone_uses_rest_only_and_never_syncs() -> None:
    with DiscordStandIn() as discord_api:
        client = new_client(discord_api.api_url)
        try:
            post = await DiscordOutbound(client, "discord-post-token").post(HERE, to_card(make_paper("2611.00001")))
            await client.close()
        finally:
            new_client(DISCORD_API)
        asked = [path for _, path, _ in discord_api.requests]
    assert post.message_id == discord_api.messages[0]["id"]
    assert "/gateway/bot" not in asked  # `run --once` and delivery workers never open the gateway …
    assert discord_api.identified == 0
    assert discord_api.synced == []  # … nor sync commands (logging in used to)


async def test_two_workers_share_a_channels_pace_through_the_store(discord_bot: DiscordHarness) -> None:
    # Default pace (one message a second per channel), shared through Redis turns, as every worker does.
    workers = [DiscordOutbound(discord_bot.inbound.client, "discord-test-token") for _ in range(2)]
    for worker in workers:
        worker.share_pace(discord_bot.world.coordination)
    cards = [to_card(make_paper(f"2611.0000{n}", title=f"Paced {n}")) for n in range(4)]
    await asyncio.gather(*(workers[n % 2].post(HERE, card) for n, card in enumerate(cards)))
    gaps = [b - a for a, b in itertools.pairwise(discord_bot.discord.arrivals)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.95  # never two messages in a channel within a second, whichever worker sends


async def test_gateway_reconnect_and_invalid_session_are_followed_and_commands_go_on(discord_bot: DiscordHarness) -> None:
    api = discord_bot.discord
    api.reconnect()  # op 7: close and resume
    await until(lambda: api.resumed == 1)
    api.invalidate(resumable=False)  # op 9: a new session, after discord.py's 1-5 s
    await until(lambda: api.identified == 2, 15)
    await discord_bot.world.store.commit([make_paper("2611.00002", title="Reasoning after a reconnect")], [])
    [answer] = await discord_bot.command("search", query="reasoning")
    assert answer["content"].startswith("1 paper matches")


async def test_a_gateway_that_stops_acknowledging_heartbeats_is_left_and_resumed() -> None:
    with DiscordStandIn(heartbeat_ms=200) as api:  # shortened for the test (Discord's is ~41 s)
        inbound = DiscordInbound(new_client(api.api_url, heartbeat_timeout=1.0), TOKEN)  # shortened (default 60 s)
        world = World()
        running = asyncio.create_task(inbound.run(world.core))
        try:
            await until(lambda: api.identified == 1)
            api.acking = False  # a zombie connection: heartbeats sent, never acknowledged
            await until(lambda: api.resumed + api.identified >= 2, 15)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await world.aclose()
            new_client(DISCORD_API)


async def test_a_revoked_token_is_refused_everywhere() -> None:
    with DiscordStandIn() as api:
        api.unauthorized = True
        outbound = DiscordOutbound(new_client(api.api_url), TOKEN, channel_interval=0)
        with pytest.raises(DeliveryError) as refused:
            await outbound.post(Destination("discord", str(CHANNEL)), to_card(make_paper("2611.00003")))
        assert "refused DISCORD_TOKEN" in str(refused.value)
        assert refused.value.permanent
        assert {path for _, path, _ in api.requests} <= {"/users/@me"}  # refused at login: nothing posted
        await outbound.aclose()
        new_client(DISCORD_API)
