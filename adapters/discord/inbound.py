"""Receiving from Discord: the gateway connection, the command tree and its sync, and the event
hooks that hand interactions and reactions to the translator."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from adapters.discord.client import PaperbotClient
from adapters.discord.translate import PapersGroup, SaveButton, Translator
from bot.ports import Commands

log = logging.getLogger(__name__)


class DiscordInbound:
    """The ``Listener`` port for one Discord application."""

    def __init__(
        self,
        client: PaperbotClient,
        token: str,
        *,
        guild_id: int | None = None,
        command: str = "papers",
        connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self._token = token
        self._guild = discord.Object(id=guild_id) if guild_id else None
        self._connect = connect or (lambda: self.client.start(self._token))
        self.translator = Translator(client)
        self.tree = app_commands.CommandTree(client)
        self.tree.add_command(PapersGroup(self.translator, command))
        client.add_dynamic_items(SaveButton)
        client.on_setup = self._setup_hook
        client.event(self.translator.on_raw_reaction_add)
        client.event(self.translator.on_raw_reaction_remove)

    def attach(self, commands: Commands) -> None:
        """Answer commands, buttons and reactions with ``commands`` from now on."""
        self.client.commands = commands

    async def run(self, commands: Commands) -> None:
        """Connect to the gateway and serve until cancelled."""
        self.attach(commands)
        try:
            await self._connect()
        finally:
            if not self.client.is_closed():
                await self.client.close()

    async def _setup_hook(self) -> None:
        # Commands are synced to a development guild (instant) on start; global sync is a deploy step
        # (`paperbot discord sync`), never every start: Discord allows 200 command creates a day.
        if self._guild is not None:
            self.tree.copy_global_to(guild=self._guild)
            await self.tree.sync(guild=self._guild)

    async def sync_globally(self) -> int:
        """Register the commands for every server (takes up to an hour to show); returns how many."""
        await self.client.login(self._token)
        try:
            return len(await self.tree.sync())
        finally:
            await self.client.close()
