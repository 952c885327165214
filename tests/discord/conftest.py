"""Discord test harness: the unmodified discord.py client, logged in and holding a gateway session with
the loopback Discord stand-in (``tests/discord/standin.py``), answering with the real command core.

Tests send what Discord would send (interactions, reactions) through the stand-in's gateway and read
what paperbot sent back from the stand-in's records; no discord.py private name is used.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.discord.client import DISCORD_API, new_client
from adapters.discord.inbound import DiscordInbound
from adapters.discord.outbound import DiscordOutbound
from bot.flow.delivery import Deliverer
from bot.model import UserRef
from tests.conftest import fixture_text
from tests.discord.standin import APP_ID, CHANNEL, GUILD, DiscordStandIn, until
from tests.world import World

ADA = UserRef("discord", "1249000000000000011")
MANAGE_CHANNELS = 1 << 4
TOKEN = "discord-test-token"


@dataclass
class DiscordHarness:
    """paperbot's Discord side, connected to the stand-in."""

    discord: DiscordStandIn
    adapter: DiscordOutbound
    inbound: DiscordInbound
    world: World
    sent: int = 0

    def deliverer(self) -> Deliverer:
        """A deliverer posting through this harness's Discord adapter, as a cycle would."""
        return Deliverer(
            self.world.store,
            self.world.store,
            {"discord": self.adapter},
            "w",
            60,
            coordination=self.world.coordination,
            undeliverable=self.world.digests(lambda: datetime.now(UTC)).undeliverable,
            forget=lambda gone: self.world.core.forget_channels(gone.platform, [gone.channel]),
        )

    def _interaction(self, fixture: str, **changes: Any) -> dict[str, Any]:
        self.sent += 1
        data = json.loads(fixture_text(f"discord/{fixture}.json"))
        data.update(id=str(1249000000000002000 + self.sent), token=f"token-{self.sent}", application_id=str(APP_ID))
        data.update(guild_id=str(GUILD), channel_id=str(CHANNEL), **changes)
        return data

    async def command(self, subcommand: str, permissions: int = 0, **options: str) -> list[dict[str, Any]]:
        """``/papers <subcommand>`` as Discord sends it; returns the follow-ups that answered it."""
        opts = [{"type": 3, "name": k, "value": v} for k, v in options.items()]
        data = {
            "id": "1249000000000000009",
            "name": "papers",
            "type": 1,
            "options": [{"type": 1, "name": subcommand, "options": opts}],
        }
        payload = self._interaction("interaction_command", data=data)
        payload["member"]["permissions"] = str(permissions)
        return await self._answered(payload, "followup")

    async def press_save(self, paper_id: str) -> dict[str, Any]:
        """Press a Save button (a component interaction); returns the callback that answered it."""
        custom_id = f"paper:save:{paper_id}"
        payload = self._interaction("interaction_button", data={"custom_id": custom_id, "component_type": 2})
        button = {"type": 2, "style": 1, "label": "Save", "custom_id": custom_id}
        payload["message"]["components"] = [{"type": 1, "components": [button]}]  # the card it was pressed on
        [callback] = await self._answered(payload, "callback")
        return callback

    async def _answered(self, payload: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        before = len(self.discord.followups)
        self.discord.dispatch("INTERACTION_CREATE", payload)
        await until(lambda: any(f["kind"] == kind for f in self.discord.followups[before:]))
        await asyncio.sleep(0.2)  # an answer may take several follow-ups
        return [f for f in self.discord.followups[before:] if f["kind"] == kind]

    async def react(self, emoji: str = "🔖", added: bool = True, **changes: Any) -> None:
        """A reaction added (or removed) as Discord dispatches it, then a moment for paperbot to act."""
        data = {**json.loads(fixture_text("discord/raw_reaction_add.json")), "emoji": {"id": None, "name": emoji}, **changes}
        self.discord.dispatch("MESSAGE_REACTION_ADD" if added else "MESSAGE_REACTION_REMOVE", data)
        await asyncio.sleep(0.3)


@pytest.fixture
async def discord_bot() -> AsyncIterator[DiscordHarness]:
    with DiscordStandIn() as discord_api:
        client = new_client(discord_api.api_url)
        world = World()
        inbound, adapter = DiscordInbound(client, TOKEN), DiscordOutbound(client, TOKEN, channel_interval=0)  # unpaced here
        running = asyncio.create_task(inbound.run(world.core))
        try:
            # READY and GUILD_CREATE are sent. discord.py waits 2 s more for further servers before it calls
            # itself ready, and handles events meanwhile, as after any connect: the tests need not wait.
            await until(lambda: discord_api.identified == 1)
            await asyncio.sleep(0.2)
            yield DiscordHarness(discord_api, adapter, inbound, world)
            assert discord_api.late == 0  # every interaction answered within Discord's 3 seconds
            assert discord_api.pinging == []  # every message sent with mentions disabled
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await world.aclose()
            new_client(DISCORD_API)  # the next client talks to Discord's own address again
