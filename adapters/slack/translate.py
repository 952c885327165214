"""Slack events → core calls: the payload readers, and the handlers bolt calls for ``/papers``,
reactions, buttons and the App Home. Every answer comes back as a ``Reply`` from ``Commands``."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import SAVE, UNSAVE, escape, file_blocks, fit, home_view, reply_blocks
from bot.model import Attachment, Destination, PostRef, Reaction, Reply, UserRef
from bot.ports import Commands

log = logging.getLogger(__name__)
MANAGING = ("subscribe", "unsubscribe")  # the subcommands that change a channel for everyone in it
NO_PREVIEWS: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False}  # replies link papers; no previews


def team_of(body: dict[str, Any]) -> str:
    """The workspace a payload comes from (commands and events: ``team_id``; actions: ``team.id``)."""
    team = body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    return str(team or "")


def command_parts(body: dict[str, Any], workspace: str = "") -> tuple[str, UserRef, Destination]:
    """A slash command's text, who sent it and where (``user_id`` only: ``user_name`` is deprecated);
    ``workspace`` (multi-workspace mode) goes with both, so answers and posts use its token."""
    user = UserRef("slack", str(body["user_id"]), workspace=workspace)
    return str(body.get("text") or ""), user, Destination("slack", str(body["channel_id"]), workspace)


def reaction_from(event: dict[str, Any], added: bool, workspace: str = "") -> Reaction | None:
    """A ``reaction_added``/``reaction_removed`` event on a message; None for anything else."""
    item = event.get("item") or {}
    if item.get("type") != "message" or not item.get("channel") or not item.get("ts") or not event.get("user"):
        return None
    post = PostRef(Destination("slack", str(item["channel"]), workspace), str(item["ts"]))  # ts stays a string: an id
    return Reaction(post, UserRef("slack", str(event["user"]), workspace=workspace), str(event.get("reaction", "")), added)


def action_parts(body: dict[str, Any], workspace: str = "") -> tuple[UserRef, str]:
    """Who pressed a button, and the paper id it carries."""
    return UserRef("slack", str(body["user"]["id"]), workspace=workspace), str(body["actions"][0].get("value", ""))


class Handlers:
    """What bolt calls for each kind of inbound event; ``register`` wires them to an app."""

    def __init__(
        self, commands: Commands, ack_budget: float = 2.0, save_emoji: str = "bookmark", workspaces: bool = False
    ) -> None:
        self._save_emoji = save_emoji
        self._commands = commands
        self._ack_budget = ack_budget
        self._workspaces = workspaces  # multi-workspace mode: destinations and people carry their workspace

    def register(self, app: AsyncApp, command: str) -> None:
        """Route ``command``, reactions, the Save/Unsave buttons and the App Home to these handlers (and,
        in multi-workspace mode, uninstalls). Web API calls use bolt's ``client``: the workspace's token."""
        app.command(command)(self.on_command)
        app.event("reaction_added")(self.on_reaction_added)
        app.event("reaction_removed")(self.on_reaction_removed)
        app.event("app_home_opened")(self.on_home)
        app.action(SAVE)(self.on_save)
        app.action(UNSAVE)(self.on_unsave)
        app.action(re.compile(r"^open_"))(self.on_link)  # link buttons still send an action; acknowledge it
        if self._workspaces:
            app.event("app_uninstalled")(self.on_uninstalled)
            app.event("tokens_revoked")(self.on_tokens_revoked)

    def _team(self, body: dict[str, Any]) -> str:
        return team_of(body) if self._workspaces else ""

    async def on_uninstalled(self, body: dict[str, Any]) -> None:
        """The app was removed from a workspace: everything of that workspace goes."""
        await self._commands.uninstalled("slack", team_of(body))

    async def on_tokens_revoked(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """The bot's token was revoked (a user token alone changes nothing paperbot uses): as an uninstall."""
        if (event.get("tokens") or {}).get("bot"):
            await self._commands.uninstalled("slack", team_of(body))

    async def on_command(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        """``/papers …``: answered in the ack when ready within the budget, else "Looking…" then a follow-up.
        A replayed request (same ``trigger_id``, within Slack's 5-minute signature window) is acknowledged
        and not executed again."""
        if await self._replayed(body):
            await ack()
            return
        text, user, where = command_parts(body, self._team(body))
        verb = text.split(" ", 1)[0].lower()
        if verb in MANAGING or verb == "follow":  # only these ask who the person is
            person = await self._person(client, user.user_id)
            manager = bool(person.get("is_admin") or person.get("is_owner"))
            zone = tz if isinstance(tz := person.get("tz"), str) else ""
            user = UserRef(user.platform, user.user_id, manager=manager, timezone=zone, workspace=user.workspace)
        work = asyncio.ensure_future(self._commands.handle(text, user, where))
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), self._ack_budget)
        except TimeoutError:
            await ack(response_type="ephemeral", text="Looking…")
            reply = await work
        else:
            if reply.file is None:
                await ack(response_type="ephemeral", text=fit(reply.text, 3000), blocks=reply_blocks(reply), **NO_PREVIEWS)
                return
            await ack(response_type="ephemeral", text=f"Preparing {escape(reply.file.filename)}…")
        message = await self._send_file(client, reply, reply.file, user) if reply.file else {"blocks": reply_blocks(reply)}
        await respond(response_type="ephemeral", replace_original=True, text=fit(reply.text, 3000), **message, **NO_PREVIEWS)

    async def _send_file(self, client: AsyncWebClient, reply: Reply, file: Attachment, user: UserRef) -> dict[str, Any]:
        """An export as a real file, in the person's direct messages with paperbot (an export is personal;
        a file shared in the channel would show to everyone). Without ``files:write``/``im:write``, or if
        Slack refuses, the file's text in code blocks instead, saying what did not fit."""
        try:
            opened = await client.conversations_open(users=user.user_id)
            channel = str((opened.get("channel") or {}).get("id") or "")
            await client.files_upload_v2(
                channel=channel, filename=file.filename, title=file.filename, content=file.content, initial_comment=reply.text
            )
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            problem = _slack_error(exc)
            log.info("export not sent as a file; shown in the reply", extra={"kv": {"problem": problem}})
            return {"blocks": file_blocks(reply)}
        text = f"Sent {file.filename} ({file.entries} papers) to your direct messages with paperbot."
        return {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": escape(text), "verbatim": True}}]}

    async def on_reaction_added(
        self, body: dict[str, Any], event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """A reaction added to a paperbot post: the save emoji saves its paper."""
        await self._reaction(client, body, event, context, added=True)

    async def on_reaction_removed(
        self, body: dict[str, Any], event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """A reaction removed: the save emoji unsaves."""
        await self._reaction(client, body, event, context, added=False)

    async def _reaction(
        self, client: AsyncWebClient, body: dict[str, Any], event: dict[str, Any], context: dict[str, Any], added: bool
    ) -> None:
        reaction = reaction_from(event, added, self._team(body))
        if reaction is None or reaction.user.user_id == context.get("bot_user_id"):
            return
        if body.get("event_id") and not await self._commands.once(f"slack:{body['event_id']}"):
            return  # Slack retried an event we already handled
        reply = await self._commands.react(reaction)
        if reply is not None and reply.text:  # an ignored reaction has nothing to say
            channel = reaction.post.destination.channel
            thread = await self._thread_of(client, channel, reaction.post.message_id)
            await self._tell(client, channel, reaction.user.user_id, reply.text, thread)

    async def on_save(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        """The Save button on a card."""
        await self._button(ack, body, respond, client, save=True)

    async def on_unsave(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        """The Unsave button on the App Home."""
        await self._button(ack, body, respond, client, save=False)

    async def _button(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, save: bool
    ) -> None:
        await ack()
        if await self._replayed(body):
            return
        user, paper_id = action_parts(body, self._team(body))
        reply = await (self._commands.save(user, paper_id) if save else self._commands.unsave(user, paper_id))
        if body.get("view", {}).get("type") == "home":
            await self._publish_home(client, user)
        else:
            await respond(response_type="ephemeral", replace_original=False, text=fit(reply.text, 3000), **NO_PREVIEWS)

    async def on_home(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        """The App Home tab opened: show the user's saved papers."""
        if event.get("tab", "home") == "home":
            await self._publish_home(client, UserRef("slack", str(event["user"])))

    async def on_link(self, ack: AsyncAck) -> None:
        """A link button (arXiv, PDF, Code): Slack opens the URL; the action only needs an ack."""
        await ack()

    async def _person(self, client: AsyncWebClient, user_id: str) -> dict[str, Any]:
        """What Slack says of a person (``users.info``, scope ``users:read``): whether they are a workspace
        admin or owner, and their time zone; empty when Slack will not say."""
        try:
            answer = await client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not ask Slack about a person (users:read)", extra={"kv": {"problem": type(exc).__name__}})
            return {}
        person = answer.get("user")
        return person if isinstance(person, dict) else {}

    async def _replayed(self, body: dict[str, Any]) -> bool:
        trigger = body.get("trigger_id")
        return bool(trigger) and not await self._commands.once(f"slack:trigger:{trigger}")

    async def _publish_home(self, client: AsyncWebClient, user: UserRef) -> None:
        try:
            await client.views_publish(user_id=user.user_id, view=home_view(await self._commands.saved(user), self._save_emoji))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not publish the App Home", extra={"kv": {"user": user.user_id, "problem": type(exc).__name__}})

    async def _thread_of(self, client: AsyncWebClient, channel: str, ts: str) -> str | None:
        """The thread a message is a reply in (a digest's papers are replies), so that a confirmation shows
        where the person reacted; None for a message in the channel itself, or when Slack will not say."""
        try:
            answer = await client.conversations_replies(channel=channel, ts=ts, limit=1)
        except (SlackApiError, aiohttp.ClientError, TimeoutError):
            return None
        messages = answer.get("messages") or []
        parent = str(messages[0].get("ts", "")) if messages and isinstance(messages[0], dict) else ""
        return parent if parent and parent != ts else None

    async def _tell(self, client: AsyncWebClient, channel: str, user: str, text: str, thread: str | None = None) -> None:
        # Ephemeral delivery is best effort by Slack's own account; a failure here loses nothing.
        where: dict[str, Any] = {"thread_ts": thread} if thread else {}
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=escape(text), **where)  # never unfurled
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("ephemeral confirmation not delivered", extra={"kv": {"channel": channel, "problem": type(exc).__name__}})


def _slack_error(exc: Exception) -> str:
    """A short reason for a failed Web API call (the error code Slack gave, else the exception's type)."""
    data = getattr(getattr(exc, "response", None), "data", None)
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else type(exc).__name__
