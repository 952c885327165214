"""Discord events → core calls: the ``/papers`` command group, the persistent Save button and raw
reactions. Every answer comes back as a ``Reply`` from the client's ``Commands``."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import discord
from discord import app_commands

from adapters.discord.client import PaperbotClient
from adapters.discord.render import batches, content, embed_for
from bot.errors import PaperbotError
from bot.model import Command, Destination, PostRef, Reaction, Reply, UserRef
from bot.ports import Commands
from bot.text import shorten

log = logging.getLogger(__name__)

SAVE_ID = re.compile(r"paper:save:(?P<paper>[\w./-]{1,80})")
STARTING = "paperbot is starting; try again in a moment."


def commands_of(client: discord.Client) -> Commands | None:
    """The ``Commands`` a paperbot client answers with, or None before its listener started."""
    return client.commands if isinstance(client, PaperbotClient) else None


class SaveButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=SAVE_ID.pattern):
    """The Save button on every posted paper. Its state is its custom_id, so it works after restarts;
    it finds the core through the client that received the press."""

    def __init__(self, paper_id: str, label: str = "Save") -> None:
        button = discord.ui.Button[discord.ui.View](
            label=label, style=discord.ButtonStyle.secondary, custom_id=f"paper:save:{paper_id}"
        )
        super().__init__(button)
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SaveButton:
        """Rebuild the button from a press (discord.py calls this, also after a restart)."""
        return cls(match["paper"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Save the paper for whoever pressed it, and tell only them."""
        commands = commands_of(interaction.client)
        if commands is None:
            await interaction.response.send_message(STARTING, ephemeral=True)
            return
        reply = await commands.save(UserRef("discord", str(interaction.user.id)), self.paper_id)
        await interaction.response.send_message(content(reply.text), ephemeral=True)


def save_view(paper_id: str) -> discord.ui.View:
    """The view with one paper's Save button (no timeout: it lives as long as the message)."""
    view = discord.ui.View(timeout=None)
    view.add_item(SaveButton(paper_id))
    return view


class Translator:
    """Answers interactions and reactions for one client."""

    def __init__(self, client: PaperbotClient) -> None:
        self._client = client

    async def answer(self, interaction: discord.Interaction[Any], name: str, argument: str = "", at: str = "") -> None:
        """Run one ``/papers`` subcommand with its typed option as its argument (never re-parsed as text):
        defer (ephemeral, fixed at defer), then follow up."""
        await interaction.response.defer(ephemeral=True, thinking=True)  # within Discord's 3 s
        commands = self._client.commands
        if commands is None or interaction.channel_id is None:
            await interaction.followup.send(STARTING if commands is None else "/papers works in channels.", ephemeral=True)
            return
        # The member's resolved permissions in this channel, as Discord sent them with the interaction.
        manager = bool(getattr(interaction.permissions, "manage_channels", False))
        user = UserRef("discord", str(interaction.user.id), manager=manager)
        where = Destination("discord", str(interaction.channel_id))
        await self._send_reply(interaction, await commands.run(Command(name, argument, at), user, where))

    async def topic_choices(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete: this channel's topics containing what was typed, 25 at most. The value sent back is
        the topic's number (what ``/papers unsubscribe`` also takes), so a topic longer than a choice's 100
        characters is still unsubscribed whole; the name shows the topic, shortened if need be."""
        if self._client.commands is None:
            return []
        topics = await self._client.commands.topics(Destination("discord", str(interaction.channel_id)))
        found = [(n, t) for n, t in enumerate(topics, start=1) if current.lower() in t.lower()][:25]
        return [app_commands.Choice(name=shorten(t, 100), value=str(n)) for n, t in found]

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added anywhere the bot can see: the save emoji on a paperbot post saves its paper."""
        await self._reaction(payload, added=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction removed: the save emoji unsaves."""
        await self._reaction(payload, added=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        me, commands = self._client.user, self._client.commands
        if commands is None or (me is not None and payload.user_id == me.id):
            return  # discord.py, unlike bolt, delivers the bot's own reactions
        post = PostRef(Destination("discord", str(payload.channel_id)), str(payload.message_id))
        await commands.react(Reaction(post, UserRef("discord", str(payload.user_id)), str(payload.emoji), added))

    async def reconcile(self) -> None:
        """Forget the channels paperbot keeps that the bot cannot see any more (deleted while no gateway was
        up, or in a server that removed the bot meanwhile), so they do not fail every delivery for ever.
        Skipped while a server is unavailable: an outage deletes nothing."""
        commands, guilds = self._client.commands, self._client.guilds
        if commands is None or any(guild.unavailable for guild in guilds):
            return
        visible = {str(c.id) for guild in guilds for c in (*guild.channels, *guild.threads)}
        try:
            gone = [channel for channel in await commands.channels("discord") if channel not in visible]
            if gone:
                await commands.forget_channels("discord", gone)
                log.warning("discord channels the bot cannot see any more were forgotten", extra={"kv": {"channels": len(gone)}})
        except PaperbotError as exc:
            log.warning("could not check the stored discord channels", extra={"kv": {"problem": str(exc)}})

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot was removed from a server (kicked, or the server deleted): forget its channels'
        subscriptions and queued deliveries, as a Slack workspace's uninstall does."""
        commands = self._client.commands
        if commands is not None:
            await commands.uninstalled("discord", str(guild.id), [str(channel.id) for channel in guild.channels])

    async def _send_reply(self, interaction: discord.Interaction[Any], reply: Reply) -> None:
        embeds = batches([embed_for(card, budget=900) for card in reply.cards]) or [[]]
        if reply.file is not None:  # an export: a file, whole, never cut
            file = discord.File(io.BytesIO(reply.file.content.encode()), filename=reply.file.filename)
            await interaction.followup.send(content(reply.text), file=file, ephemeral=True)
            return
        await interaction.followup.send(content(reply.text), embeds=embeds[0], ephemeral=True)
        for more in embeds[1:]:  # a page whose cards exceed one message's 10 embeds or 6,000 characters
            await interaction.followup.send(embeds=more, ephemeral=True)


class PapersGroup(app_commands.Group):
    """``/papers <subcommand>``: typed options, each handed to the core as its command's argument."""

    def __init__(self, translator: Translator, name: str) -> None:
        super().__init__(name=name, description="Recent research papers, topics and your saved papers")
        self.translator = translator

    @app_commands.command(name="search", description="Recent papers matching a query, best first")
    @app_commands.describe(query='Words, "phrases", OR, -word, cat:cs.CL, author:"Name", upvotes>=10')
    async def search(self, interaction: discord.Interaction[Any], query: app_commands.Range[str, 1, 500]) -> None:
        """``/papers search query:…``."""
        await self.translator.answer(interaction, "search", query)

    @app_commands.command(name="more", description="The next results of your last search")
    async def more(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers more``."""
        await self.translator.answer(interaction, "more")

    @app_commands.command(name="top", description="The most upvoted recent papers")
    @app_commands.choices(
        period=[
            app_commands.Choice(name="Today", value="today"),
            app_commands.Choice(name="This week", value="week"),
            app_commands.Choice(name="This month", value="month"),
        ]
    )
    async def top(self, interaction: discord.Interaction[Any], period: str = "week") -> None:
        """``/papers top period:…``."""
        await self.translator.answer(interaction, "top", period)

    @app_commands.command(name="subscribe", description="Post new papers matching a query in this channel")
    async def subscribe(self, interaction: discord.Interaction[Any], query: app_commands.Range[str, 1, 500]) -> None:
        """``/papers subscribe query:…``."""
        await self.translator.answer(interaction, "subscribe", query)

    @app_commands.command(name="unsubscribe", description="Stop posting papers for one of this channel's topics")
    async def unsubscribe(self, interaction: discord.Interaction[Any], topic: app_commands.Range[str, 1, 500]) -> None:
        """``/papers unsubscribe topic:…`` (the core re-validates whatever was typed)."""
        await self.translator.answer(interaction, "unsubscribe", topic)

    @unsubscribe.autocomplete("topic")
    async def _topics_for(self, interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
        return await self.translator.topic_choices(interaction, current)

    @app_commands.command(name="topics", description="This channel's topics")
    async def topics(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers topics``."""
        await self.translator.answer(interaction, "topics")

    @app_commands.command(name="save", description="Keep a paper in your list")
    async def save(self, interaction: discord.Interaction[Any], paper: app_commands.Range[str, 1, 100]) -> None:
        """``/papers save paper:…``."""
        await self.translator.answer(interaction, "save", paper)

    @app_commands.command(name="saved", description="Your saved papers, newest first")
    async def saved(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers saved``."""
        await self.translator.answer(interaction, "saved")

    @app_commands.command(name="unsave", description="Remove a paper from your list")
    async def unsave(self, interaction: discord.Interaction[Any], paper: app_commands.Range[str, 1, 100]) -> None:
        """``/papers unsave paper:…``."""
        await self.translator.answer(interaction, "unsave", paper)

    @app_commands.command(name="export", description="Your saved papers as BibTeX or Markdown")
    @app_commands.choices(
        form=[app_commands.Choice(name="BibTeX", value="bibtex"), app_commands.Choice(name="Markdown", value="markdown")]
    )
    async def export(self, interaction: discord.Interaction[Any], form: str = "bibtex") -> None:
        """``/papers export form:…``."""
        await self.translator.answer(interaction, "export", form)

    @app_commands.command(name="similar", description="Recent papers most like one paper")
    async def similar(self, interaction: discord.Interaction[Any], paper: app_commands.Range[str, 1, 100]) -> None:
        """``/papers similar paper:…``."""
        await self.translator.answer(interaction, "similar", paper)

    @app_commands.command(name="foryou", description="Recent papers ranked for you, learned from what you saved")
    async def foryou(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers foryou``."""
        await self.translator.answer(interaction, "foryou")

    @app_commands.command(name="follow", description="A daily direct message of new papers matching a query (or: saved)")
    @app_commands.describe(query="A query like /papers search takes, or saved (papers like the ones you save)", at="HH:MM, UTC")
    async def follow(
        self,
        interaction: discord.Interaction[Any],
        query: app_commands.Range[str, 1, 500],
        at: app_commands.Range[str, 1, 5] | None = None,
    ) -> None:
        """``/papers follow query:… at:…``."""
        await self.translator.answer(interaction, "follow", query, at or "")

    @app_commands.command(name="following", description="What you follow")
    async def following(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers following``."""
        await self.translator.answer(interaction, "following")

    @app_commands.command(name="unfollow", description="Stop following one thing (its number in /papers following)")
    async def unfollow(self, interaction: discord.Interaction[Any], number: app_commands.Range[int, 1, 100]) -> None:
        """``/papers unfollow number:…``."""
        await self.translator.answer(interaction, "unfollow", str(number))

    @app_commands.command(name="help", description="How to use /papers")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        """``/papers help``."""
        await self.translator.answer(interaction, "help")
