"""Discord test harness: real discord.py objects built from recorded payloads.

Outbound channel messages go through the adapter's injected ``send`` (a recorder here); interaction
responses and follow-ups go through discord.py's webhook adapter, whose ``request`` is replaced so
the exact JSON discord.py would send is captured (discord.py's own tests drive interactions the same
way; discord.py is pinned to a minor version because this touches its internals).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
from discord.webhook.async_ import AsyncWebhookAdapter

from adapters.discord.client import PaperbotClient, new_client
from adapters.discord.inbound import DiscordInbound
from adapters.discord.outbound import DiscordOutbound
from bot.delivery import Deliverer
from tests.conftest import fixture_text
from tests.world import World

BOT_ID = 1249000000000000042
CHANNEL = 1249000000000000005


@dataclass
class Outbox:
    """Recorded channel messages; ``refuse`` makes the next sends raise."""

    sent: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    refuse: Exception | None = None

    async def send(self, channel_id: int, message: dict[str, Any]) -> int:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append((channel_id, message))
        return 1249000000000000300 + len(self.sent) - 1


def discord_pair(token: str, send: Any, connect: Any = None) -> tuple[DiscordOutbound, DiscordInbound]:
    """The outbound and inbound halves over one client, as the composition root builds them."""
    client = new_client()
    return DiscordOutbound(client, token, send=send), DiscordInbound(client, token, connect=connect)


@dataclass
class DiscordHarness:
    adapter: DiscordOutbound
    inbound: DiscordInbound
    outbox: Outbox
    world: World
    responses: list[tuple[str, str, Any]]

    def deliverer(self) -> Deliverer:
        """A deliverer posting through this harness's Discord adapter, as a cycle would."""
        return Deliverer(
            self.world.store, self.world.store, {"discord": self.adapter}, "w", 60, coordination=self.world.coordination
        )

    def interaction(self, name: str, **changes: Any) -> discord.Interaction:
        data = json.loads(fixture_text(f"discord/{name}.json"))
        data.update(changes)
        return discord.Interaction(data=data, state=self.adapter.client._connection)

    def command(self, subcommand: str, **options: str) -> discord.Interaction:
        opts = [{"type": 3, "name": k, "value": v} for k, v in options.items()]
        data = {
            "id": "1249000000000000001",
            "name": "papers",
            "type": 1,
            "options": [{"type": 1, "name": subcommand, "options": opts}],
        }
        return self.interaction("interaction_command", data=data)

    def reaction(self, emoji: str = "🔖", event: str = "REACTION_ADD", **changes: Any) -> discord.RawReactionActionEvent:
        data = {**json.loads(fixture_text("discord/raw_reaction_add.json")), **changes}
        return discord.RawReactionActionEvent(data, discord.PartialEmoji(name=emoji), event)  # type: ignore[arg-type]


def logged_in(client: PaperbotClient) -> PaperbotClient:
    """The client as after login: it knows its own user (discord.py needs it for guild interactions)."""
    state = client._connection
    state.user = discord.ClientUser(
        state=state, data={"id": str(BOT_ID), "username": "paperbot", "discriminator": "0", "avatar": None, "bot": True}
    )
    return client


@pytest.fixture
def responses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    captured: list[tuple[str, str, Any]] = []

    async def request(self: AsyncWebhookAdapter, route: Any, session: Any = None, **kwargs: Any) -> Any:
        files = kwargs.get("files") or []
        captured.append((route.method, route.path, {"payload": kwargs.get("payload"), "files": [f.filename for f in files]}))
        if route.path.endswith("/callback"):
            return {"interaction": {"id": "1", "type": 2, "response_message_loading": True, "response_message_ephemeral": True}}
        return json.loads(fixture_text("discord/interaction_button.json"))["message"]

    monkeypatch.setattr(AsyncWebhookAdapter, "request", request)
    return captured


@pytest.fixture
async def discord_bot(responses: list[tuple[str, str, Any]]) -> AsyncIterator[DiscordHarness]:
    world = World()
    outbox = Outbox()
    adapter, inbound = discord_pair("discord-test-token", outbox.send)
    logged_in(adapter.client)
    inbound.attach(world.core)  # what run() does before connecting
    yield DiscordHarness(adapter, inbound, outbox, world, responses)
    await world.aclose()
