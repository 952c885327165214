"""The ``discord.Client`` paperbot runs: only the intents it needs, no mentions ever, and the
``Commands`` that inbound events are answered with (set when the listener starts)."""

from __future__ import annotations

import asyncio

import discord
import discord.gateway
import discord.http
import yarl

from bot.ports import Commands


class PaperbotClient(discord.Client):
    """A client that carries the core it answers with, so buttons restored after a restart find it, and
    logs in once however many parts of paperbot use it."""

    commands: Commands | None = None
    _login: asyncio.Lock | None = None

    async def login_once(self, token: str) -> None:
        """Log in over REST unless this client already has: posting and the listener share one client, and
        a second login would open a second HTTP session and leave the first one unclosed."""
        self._login = self._login or asyncio.Lock()
        async with self._login:
            if self.user is None:
                await self.login(token)

    async def reopen(self) -> None:
        """Close this client and make it able to log in and connect again (the listener's next attempt after
        a refused token or a lost network): discord.py's own ``clear`` keeps the closed HTTP connector."""
        if not self.is_closed():
            await self.close()
        self.http.connector = discord.utils.MISSING
        self.clear()

    async def use_gateway_from_api(self) -> None:
        """Connect to the gateway the API names (``GET /gateway/bot``, as Discord asks bots to; it is also
        how ``DISCORD_API_URL`` leads to a stand-in's gateway)."""
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


DISCORD_API = "https://discord.com/api/v10"


def new_client(api_url: str = DISCORD_API, heartbeat_timeout: float = 60.0) -> PaperbotClient:
    """A client with only the intents paperbot uses (servers and their reactions: no messages, no
    members) and mentions disabled on everything it sends, talking to ``api_url`` (``DISCORD_API_URL``;
    the gateway's address comes from that API). A gateway that stops acknowledging heartbeats for
    ``heartbeat_timeout`` seconds is left and resumed (discord.py's default)."""
    # discord.py keeps its base URL on its Route class (one Discord API per process, as here).
    discord.http.Route.BASE = api_url.rstrip("/")
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    return PaperbotClient(intents=intents, allowed_mentions=discord.AllowedMentions.none(), heartbeat_timeout=heartbeat_timeout)
