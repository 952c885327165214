"""Receiving from Slack: the bolt app, served over Socket Mode when an app token is set, else as
routes on the web port (``POST /slack/events``, every request's signature checked)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.oauth import oauth_routes
from adapters.slack.translate import Handlers
from bot.errors import ListenerError
from bot.model import Check, Destination
from bot.ports import Commands

log = logging.getLogger(__name__)

# apps.connections.open answers these when the token itself is wrong: a person must fix it.
APP_TOKEN_REFUSED = {"invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive", "missing_scope"}


class SlackInbound:
    """The ``Listener`` port for Slack: one workspace, or (with ``oauth``) every workspace that installs
    the app through ``/slack/install``."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        app_token: str | None = None,
        signing_secret: str | None = None,
        command: str = "/papers",
        ack_budget: float = 2.0,
        save_emoji: str = "bookmark",
        oauth: AsyncOAuthFlow | None = None,
    ) -> None:
        self._oauth = oauth
        self._save_emoji = save_emoji
        self._client = client
        self._app_token = app_token
        self._signing_secret = signing_secret or ""
        self._command = command
        self._ack_budget = ack_budget
        self._socket: SocketModeClient | None = None  # Socket Mode's client while serving

    async def is_connected(self) -> bool:
        """Socket Mode's websocket is open now (what /readyz reports): asked of the client each time, so a
        connection lost (a revoked app token, a network cut) shows while the client tries again."""
        return self._socket is not None and await self._socket.is_connected()

    def build_app(self, commands: Commands, process_before_response: bool = False) -> AsyncApp:
        """The bolt app wired to ``commands``. Every value bolt would read from the environment is given."""
        bolt_log = logging.getLogger("adapters.slack.bolt")
        bolt_log.addFilter(_IgnoreUnusedTokenWarning())
        app = AsyncApp(
            client=self._client,  # carries SLACK_API_URL, and the bot token with one workspace
            token=None,
            signing_secret=self._signing_secret,
            oauth_flow=self._oauth,  # each request is authorized with its workspace's installation
            process_before_response=process_before_response,
            request_verification_enabled=True,
            ignoring_self_events_enabled=True,
            logger=bolt_log,
        )
        handlers = Handlers(commands, self._ack_budget, self._save_emoji, workspaces=self._oauth is not None)
        handlers.register(app, self._command)
        return app

    def routes(self, commands: Commands) -> list[web.RouteDef]:
        """HTTP mode: ``POST /slack/events``, every request's signature checked, and with ``oauth`` the
        install pages (mounted on the web port)."""
        routes = event_routes(self.build_app(commands), self._signing_secret)
        return routes + (oauth_routes(self._oauth) if self._oauth is not None else [])

    async def run(self, commands: Commands) -> None:
        """Serve Slack over Socket Mode until cancelled (HTTP mode is ``routes``, on the web port)."""
        if not self._app_token:
            raise ListenerError("Slack Socket Mode needs SLACK_APP_TOKEN (HTTP mode is served on the web port)")
        app = self.build_app(commands)
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        await self._check_app_token()
        handler = AsyncSocketModeHandler(app, self._app_token)
        await handler.connect_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
        self._socket = handler.client
        log.info("slack connected", extra={"kv": {"mode": "socket"}})
        try:
            await asyncio.Event().wait()
        finally:
            self._socket = None
            await handler.close_async()  # type: ignore[no-untyped-call]  # bolt leaves it unannotated
            log.info("slack disconnected", extra={"kv": {"mode": "socket"}})

    async def diagnose(self, destinations: Sequence[Destination]) -> list[Check]:
        """``paperbot doctor``: Socket Mode's app token accepted by ``apps.connections.open`` (no socket is
        opened), or HTTP mode's events address."""
        if not self._app_token:
            detail = "HTTP mode: Slack must reach https://<your host>/slack/events (Event Subscriptions, Interactivity)"
            return [Check("Slack events", "ok", detail)]
        try:
            await self._check_app_token()
        except ListenerError as exc:
            return [
                Check("Slack Socket Mode", "fail", str(exc), "Basic Information → App-Level Tokens: one with connections:write")
            ]
        return [Check("Slack Socket Mode", "ok", "the app token may open a connection")]

    async def _check_app_token(self) -> None:
        """Ask Slack once whether the app token may open Socket Mode, so a wrong or revoked token is one
        clear line (and a retry with backoff, by the supervisor) rather than a reconnect loop of tracebacks."""
        try:
            await self._client.apps_connections_open(app_token=self._app_token or "")
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            if error in APP_TOKEN_REFUSED:
                raise ListenerError(
                    f"Slack refused SLACK_APP_TOKEN ({error}): use an app-level token (xapp-…) with the "
                    "connections:write scope, from Basic Information → App-Level Tokens"
                ) from None
            raise ListenerError(f"Slack apps.connections.open failed: {error or type(exc).__name__}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ListenerError(f"Slack is unreachable ({type(exc).__name__})") from None


def event_routes(app: AsyncApp, signing_secret: str) -> list[web.RouteDef]:
    """``POST /slack/events`` for HTTP mode, dispatched to the bolt ``app``.

    The timestamp and signature are checked on the raw bytes before anything parses the body, so
    unsigned junk (broken JSON, a JSON array, bytes that are not UTF-8, a timestamp that is not a
    number) gets a 401 or 400 and no log line at all, never a 500 and a traceback."""
    verifier = SignatureVerifier(signing_secret)

    async def events(request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except (aiohttp.ClientError, ConnectionError):
            return web.Response(status=400, text="the body did not arrive")  # the client went away mid-body
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        try:
            body.decode("utf-8")  # first: slack_sdk's verifier decodes the body and raises on bytes that are not UTF-8
        except UnicodeDecodeError:
            return web.Response(status=400, text="the body is not UTF-8")
        if not timestamp.isdigit() or not verifier.is_valid(body, timestamp, signature):
            return web.Response(status=401, text="invalid or stale signature")
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    return [web.post("/slack/events", events)]


class _IgnoreUnusedTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns that our client's token
    wins; that is intended (the client carries SLACK_API_URL), so the warning is only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()
