"""The ``discord.Client`` paperbot runs: only the intents it needs, no mentions ever, and the
``Commands`` that inbound events are answered with (set when the listener starts)."""

from __future__ import annotations

import discord

from bot.ports import Commands


class PaperbotClient(discord.Client):
    """A client that carries the core it answers with, so buttons restored after a restart find it."""

    commands: Commands | None = None


def new_client() -> PaperbotClient:
    """A client with ``Intents.default()`` (no message content) and mentions disabled on everything it sends."""
    return PaperbotClient(intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none())
