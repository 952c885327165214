"""SlackAdapter: posts cards with the Web API, and serves ``/papers``, reactions and buttons with bolt.

Outbound, each channel gets at most one message a second (Slack's chat.postMessage budget);
channels post in parallel. 429 waits for ``Retry-After``; 5xx and timeouts are retried with
backoff; errors that retrying cannot fix (``not_in_channel``, ``invalid_auth``, …) are permanent.
Inbound runs in Socket Mode when an app token is set, else over HTTP at ``POST /slack/events``
with request signatures checked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import SAVE, UNSAVE, card_blocks, digest_blocks, escape, fallback, home_view, reply_blocks
from adapters.slack.translate import action_parts, command_parts, reaction_from
from bot.commands import CommandCore, answer
from bot.errors import DeliveryError
from bot.model import Card, Destination, PostRef, UserRef
from bot.pacing import Sleep
from bot.ports import Reserve

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
}
_LONGEST_WAIT = 120.0  # a longer Retry-After ends this attempt; the delivery stays queued


class SlackAdapter:
    """One Slack workspace: ``post``/``post_digest`` for delivery, ``run(core)`` for everything inbound."""

    platform = "slack"

    def __init__(
        self,
        bot_token: str,
        *,
        api_url: str = "https://slack.com/api/",
        app_token: str | None = None,
        signing_secret: str | None = None,
        command: str = "/papers",
        port: int = 3000,
        host: str = "0.0.0.0",  # HTTP mode must be reachable by Slack
        channel_interval: float = 1.0,
        retries: int = 4,
        ack_budget: float = 2.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = AsyncWebClient(token=bot_token, base_url=api_url, timeout=15)
        self._app_token = app_token
        self._signing_secret = signing_secret or ""
        self._command = command
        self._host, self._port = host, port
        self._interval = channel_interval
        self._next_slot: dict[str, float] = {}
        self._reserve: Reserve | None = None
        self._retries = retries
        self._ack_budget = ack_budget
        self._sleep = sleep

    # ------------------------------------------------------------------------------ outbound

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """One message per paper; returns its ``ts`` once Slack accepted it."""
        answer = await self._post(destination.channel, text=fallback(card), blocks=card_blocks(card))
        return PostRef(destination, str(answer["ts"]))

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int) -> list[PostRef]:
        """A parent message with the best ``top`` papers (each with Save), the others as thread replies.

        Returns references for the cards posted so far if a reply fails, so those are not posted twice.
        The parent's papers get ``<ts>#<n>`` references: a reaction on the parent names no single
        paper, so those are saved with their buttons.
        """
        parent = await self._post(destination.channel, text=f"{len(cards)} new papers", blocks=digest_blocks(cards, top))
        thread = str(parent["ts"])
        posts = [PostRef(destination, f"{thread}#{n}") for n in range(min(top, len(cards)))]
        for card in cards[top:]:
            try:
                reply = await self._post(destination.channel, text=fallback(card), blocks=card_blocks(card), thread_ts=thread)
            except DeliveryError as exc:
                log.warning("digest thread cut short", extra={"kv": {"destination": destination.key, "problem": str(exc)}})
                break
            posts.append(PostRef(destination, str(reply["ts"])))
        return posts

    def share_pace(self, reserve: Reserve) -> None:
        """Take each channel's one-message-a-second slots from the store, shared by every worker."""
        self._reserve = reserve

    async def _post(self, channel: str, **message: Any) -> dict[str, Any]:
        # Never link_names, never parse: mentions stay text; no previews of the links we add.
        payload = {"channel": channel, "unfurl_links": False, "unfurl_media": False, **message}
        return await self._call("chat.postMessage", payload, lambda: self._take_turn(channel))

    async def _take_turn(self, channel: str) -> None:
        """Wait for this channel's next posting slot. Every attempt takes one, retries included, so a
        retried post never lands on another post's (or another worker's) slot."""
        if not self._interval:
            return
        key = f"slack:{channel}"
        reserve = self._reserve or self._local_slot
        wait = await reserve(key, self._interval)
        if wait > 0:
            await self._sleep(wait)

    async def _local_slot(self, key: str, interval: float) -> float:
        # The in-process twin of the store's slots (same semantics): slots ``interval`` apart, per key.
        now = time.monotonic()
        start = max(now, self._next_slot.get(key, 0.0))
        self._next_slot[key] = start + interval
        return start - now

    async def _call(
        self, method: str, payload: dict[str, Any], take_turn: Callable[[], Awaitable[None]] | None = None
    ) -> dict[str, Any]:
        where = f"Slack {method} to {payload.get('channel', '?')}"
        problem = "no attempt"
        for attempt in range(self._retries + 1):
            if take_turn is not None:
                await take_turn()
            try:
                response = await self.client.api_call(method, json=payload)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                problem, wait = _retryable(exc, where, self._backoff(attempt))
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem, wait = f"connection failed ({type(exc).__name__})", self._backoff(attempt)
            if attempt < self._retries:
                await self._sleep(wait)
        raise DeliveryError(f"{where}: {problem} after {self._retries + 1} attempts")

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(30.0, 2.0**attempt) * (0.5 + random.random() / 2)  # jitter, not security

    # ------------------------------------------------------------------------------- inbound

    def build_app(self, core: CommandCore, process_before_response: bool = False) -> AsyncApp:
        """The bolt app wired to the core. Every value bolt would read from the environment is given."""
        bolt_log = logging.getLogger("adapters.slack.bolt")
        bolt_log.addFilter(_IgnoreUnusedTokenWarning())
        app = AsyncApp(
            client=self.client,  # carries the bot token and SLACK_API_URL
            token=None,
            signing_secret=self._signing_secret,
            process_before_response=process_before_response,
            request_verification_enabled=True,
            ignoring_self_events_enabled=True,
            logger=bolt_log,
        )
        app.command(self._command)(self._on_command(core))
        app.event("reaction_added")(self._on_reaction(core, added=True))
        app.event("reaction_removed")(self._on_reaction(core, added=False))
        app.event("app_home_opened")(self._on_home(core))
        app.action(SAVE)(self._on_button(core, save=True))
        app.action(UNSAVE)(self._on_button(core, save=False))
        app.action(re.compile(r"^open_"))(_ack_only)  # link buttons still send an action; acknowledge it
        return app

    def _on_command(self, core: CommandCore):  # type: ignore[no-untyped-def]
        async def on_command(ack, body, respond) -> None:  # type: ignore[no-untyped-def]
            text, user, where = command_parts(body)
            work = asyncio.ensure_future(answer(core.handle(text, user, where)))
            try:
                # Usually the answer is ready well within Slack's 3 s: send it as the ack itself.
                reply = await asyncio.wait_for(asyncio.shield(work), self._ack_budget)
            except TimeoutError:
                await ack(response_type="ephemeral", text="Looking…")
                reply = await work
                await respond(
                    response_type="ephemeral", replace_original=True, text=escape(reply.text[:3000]), blocks=reply_blocks(reply)
                )
                return
            await ack(response_type="ephemeral", text=escape(reply.text[:3000]), blocks=reply_blocks(reply))

        return on_command

    def _on_reaction(self, core: CommandCore, added: bool):  # type: ignore[no-untyped-def]
        async def on_reaction(body, event, context) -> None:  # type: ignore[no-untyped-def]
            reaction = reaction_from(event, added)
            if reaction is None or reaction.user.user_id == context.get("bot_user_id"):
                return
            if body.get("event_id") and not await core.once(f"slack:{body['event_id']}"):
                return  # Slack retried an event we already handled
            reply = await answer(core.react(reaction))
            if reply.text:  # an ignored reaction has nothing to say
                await self._tell(reaction.post.destination.channel, reaction.user.user_id, reply.text)

        return on_reaction

    def _on_button(self, core: CommandCore, save: bool):  # type: ignore[no-untyped-def]
        async def on_button(ack, body, respond) -> None:  # type: ignore[no-untyped-def]
            await ack()
            user, paper_id = action_parts(body)
            reply = await answer(core.save(user, paper_id) if save else core.unsave(user, paper_id))
            if body.get("view", {}).get("type") == "home":
                await self._publish_home(core, user)
            else:
                await respond(response_type="ephemeral", replace_original=False, text=escape(reply.text))

        return on_button

    def _on_home(self, core: CommandCore):  # type: ignore[no-untyped-def]
        async def on_home(event) -> None:  # type: ignore[no-untyped-def]
            if event.get("tab", "home") == "home":
                await self._publish_home(core, UserRef("slack", str(event["user"])))

        return on_home

    async def _publish_home(self, core: CommandCore, user: UserRef) -> None:
        try:
            await self.client.views_publish(user_id=user.user_id, view=home_view(await core.saved(user)))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not publish the App Home", extra={"kv": {"user": user.user_id, "problem": type(exc).__name__}})

    async def _tell(self, channel: str, user: str, text: str) -> None:
        # Ephemeral delivery is best effort by Slack's own account; a failure here loses nothing.
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=escape(text))
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("ephemeral confirmation not delivered", extra={"kv": {"channel": channel, "problem": type(exc).__name__}})

    async def run(self, core: CommandCore) -> None:
        """Serve Slack until cancelled: Socket Mode with an app token, else HTTP on the configured port."""
        app = self.build_app(core)
        if self._app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(app, self._app_token)
            await handler.connect_async()
            log.info("slack connected", extra={"kv": {"mode": "socket"}})
            try:
                await asyncio.Event().wait()
            finally:
                await handler.close_async()
            return
        runner = web.AppRunner(http_app(app), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self._host, self._port).start()
        log.info("slack listening", extra={"kv": {"mode": "http", "port": self._port, "path": "/slack/events"}})
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def http_app(app: AsyncApp) -> web.Application:
    """The aiohttp application for HTTP mode: ``POST /slack/events`` (signed) and ``GET /healthz``."""

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application(client_max_size=1024 * 1024)
    web_app.router.add_post("/slack/events", events)
    web_app.router.add_get("/healthz", health)
    return web_app


def _retryable(exc: SlackApiError, where: str, backoff: float) -> tuple[str, float]:
    """What went wrong and how long to wait before retrying; raises ``DeliveryError`` when retrying cannot help."""
    status = exc.response.status_code
    error = exc.response.data.get("error") if isinstance(exc.response.data, dict) else None
    if error in PERMANENT:
        raise DeliveryError(f"{where}: {error}", permanent=True) from None
    problem = f"HTTP {status}" + (f" ({error})" if error else "")
    if status == 429:
        wait = float(exc.response.headers.get("Retry-After", backoff) or backoff)
        if wait > _LONGEST_WAIT:
            raise DeliveryError(f"{where}: rate limited for {wait:.0f}s", retry_after=wait) from None
        return problem, wait
    if status == 200:  # ok: false with an error we do not know; likely our payload
        raise DeliveryError(f"{where}: {error}") from None
    if status < 500:
        raise DeliveryError(f"{where}: {problem}") from None
    return problem, backoff


class _IgnoreUnusedTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that our client's token
    wins; that is intended (the client carries SLACK_API_URL), so the warning is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


async def _ack_only(ack) -> None:  # type: ignore[no-untyped-def]
    await ack()
