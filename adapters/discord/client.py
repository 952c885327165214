"""The ``discord.Client`` paperbot runs: only the intents it needs, no mentions ever, and the
``Commands`` that inbound events are answered with (set when the listener starts)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from bot.ports import Commands


class PaperbotClient(discord.Client):
    """A client that carries the core it answers with, so buttons restored after a restart find it."""

    commands: Commands | None = None
    on_setup: Callable[[], Awaitable[None]] | None = None  # run once logged in, before the gateway connects

    async def setup_hook(self) -> None:
        """discord.py's hook after login: runs ``on_setup`` when the listener set one."""
        if self.on_setup is not None:
            await self.on_setup()


def new_client() -> PaperbotClient:
    """A client with ``Intents.default()`` (no message content) and mentions disabled on everything it sends."""
    return PaperbotClient(intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none())
