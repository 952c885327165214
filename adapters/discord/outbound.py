"""Posting to Discord: embeds with a Save button, digests in batches within Discord's limits, and
every failure mapped to a ``DeliveryError`` (403/404 permanent, so the core pauses that channel;
Discord bans clients that keep making invalid requests). discord.py's rate-limit handling is kept."""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord

from adapters.discord.client import PaperbotClient
from adapters.discord.render import batches, embed_for
from adapters.discord.translate import SAVE_ID, SaveButton, save_view
from bot.errors import DeliveryError
from bot.model import Card, Check, Destination, PostRef
from bot.pacing import ChannelPace
from bot.ports import Turns
from bot.text import shorten

log = logging.getLogger(__name__)


def _save_id(row: discord.Component) -> list[re.Match[str]]:
    """The Save buttons' custom ids in one row of a message's components (each names its paper)."""
    children = getattr(row, "children", [])
    return [m for c in children if isinstance(getattr(c, "custom_id", None), str) and (m := SAVE_ID.fullmatch(c.custom_id))]


def save_label(number: int, title: str) -> str:
    """A digest's Save button: its paper's number and the start of its title (a button shows 80 characters).
    The title is shown as plain button text, which Discord never reads as markdown or a mention."""
    return shorten(f"Save {number} · {title}", 80)


def nonce(destination: Destination, paper_ids: Sequence[str]) -> str:
    """The same message's nonce every time it is sent. discord.py sends a nonce with ``enforce_nonce``,
    so Discord answers a repeat within a few minutes (a process that died before recording the post,
    taken over by another) with the message it already made instead of posting it twice."""
    digest = hashlib.blake2b(f"{destination.key}\n{chr(10).join(paper_ids)}".encode(), digest_size=12).hexdigest()
    return digest[:25]  # Discord's nonce: at most 25 characters


# Discord's JSON error codes for a message an edit cannot reach: Unknown Message (deleted), and a
# message authored by someone else. The edit is dropped; the channel is fine.
EDIT_GONE = {10008, 50005}
# What discord.py and the network raise that delivery_error translates.
FAILURES = (discord.HTTPException, discord.LoginFailure, discord.RateLimited, aiohttp.ClientError, TimeoutError)
CHANNEL_FIX = (
    "invite the bot with the README's link (View Channels, Send Messages, Embed Links, Read Message History), "
    "and Copy Channel ID again"
)
HISTORY_LOOKBACK = 50  # messages looked through for a card a dead process may have posted
UNKNOWN_CHANNEL = 10003


def delivery_error(exc: Exception, where: str) -> DeliveryError:
    """A discord.py or network failure as paperbot's error: a refused token and 403/404 are permanent, the
    rest transient."""
    if isinstance(exc, discord.LoginFailure):
        return DeliveryError(
            f"{where}: Discord refused DISCORD_TOKEN (401): copy a new one from Bot → Reset Token", permanent=True
        )
    if isinstance(exc, discord.NotFound) and exc.code == UNKNOWN_CHANNEL:  # deleted: forgotten, not paused
        return DeliveryError(f"{where}: HTTP 404 {exc.text or 'Unknown Channel'}", permanent=True, vanished=True)
    if isinstance(exc, discord.Forbidden | discord.NotFound):
        return DeliveryError(f"{where}: HTTP {exc.status} {exc.text or type(exc).__name__}", permanent=True)
    if isinstance(exc, discord.RateLimited):
        return DeliveryError(f"{where}: rate limited for {exc.retry_after:.0f}s", retry_after=exc.retry_after)
    if isinstance(exc, discord.HTTPException) and exc.status == 400:  # Invalid Form Body: this message, always
        return DeliveryError(f"{where}: HTTP 400 {exc.text}".rstrip(), rejected=True)
    if isinstance(exc, discord.HTTPException):
        return DeliveryError(f"{where}: HTTP {exc.status} {exc.text}".rstrip())
    return DeliveryError(f"{where}: {type(exc).__name__}")


class DiscordOutbound:
    """The ``Adapter`` port for one Discord application."""

    platform = "discord"

    def __init__(self, client: PaperbotClient, token: str, *, channel_interval: float = 1.0) -> None:
        self.client = client
        self._token = token
        # Discord allows 5 messages per 5 s in a channel; one a second, shared by every worker, stays within.
        self._pace = ChannelPace(channel_interval, owner=f"discord-{uuid.uuid4().hex[:12]}")
        self._inboxes: dict[str, int] = {}  # user id → their direct-message channel
        self._postable: set[int] = set()  # channels already seen to be ones paperbot can post in

    def share_pace(self, turns: Turns) -> None:
        """Take each channel's posting turns from the store, so every worker shares its pace."""
        self._pace.turns = turns

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """One embed with a Save button; returns the message id once Discord accepted it."""
        message = {"embeds": [embed_for(card)], "view": save_view(card.paper_id), "nonce": nonce(destination, [card.paper_id])}
        return PostRef(destination, str(await self._deliver(destination, message)))

    async def find_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, PostRef]:
        """The cards of ``paper_ids`` among the channel's latest messages, known by their Save buttons
        (one ``GET /channels/{id}/messages``; the bot needs Read Message History). A post a dead process
        made is found here after Discord's nonce window (minutes) has passed, when sending it again would
        post it twice. A card not found (or no way to tell) is posted again: a duplicate, never a loss."""
        wanted, found = set(paper_ids), {}
        where = f"Discord channel {destination.channel}"
        try:
            await self.client.login_once(self._token)
            target = await self._inbox(destination.person) if destination.person else int(destination.channel)
            async for message in self.client.get_partial_messageable(target).history(limit=HISTORY_LOOKBACK):
                papers = [match["paper"] for row in message.components for match in _save_id(row)]
                for number, paper in enumerate(papers):
                    if paper in wanted and paper not in found:  # one card, or the paper's place in a digest
                        found[paper] = PostRef(destination, str(message.id) if len(papers) == 1 else f"{message.id}#{number}")
        except (
            discord.HTTPException,
            discord.LoginFailure,
            discord.RateLimited,
            aiohttp.ClientError,
            TimeoutError,
            ValueError,
        ) as exc:
            problem = str(delivery_error(exc, where))
            log.info("could not check whether cards were posted; posting them", extra={"kv": {"problem": problem}})
        return found

    async def diagnose(self, destinations: Sequence[Destination]) -> list[Check]:
        """``paperbot doctor``: the token (logging in over REST), and each Discord channel there, visible to
        the bot and one it can post in (``GET /channels/{id}``)."""
        try:
            await self.client.login_once(self._token)
        except FAILURES as exc:
            return [Check("Discord token", "fail", str(delivery_error(exc, "Discord")), "Developer Portal → Bot → Reset Token")]
        checks = [Check("Discord token", "ok", f"valid: {self.client.user}")]
        for destination in (d for d in destinations if d.platform == self.platform and not d.person):
            what = f"Discord channel {destination.channel}"
            try:
                channel = await self.client.fetch_channel(int(destination.channel))
            except (*FAILURES, ValueError) as exc:
                checks.append(Check(what, "fail", str(delivery_error(exc, what)), CHANNEL_FIX))
                continue
            if isinstance(channel, discord.abc.Messageable):
                checks.append(Check(what, "ok", f"#{getattr(channel, 'name', '?')}, one paperbot can post in"))
            else:
                checks.append(Check(what, "fail", f"#{getattr(channel, 'name', '?')} is not a text channel", CHANNEL_FIX))
        return checks

    async def trial(self, destination: Destination, card: Card) -> Check:
        """``paperbot doctor --post``: one card posted to ``destination``, then deleted."""
        what = f"post to {destination.key}"
        try:
            post = await self.post(destination, card)
            channel = await self._inbox(destination.person) if destination.person else int(destination.channel)
            await self.client.get_partial_messageable(channel).get_partial_message(int(post.message_id)).delete()
        except DeliveryError as exc:
            return Check(what, "fail", str(exc), CHANNEL_FIX)
        except FAILURES as exc:
            return Check(
                what, "fail", str(delivery_error(exc, what)), "the bot may post but not delete: Manage Messages is not needed"
            )
        return Check(what, "ok", "a test card was posted and deleted")

    async def edit(self, post: PostRef, card: Card) -> None:
        """Replace a card paperbot posted (PATCH the message: same id), paced like a post."""
        if not post.message_id.isdigit():
            raise DeliveryError(f"Discord message {post.message_id!r}: not a message id", gone=True)
        message = {"embeds": [embed_for(card)], "view": save_view(card.paper_id)}
        await self._deliver(post.destination, message, edit=int(post.message_id))

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int, title: str = "") -> list[PostRef]:
        """Up to ten embeds a message (6000 characters at most); each paper maps to its message; ``title``
        (ours, never feed text) heads the first message."""
        posts: list[PostRef] = []
        embeds = [embed_for(card, budget=600) for card in cards]
        for batch in batches(embeds):
            chunk = cards[len(posts) : len(posts) + len(batch)]
            view = discord.ui.View(timeout=None)
            for number, card in enumerate(chunk[:25], start=len(posts) + 1):
                view.add_item(SaveButton(card.paper_id, save_label(number, card.title)))
            try:
                message = {"embeds": batch, "view": view, "nonce": nonce(destination, [c.paper_id for c in chunk])}
                if title and not posts:
                    message["content"] = f"**{title}**"
                message_id = await self._deliver(destination, message)
            except DeliveryError:
                if posts:
                    return posts  # what went out stays recorded; the rest waits for the next pass
                raise
            # A reaction on a digest message names no single paper (so it saves none, as on Slack's digest
            # parent): each paper is saved with its own numbered button.
            posts += [PostRef(destination, f"{message_id}#{n}") for n in range(len(chunk))]
        return posts

    async def aclose(self) -> None:
        """Close the client's connections (idempotent)."""
        if not self.client.is_closed():
            await self.client.close()

    async def _deliver(self, destination: Destination, message: dict[str, Any], edit: int | None = None) -> int:
        where = f"Discord channel {destination.channel}"
        turn = f"discord:{destination.channel}"
        target = destination.person or destination.channel  # a person's direct messages, or a channel
        if not target.isdigit():
            raise DeliveryError(f"{where}: a Discord channel or user id is a number", permanent=True)
        paced = self._pace.interval > 0
        if paced:
            await self._pace.take(turn)
        try:
            channel_id = await self._inbox(target) if destination.person else int(target)
            if edit is not None:
                await self._edit(channel_id, edit, message)
                return edit
            return await self._send(channel_id, message)
        except FAILURES as exc:
            if edit is not None and isinstance(exc, discord.HTTPException) and exc.code in EDIT_GONE:
                raise DeliveryError(f"{where}: message {edit}: {exc.text or exc.status}", gone=True) from None
            raise delivery_error(exc, where) from None
        finally:
            if paced:
                await self._pace.end(turn)  # the next post in this channel a full interval after this answer

    async def _inbox(self, user_id: str) -> int:
        """The person's direct-message channel (``POST /users/@me/channels``), opened once per process."""
        if user_id not in self._inboxes:
            await self.client.login_once(self._token)
            user = self.client.get_user(int(user_id)) or await self.client.fetch_user(int(user_id))
            self._inboxes[user_id] = (await user.create_dm()).id
        return self._inboxes[user_id]

    async def _edit(self, channel_id: int, message_id: int, message: dict[str, Any]) -> None:
        await self.client.login_once(self._token)
        await self.client.get_partial_messageable(channel_id).get_partial_message(message_id).edit(**message)

    async def _send(self, channel_id: int, message: dict[str, Any]) -> int:
        await self.client.login_once(self._token)  # REST only: posting never opens the gateway
        if channel_id not in self._postable:  # its type is asked once a process, not before every post
            channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise DeliveryError(f"Discord channel {channel_id}: not a channel paperbot can post in", permanent=True)
            self._postable.add(channel_id)
        sent = await self.client.get_partial_messageable(channel_id).send(**message)
        return sent.id
