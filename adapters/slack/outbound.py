"""Posting to Slack: cards and digests with the Web API, each channel at most one message a second,
and every Slack failure mapped to a ``DeliveryError``.

429 waits for ``Retry-After``; 5xx and timeouts are retried with backoff; errors that retrying cannot
fix (``not_in_channel``, ``invalid_auth``, …) are permanent, so the core pauses that channel.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import card_blocks, digest_blocks, fallback
from bot.errors import DeliveryError
from bot.model import Card, Check, Destination, PostRef
from bot.pacing import ChannelPace, Sleep, backoff
from bot.ports import Turns

log = logging.getLogger(__name__)

# Errors that will not go away by retrying: the destination needs a person (invite, scopes, token).
PERMANENT = {
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "restricted_action",
    "ekm_access_denied",
    "team_access_not_granted",
    "cannot_dm_bot",
    "user_not_found",
    "user_disabled",
    "user_not_visible",
}
# Errors about the message itself: the same payload will always be refused, whatever the channel.
REJECTED = {
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_attachments",
    "invalid_arguments",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "invalid_metadata_format",
    "invalid_metadata_schema",
    "metadata_too_large",
}
# Errors about the message an edit targets: it is gone (deleted) or not ours to change; the edit is dropped.
GONE = {"message_not_found", "cant_update_message", "edit_window_closed"}
METADATA_EVENT = "paperbot_paper"  # the message metadata type our cards carry
# What paperbot asks a workspace for: post (and update its cards), its slash command, read reactions,
# check channel history for a card a dead process posted, DMs for exports and digests, users.info for
# admins and time zones, files for exports.
SCOPES = (
    "chat:write",
    "commands",
    "reactions:read",
    "channels:history",
    "groups:history",
    "im:write",
    "users:read",
    "files:write",
)

# What paperbot doctor suggests for what Slack answers about a token and a channel.
TOKEN_FIXES = {
    "invalid_auth": "SLACK_BOT_TOKEN is not a token of this app: copy it again from OAuth & Permissions (xoxb-…)",
    "token_revoked": "the token was revoked: reinstall the app to the workspace and copy the new token",
    "account_inactive": "the app was removed from the workspace: reinstall it",
    "not_authed": "set SLACK_BOT_TOKEN",
}
CHANNEL_FIXES = {
    "not_in_channel": "invite the bot: /invite @paperbot in that channel",
    "channel_not_found": "check the channel id (the channel's details → the id at the bottom, C…), and invite the bot",
    "missing_scope": "add channels:history (groups:history for a private channel) and chat:write, then reinstall",
    "is_archived": "the channel is archived: unarchive it or remove it from the configuration",
}
HISTORY_LOOKBACK = 100  # messages looked through for a card a dead process may have posted
HISTORY_LOOKBACK_DISTRIBUTED = 15  # Slack's cap for commercially distributed non-Marketplace apps (May 2025)
_LONGEST_WAIT = 120.0  # a longer Retry-After ends this attempt; the delivery stays queued
BACKOFF_FIRST, BACKOFF_LAST = 1.0, 30.0


def web_client(token: str | None, api_url: str) -> AsyncWebClient:
    """The Web API client every Slack call goes through (``api_url`` is ``SLACK_API_URL``); with no
    token (multi-workspace mode) each call names its workspace's."""
    return AsyncWebClient(token=token, base_url=api_url, timeout=15)


class SlackOutbound:
    """The ``Adapter`` port for Slack: one workspace (the client's token), or, with ``tokens``, every
    workspace that installed the app (a destination's ``workspace`` picks the token)."""

    platform = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel_interval: float = 1.0,
        retries: int = 4,
        sleep: Sleep = asyncio.sleep,
        tokens: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.client = client
        self._tokens = tokens
        self._pace = ChannelPace(channel_interval, owner=f"slack-{uuid.uuid4().hex[:12]}", sleep=sleep)
        self._retries = retries
        self._sleep = sleep
        self._inboxes: dict[tuple[str, str], str] = {}  # (workspace, user id) → their direct-message channel

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """One message per paper; returns its ``ts`` once Slack accepted it. The message carries the
        paper's id as message metadata, so ``find_post`` can recognise it later."""
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"paper": card.paper_id}}
        channel = await self._channel(destination)
        answer = await self._post(destination, channel, text=fallback(card), blocks=card_blocks(card), metadata=metadata)
        return PostRef(destination, str(answer["ts"]))

    async def find_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, PostRef]:
        """The cards of ``paper_ids`` among the channel's latest messages: one ``conversations.history``
        (GET, with message metadata; scope ``channels:history``, or ``groups:history`` for a private
        channel). A distributed app (multi-workspace mode) reads at most 15 messages, as Slack allows
        non-Marketplace apps since May 2025. A card not found is posted again: a duplicate rather
        than a loss."""
        limit = HISTORY_LOOKBACK_DISTRIBUTED if self._tokens is not None else HISTORY_LOOKBACK
        arguments = {"channel": destination.channel, "limit": limit, "include_all_metadata": "true"}
        try:
            # No retry: past a distributed app's one read a minute, waiting would hold the channel; the card
            # is posted again instead (a duplicate at most, never a loss).
            answer = await self._call("conversations.history", arguments, destination.workspace, read=True, retries=0)
        except DeliveryError as exc:
            log.info("could not check whether cards were posted; posting them", extra={"kv": {"problem": str(exc)}})
            return {}
        wanted, found = set(paper_ids), {}
        for message in answer.get("messages") or []:
            metadata = message.get("metadata") if isinstance(message, dict) else None
            if isinstance(metadata, dict) and metadata.get("event_type") == METADATA_EVENT:
                carried = metadata.get("event_payload")
                paper = carried.get("paper") if isinstance(carried, dict) else None
                if paper in wanted and paper not in found and message.get("ts"):
                    found[str(paper)] = PostRef(destination, str(message["ts"]))
        return found

    async def diagnose(self, destinations: Sequence[Destination]) -> list[Check]:
        """``paperbot doctor``: each workspace's token (``auth.test``), the scopes it was granted against those
        paperbot needs (the ``X-OAuth-Scopes`` header), and each Slack channel reachable (a one-message
        history read, which also shows the bot is in it)."""
        mine = [d for d in destinations if d.platform == self.platform and not d.person]
        checks: list[Check] = []
        for workspace in sorted({d.workspace for d in mine}) or [""]:
            checks += await self._diagnose_token(workspace)
        for destination in mine:
            probe = {"channel": destination.channel, "limit": 1}
            data, _, error = await self._ask("conversations.history", probe, destination.workspace)
            what = f"Slack channel {destination.channel}"
            if data:
                checks.append(Check(what, "ok", "reachable, and paperbot is in it"))
            else:
                checks.append(Check(what, "fail", error, CHANNEL_FIXES.get(error, "")))
        return checks

    async def _diagnose_token(self, workspace: str) -> list[Check]:
        what = "Slack token" + (f" of {workspace}" if workspace else "")
        data, headers, error = await self._ask("auth.test", {}, workspace)
        if not data:
            fix = TOKEN_FIXES.get(error, "check SLACK_BOT_TOKEN (OAuth & Permissions → Bot User OAuth Token)")
            return [Check(what, "fail", error, fix)]
        header = next((value for key, value in headers.items() if key.lower() == "x-oauth-scopes"), "")
        granted = {scope.strip() for scope in header.split(",") if scope.strip()}
        missing = [scope for scope in SCOPES if scope not in granted]
        who = f"valid: bot {data.get('user_id', '?')} in workspace {data.get('team_id', '?')}"
        scopes = Check("Slack scopes", "ok", f"{len(granted)} granted, every one paperbot needs")
        if missing:
            fix = "add them under OAuth & Permissions → Bot Token Scopes (or create the app from the manifest), then reinstall"
            scopes = Check("Slack scopes", "fail", f"missing {', '.join(missing)}", fix)
        return [Check(what, "ok", who), scopes]

    async def _ask(self, method: str, arguments: dict[str, Any], workspace: str) -> tuple[dict[str, Any], dict[str, str], str]:
        """One call for the doctor: its answer and headers, or the error Slack gave (never raises)."""
        try:
            token = await self._token(workspace)
            response = await self.client.api_call(method, http_verb="GET", params=arguments | token)
            return dict(response.data) if isinstance(response.data, dict) else {}, dict(response.headers), ""
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            return {}, {}, str(data.get("error")) if isinstance(data, dict) else f"HTTP {exc.response.status_code}"
        except (DeliveryError, aiohttp.ClientError, TimeoutError) as exc:
            return {}, {}, str(exc) or type(exc).__name__

    async def trial(self, destination: Destination, card: Card) -> Check:
        """``paperbot doctor --post``: one card posted to ``destination``, then deleted (``chat.delete``)."""
        what = f"post to {destination.key}"
        try:
            post = await self.post(destination, card)
            await self._call(
                "chat.delete", {"channel": await self._channel(destination), "ts": post.message_id}, destination.workspace
            )
        except DeliveryError as exc:
            error = next((code for code in CHANNEL_FIXES if code in str(exc)), "")
            return Check(what, "fail", str(exc), CHANNEL_FIXES.get(error, ""))
        return Check(what, "ok", "a test card was posted and deleted")

    async def edit(self, post: PostRef, card: Card) -> None:
        """Replace a card paperbot posted (``chat.update``, the same ``ts``), paced like a post."""
        channel = post.destination.channel
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"paper": card.paper_id}}
        payload = {
            "channel": channel,
            "ts": post.message_id,
            "text": fallback(card),
            "blocks": card_blocks(card),
            "metadata": metadata,
        }
        await self._call("chat.update", payload, post.destination.workspace, paced=f"slack:{channel}")

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int, title: str = "") -> list[PostRef]:
        """A parent message with the best ``top`` papers (each with Save), the others as thread replies.

        Returns references for the cards posted so far if a reply fails, so those are not posted twice.
        The parent's papers get ``<ts>#<n>`` references: a reaction on the parent names no single
        paper, so those are saved with their buttons.
        """
        heading = title or f"{len(cards)} new papers"
        channel = await self._channel(destination)
        parent = await self._post(destination, channel, text=heading, blocks=digest_blocks(cards, top, title))
        thread = str(parent["ts"])
        posts = [PostRef(destination, f"{thread}#{n}") for n in range(min(top, len(cards)))]
        for card in cards[top:]:
            try:
                reply = await self._post(destination, channel, text=fallback(card), blocks=card_blocks(card), thread_ts=thread)
            except DeliveryError as exc:
                log.warning("digest thread cut short", extra={"kv": {"destination": destination.key, "problem": str(exc)}})
                break
            posts.append(PostRef(destination, str(reply["ts"])))
        return posts

    async def _channel(self, destination: Destination) -> str:
        """The channel to post in: ``@<user id>`` is that person's direct messages (``conversations.open``,
        scope ``im:write``), opened once per process."""
        user = destination.person
        if not user:
            return destination.channel
        inbox = (destination.workspace, user)
        if inbox not in self._inboxes:
            answer = await self._call("conversations.open", {"users": user}, destination.workspace)
            opened = answer.get("channel")
            if not isinstance(opened, dict) or not opened.get("id"):
                raise DeliveryError(f"Slack conversations.open for {user}: no channel in the answer")
            self._inboxes[inbox] = str(opened["id"])
        return self._inboxes[inbox]

    def share_pace(self, turns: Turns) -> None:
        """Take each channel's posting turns from the store, so every worker shares its one message a second."""
        self._pace.turns = turns

    async def _post(self, destination: Destination, channel: str, **message: Any) -> dict[str, Any]:
        # Never link_names, never parse: mentions stay text; no previews of the links we add.
        payload = {"channel": channel, "unfurl_links": False, "unfurl_media": False, **message}
        return await self._call("chat.postMessage", payload, destination.workspace, paced=f"slack:{channel}")

    async def _token(self, workspace: str) -> dict[str, str]:
        """The ``token`` argument for a call in ``workspace`` (none: the client's own token)."""
        if not workspace or self._tokens is None:
            return {}
        token = await self._tokens(workspace)
        if token is None:
            raise DeliveryError(f"Slack workspace {workspace}: paperbot is not installed there (any more)", permanent=True)
        return {"token": token}

    async def _call(
        self,
        method: str,
        payload: dict[str, Any],
        workspace: str = "",
        paced: str | None = None,
        read: bool = False,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """One Web API call with retries, with ``workspace``'s token. With ``paced`` (a channel's key) every
        attempt, retries included, takes that channel's turn: one post in flight, the next a second after
        its answer. A ``read`` method is called by GET with query arguments: Slack reads no JSON body there."""
        where = f"Slack {method} to {payload.get('channel', '?')}"
        payload = payload | await self._token(workspace)
        problem, retries = "no attempt", self._retries if retries is None else retries
        turn = paced if paced is not None and self._pace.interval > 0 else None
        for attempt in range(retries + 1):
            if turn is not None:
                await self._pace.take(turn)
            wait, retry_after = backoff(attempt, BACKOFF_FIRST, BACKOFF_LAST), 0.0
            try:
                if read:
                    response = await self.client.api_call(method, http_verb="GET", params=payload)
                else:
                    response = await self.client.api_call(method, json=payload)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                problem, wait = _retryable(exc, where, wait)
                retry_after = wait if exc.response.status_code == 429 else 0.0
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"connection failed ({type(exc).__name__})"
            finally:
                if turn is not None:
                    await self._pace.end(turn, at_least=retry_after)
            if attempt < retries:
                await self._sleep(wait)
        raise DeliveryError(f"{where}: {problem} after {retries + 1} attempts")


def _retryable(exc: SlackApiError, where: str, backoff: float) -> tuple[str, float]:
    """What went wrong and how long to wait before retrying; raises ``DeliveryError`` when retrying cannot help."""
    # Whatever the answer was (JSON, an HTML error page, nothing): read it defensively.
    response = exc.response
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if error in PERMANENT:
        raise DeliveryError(f"{where}: {error}", permanent=True) from None
    if error in REJECTED:
        raise DeliveryError(f"{where}: {error}", rejected=True) from None
    if error in GONE:
        raise DeliveryError(f"{where}: {error}", gone=True) from None
    problem = f"HTTP {status}" + (f" ({error})" if error else "")
    if status == 429:
        headers = getattr(response, "headers", None) or {}
        try:
            wait = float(headers.get("Retry-After", backoff) or backoff)
        except ValueError:
            wait = backoff
        if wait > _LONGEST_WAIT:
            raise DeliveryError(f"{where}: rate limited for {wait:.0f}s", retry_after=wait) from None
        return problem, wait
    if status == 200 and error is None:  # a 200 that is no Web API answer (an HTML page, a proxy): transient
        return "HTTP 200 without a Web API answer", backoff
    if status == 200:  # ok: false with an error we do not know; likely our payload
        raise DeliveryError(f"{where}: {error}") from None
    if status < 500:
        raise DeliveryError(f"{where}: {problem}") from None
    return problem, backoff
