"""Receiving from Discord: the gateway connection, the command tree and its sync, and the event
hooks that hand interactions and reactions to the translator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord.client import PaperbotClient
from adapters.discord.translate import PapersGroup, SaveButton, Translator
from bot.errors import ListenerError
from bot.model import Check, Destination
from bot.ports import Commands

log = logging.getLogger(__name__)
FAILED = "paperbot could not answer that just now; please try again shortly."


class DiscordInbound:
    """The ``Listener`` port for one Discord application."""

    one_connection_per_bot = True  # every gateway session receives every interaction

    def __init__(
        self,
        client: PaperbotClient,
        token: str,
        *,
        command: str = "papers",
    ) -> None:
        self.client = client
        self._token = token
        self._command = command
        self.translator = Translator(client)
        self.tree = app_commands.CommandTree(client)
        self.tree.add_command(PapersGroup(self.translator, command))
        client.add_dynamic_items(SaveButton)
        client.event(self.translator.on_raw_reaction_add)
        client.event(self.translator.on_raw_reaction_remove)
        client.event(self.translator.on_guild_remove)
        self.tree.error(self._failed)

    async def _failed(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
        """Any interaction that failed unexpectedly still gets an answer (else Discord shows "thinking…"
        until the interaction expires), and one log line says why."""
        cause = getattr(error, "original", error)
        log.error("a /papers interaction failed", extra={"kv": {"problem": f"{type(cause).__name__}: {cause}"[:300]}})
        try:
            if interaction.response.is_done():
                await interaction.followup.send(FAILED, ephemeral=True)
            else:
                await interaction.response.send_message(FAILED, ephemeral=True)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError):
            pass  # the interaction expired meanwhile: nothing more to say

    async def diagnose(self, destinations: Sequence[Destination]) -> list[Check]:
        """``paperbot doctor``: ``/papers`` registered with Discord (for every server)."""
        try:
            await self.client.login_once(self._token)
            names = [command.name for command in await self.tree.fetch_commands()]
        except (discord.HTTPException, discord.LoginFailure, aiohttp.ClientError, TimeoutError) as exc:
            return [Check("Discord commands", "fail", f"could not list them ({type(exc).__name__})", "check DISCORD_TOKEN")]
        if self._command not in names:
            fix = "run `paperbot discord sync` once (a deploy step; commands can take an hour to appear everywhere)"
            return [Check("Discord commands", "fail", f"/{self._command} is not registered", fix)]
        return [Check("Discord commands", "ok", f"/{self._command} is registered")]

    @property
    def connected(self) -> bool:
        """The gateway session is up (what /readyz reports)."""
        return self.client.is_ready() and not self.client.is_closed()

    def attach(self, commands: Commands) -> None:
        """Answer commands, buttons and reactions with ``commands`` from now on."""
        self.client.commands = commands

    async def run(self, commands: Commands) -> None:
        """Connect to the gateway and serve until cancelled."""
        self.attach(commands)
        reconciling: asyncio.Task[None] | None = None
        try:
            try:
                await self.client.login_once(self._token)  # unless a delivery already logged this client in
            except discord.LoginFailure:
                raise ListenerError(
                    "Discord refused DISCORD_TOKEN (401 Unauthorized): copy a new one from Bot → Reset Token"
                ) from None
            # Once connected, the stored channels are checked against what the bot sees: a task of ours, ended
            # with the connection (discord.py does not wait for its own event handlers when it closes).
            reconciling = asyncio.create_task(self._reconcile_when_ready())
            await self.client.use_gateway_from_api()
            await self.client.connect()
        finally:
            if reconciling is not None:
                reconciling.cancel()
                await asyncio.gather(reconciling, return_exceptions=True)
            await self.client.reopen()  # closed now, and ready for the supervisor's next attempt

    async def _reconcile_when_ready(self) -> None:
        await self.client.wait_until_ready()
        await self.translator.reconcile()

    async def sync(self, guild_id: int | None = None, clear: bool = False) -> int:
        """``paperbot discord sync``: register ``/papers`` for every server (up to an hour to show), or for
        one guild only (at once; for development); with ``clear``, remove them there instead (so a guild
        that got both shows one ``/papers``). Never done on start: Discord allows 200 creates a day."""
        await self.client.login_once(self._token)
        guild = discord.Object(id=guild_id) if guild_id else None
        try:
            if clear:
                self.tree.clear_commands(guild=guild)
            elif guild is not None:
                self.tree.copy_global_to(guild=guild)
            return len(await self.tree.sync(guild=guild))
        finally:
            await self.client.close()
