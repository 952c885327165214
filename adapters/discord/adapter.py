"""DiscordAdapter: embeds in channels, the ``/papers`` command group, reactions and a persistent Save button.

One ``discord.Client`` in paperbot's event loop (``start``, never ``run``), ``Intents.default()``
(no message-content intent) and ``AllowedMentions.none()`` on the client, so nothing paperbot
sends can ping anyone. discord.py's own rate-limit handling is kept; a 403 or 404 for a channel is
a permanent error, so paperbot pauses that channel instead of retrying (Discord bans clients that
keep making invalid requests).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import discord
from discord import app_commands

from adapters.discord.render import batches, content, embed_for
from bot.commands import CommandCore, answer
from bot.errors import DeliveryError
from bot.model import Card, Destination, PostRef, Reaction, Reply, UserRef

log = logging.getLogger(__name__)

Send = Callable[[int, dict[str, Any]], Awaitable[int]]  # (channel id, send kwargs) → message id
SAVE_ID = re.compile(r"paper:save:(?P<paper>[\w./-]{1,80})")


class SaveButton(discord.ui.DynamicItem[discord.ui.Button], template=SAVE_ID.pattern):
    """The Save button on every posted paper. Its state is its custom_id, so it works after restarts."""

    core: CommandCore | None = None  # set by the adapter before the client starts

    def __init__(self, paper_id: str) -> None:
        super().__init__(discord.ui.Button(label="Save", style=discord.ButtonStyle.primary, custom_id=f"paper:save:{paper_id}"))
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> SaveButton:
        return cls(match["paper"])

    async def callback(self, interaction: discord.Interaction) -> None:
        if self.core is None:
            await interaction.response.send_message("paperbot is starting; try again in a moment.", ephemeral=True)
            return
        reply = await answer(self.core.save(UserRef("discord", str(interaction.user.id)), self.paper_id))
        await interaction.response.send_message(content(reply.text), ephemeral=True)


def save_view(paper_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(SaveButton(paper_id))
    return view


class PapersGroup(app_commands.Group):
    """``/papers <subcommand>``: typed options; each builds the core's command text and hands it over."""

    def __init__(self, adapter: DiscordAdapter, name: str) -> None:
        super().__init__(name=name, description="Recent research papers, topics and your saved papers")
        self.adapter = adapter

    @app_commands.command(name="search", description="Recent papers matching a query, best first")
    @app_commands.describe(query='Words, "phrases", OR, -word, cat:cs.CL, author:"Name", upvotes>=10')
    async def search(self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 500]) -> None:
        await self.adapter.answer(interaction, query)

    @app_commands.command(name="more", description="The next results of your last search")
    async def more(self, interaction: discord.Interaction) -> None:
        await self.adapter.answer(interaction, "more")

    @app_commands.command(name="subscribe", description="Post new papers matching a query in this channel")
    async def subscribe(self, interaction: discord.Interaction, query: app_commands.Range[str, 1, 500]) -> None:
        await self.adapter.answer(interaction, f"subscribe {query}")

    @app_commands.command(name="unsubscribe", description="Stop posting papers for one of this channel's topics")
    async def unsubscribe(self, interaction: discord.Interaction, topic: app_commands.Range[str, 1, 500]) -> None:
        await self.adapter.answer(interaction, f"unsubscribe {topic}")  # the core re-validates whatever was typed

    @unsubscribe.autocomplete("topic")
    async def _topics_for(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await self.adapter.topic_choices(interaction, current)

    @app_commands.command(name="topics", description="This channel's topics")
    async def topics(self, interaction: discord.Interaction) -> None:
        await self.adapter.answer(interaction, "topics")

    @app_commands.command(name="save", description="Keep a paper in your list")
    async def save(self, interaction: discord.Interaction, paper: app_commands.Range[str, 1, 100]) -> None:
        await self.adapter.answer(interaction, f"save {paper}")

    @app_commands.command(name="saved", description="Your saved papers, newest first")
    async def saved(self, interaction: discord.Interaction) -> None:
        await self.adapter.answer(interaction, "saved")

    @app_commands.command(name="unsave", description="Remove a paper from your list")
    async def unsave(self, interaction: discord.Interaction, paper: app_commands.Range[str, 1, 100]) -> None:
        await self.adapter.answer(interaction, f"unsave {paper}")

    @app_commands.command(name="export", description="Your saved papers as BibTeX or Markdown")
    @app_commands.choices(
        form=[app_commands.Choice(name="BibTeX", value="bibtex"), app_commands.Choice(name="Markdown", value="markdown")]
    )
    async def export(self, interaction: discord.Interaction, form: str = "bibtex") -> None:
        await self.adapter.answer(interaction, f"export {form}")

    @app_commands.command(name="help", description="How to use /papers")
    async def help(self, interaction: discord.Interaction) -> None:
        await self.adapter.answer(interaction, "help")


def delivery_error(exc: Exception, where: str) -> DeliveryError:
    """A discord.py or network failure as paperbot's error: 403/404 are permanent, the rest transient."""
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(f"{where}: HTTP {exc.status} {exc.text or type(exc).__name__}", permanent=True)
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"{where}: rate limited for {exc.retry_after:.0f}s", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException):
        return DeliveryError(f"{where}: HTTP {exc.status} {exc.text}".rstrip())
    return DeliveryError(f"{where}: {type(exc).__name__}")


class DiscordAdapter:
    """One Discord application. ``post``/``post_digest`` deliver; ``run(core)`` serves commands and events."""

    platform = "discord"

    def __init__(
        self,
        token: str,
        *,
        guild_id: int | None = None,
        command: str = "papers",
        client: discord.Client | None = None,
        send: Send | None = None,
        connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._token = token
        self._guild = discord.Object(id=guild_id) if guild_id else None
        self.client = client or discord.Client(intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none())
        self.tree = app_commands.CommandTree(self.client)
        self._send = send or self._send_with_client
        self._connect = connect or (lambda: self.client.start(self._token))
        self._logged_in = False
        self._core: CommandCore | None = None
        self.tree.add_command(PapersGroup(self, command))
        self.client.add_dynamic_items(SaveButton)
        self.client.setup_hook = self._setup_hook  # type: ignore[method-assign]
        self.client.event(self.on_raw_reaction_add)
        self.client.event(self.on_raw_reaction_remove)

    # ------------------------------------------------------------------------------ outbound

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """One embed with a Save button; returns the message id once Discord accepted it."""
        message_id = await self._deliver(destination, {"embeds": [embed_for(card)], "view": save_view(card.paper_id)})
        return PostRef(destination, str(message_id))

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int) -> list[PostRef]:
        """Up to ten embeds a message (6000 characters at most); each paper maps to its message."""
        posts: list[PostRef] = []
        embeds = [embed_for(card, budget=600) for card in cards]
        for batch in batches(embeds):
            chunk = cards[len(posts) : len(posts) + len(batch)]
            view = discord.ui.View(timeout=None)
            for card in chunk[:25]:
                view.add_item(SaveButton(card.paper_id))
            try:
                message_id = await self._deliver(destination, {"embeds": batch, "view": view})
            except DeliveryError:
                if posts:
                    return posts  # what went out stays recorded; the rest waits for the next pass
                raise
            # Reactions on a digest message save its first paper; each paper also has its own button.
            posts += [PostRef(destination, str(message_id) if n == 0 else f"{message_id}#{n}") for n in range(len(chunk))]
        return posts

    async def _deliver(self, destination: Destination, message: dict[str, Any]) -> int:
        where = f"Discord channel {destination.channel}"
        try:
            return await self._send(int(destination.channel), message)
        except ValueError:
            raise DeliveryError(f"{where}: a Discord channel id is a number", permanent=True) from None
        except (discord.HTTPException, discord.RateLimited, aiohttp.ClientError, TimeoutError) as exc:
            raise delivery_error(exc, where) from None

    async def _send_with_client(self, channel_id: int, message: dict[str, Any]) -> int:
        if not self._logged_in and not self.client.is_ready():
            await self.client.login(self._token)  # HTTP only: `--once` posts without opening the gateway
            self._logged_in = True
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        sent = await channel.send(**message)  # type: ignore[union-attr]
        return sent.id

    # ------------------------------------------------------------------------------- inbound

    def attach(self, core: CommandCore) -> None:
        """Answer commands, buttons and reactions with ``core`` from now on."""
        self._core = SaveButton.core = core

    async def run(self, core: CommandCore) -> None:
        """Connect to the gateway and serve until cancelled."""
        self.attach(core)
        try:
            await self._connect()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connections (idempotent)."""
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

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, added=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        me = self.client.user
        if self._core is None or (me is not None and payload.user_id == me.id):
            return  # discord.py, unlike bolt, delivers the bot's own reactions
        post = PostRef(Destination("discord", str(payload.channel_id)), str(payload.message_id))
        reaction = Reaction(post, UserRef("discord", str(payload.user_id)), str(payload.emoji), added)
        await answer(self._core.react(reaction))

    async def answer(self, interaction: discord.Interaction, text: str) -> None:
        """Run one ``/papers`` command for an interaction: defer (ephemeral, fixed at defer), then follow up."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # within Discord's 3 s
        if self._core is None or interaction.channel_id is None:
            problem = "paperbot is starting; try again in a moment." if self._core is None else "/papers works in channels."
            await interaction.followup.send(problem, ephemeral=True)
            return
        user, where = UserRef("discord", str(interaction.user.id)), Destination("discord", str(interaction.channel_id))
        await self._send_reply(interaction, await answer(self._core.handle(text, user, where)))

    async def topic_choices(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete: this channel's topics containing what was typed, 25 at most."""
        if self._core is None:
            return []
        topics = await self._core.topics(Destination("discord", str(interaction.channel_id)))
        return [app_commands.Choice(name=t[:100], value=t[:100]) for t in topics if current.lower() in t.lower()][:25]

    async def _send_reply(self, interaction: discord.Interaction, reply: Reply) -> None:
        embeds = [embed_for(card, budget=900) for card in reply.cards][:6]
        if len(reply.text) > 1900:  # an export: send it as a file rather than cut it
            name = "saved-papers.bib" if reply.text.lstrip().startswith("@") else "saved-papers.md"
            file = discord.File(io.BytesIO(reply.text.encode()), filename=name)
            await interaction.followup.send(f"Your saved papers ({name})", file=file, ephemeral=True)
            return
        await interaction.followup.send(content(reply.text), embeds=embeds, ephemeral=True)
