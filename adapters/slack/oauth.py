"""Slack's multi-workspace mode (``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET``): bolt's OAuth v2 flow,
with slack_sdk's installation and state store interfaces over paperbot's ``Installations`` port (Redis,
no SQL database), our own install/success/failure pages, and the bot token of each workspace for
posting (``adapters.slack.tokens``: rotated before it expires, by one caller at a time)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.outbound import SCOPES
from adapters.slack.pages import failure_page, install_page, success_page
from adapters.slack.tokens import ROTATE_MINUTES, TokenKeeper
from bot.errors import PaperbotError
from bot.ports import Installations

log = logging.getLogger(__name__)

STATE_SECONDS = 600  # an install link works for ten minutes, once


def workspace_of(enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False) -> str:
    """The key of an installation: its workspace (team) id, or its organisation's for an org-wide install."""
    return str((enterprise_id if is_enterprise_install else team_id) or team_id or enterprise_id or "")


class InstallationStore(AsyncInstallationStore):
    """slack_sdk's installation store interface over the ``Installations`` port (one per workspace). With a
    ``keeper``, what bolt finds carries a token renewed single-flight (``adapters.slack.tokens``) and no
    refresh token, so bolt never rotates one itself."""

    def __init__(self, installations: Installations, keeper: TokenKeeper | None = None) -> None:
        self._installations = installations
        self._keeper = keeper

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        where = workspace_of(installation.enterprise_id, installation.team_id, installation.is_enterprise_install)
        await self._installations.save(where, dict(vars(installation)))  # as slack_sdk's own stores keep it

    async def async_save_bot(self, bot: Bot) -> None:
        # Only token rotation saves a bot alone: keep the installation, with the bot's new tokens in it.
        where = workspace_of(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        found = await self._installations.find(where)
        if found is not None:
            fields = ("bot_token", "bot_refresh_token", "bot_token_expires_at")
            await self._installations.save(where, found | {f: getattr(bot, f) for f in fields})

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        where = workspace_of(enterprise_id, team_id, is_enterprise_install)
        if self._keeper is None:
            found = await self._installations.find(where)
            return Installation(**found) if found else None
        installation = await self._keeper.installation(where)
        if installation is not None:
            installation.bot_refresh_token = None  # renewing is the keeper's alone
        return installation

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        installation = await self.async_find_installation(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return installation.to_bot() if installation is not None and installation.bot_token else None

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # a user's own token going leaves the workspace's installation alone
            await self._installations.delete(workspace_of(enterprise_id, team_id))

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._installations.delete(workspace_of(enterprise_id, team_id))


class StateStore(AsyncOAuthStateStore):
    """One-time install states in the store: a state is accepted once, within ``STATE_SECONDS``."""

    def __init__(self, installations: Installations) -> None:
        self._installations = installations

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(24)
        await self._installations.issue(state, STATE_SECONDS)
        return state

    async def async_consume(self, state: str) -> bool:
        return bool(state) and await self._installations.consume(state)


class InstallFlow(AsyncOAuthFlow):
    """bolt's OAuth flow with paperbot's install page."""

    command = "/papers"

    async def build_install_page_html(self, url: str, request: AsyncBoltRequest) -> str:
        return install_page(url, self.command)


def oauth_flow(
    installations: Installations,
    client: AsyncWebClient,
    *,
    client_id: str,
    client_secret: str,
    command: str,
    redirect_uri: str | None = None,
    keeper: TokenKeeper | None = None,
) -> InstallFlow:
    """The OAuth flow for ``/slack/install`` and ``/slack/oauth_redirect`` (``client`` carries
    ``SLACK_API_URL``: ``oauth.v2.access`` and ``auth.test`` go there)."""

    async def succeeded(args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        log.info("installed", extra={"kv": {"workspace": workspace_of(installation.enterprise_id, installation.team_id)}})
        page = success_page(installation.team_name or "", command)
        return BoltResponse(status=200, body=page, headers={"Content-Type": "text/html; charset=utf-8"})

    async def failed(args: AsyncFailureArgs) -> BoltResponse:
        log.info("install failed", extra={"kv": {"reason": args.reason}})
        page = failure_page(args.reason)
        return BoltResponse(status=args.suggested_status_code, body=page, headers={"Content-Type": "text/html; charset=utf-8"})

    settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(SCOPES),
        redirect_uri=redirect_uri,
        installation_store=InstallationStore(installations, keeper),
        state_store=StateStore(installations),
        state_expiration_seconds=STATE_SECONDS,
        callback_options=AsyncCallbackOptions(success=succeeded, failure=failed),
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        logger=log,
    )
    flow = InstallFlow(client=client, settings=settings, logger=log)
    flow.command = command
    return flow


# The install pages load nothing, run nothing and may not be framed: only their own inline style, links out.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def hardened(response: web.Response) -> web.Response:
    """An install page's response with the headers above, and bolt's state cookie sent ``SameSite=Lax`` (it
    still comes back on Slack's top-level redirect, never on another site's request)."""
    response.headers.update(PAGE_HEADERS)
    for morsel in response.cookies.values():  # bolt's state cookie, set through aiohttp's cookie jar
        morsel["samesite"] = morsel["samesite"] or "Lax"
    return response


def oauth_routes(flow: AsyncOAuthFlow) -> list[web.RouteDef]:
    """``GET /slack/install`` and ``GET /slack/oauth_redirect`` on the web port."""

    async def install(request: web.Request) -> web.Response:
        try:
            return hardened(await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request))))
        except PaperbotError as exc:  # the store is away: say so, no traceback
            log.warning("install page failed", extra={"kv": {"problem": str(exc)}})
            return hardened(web.Response(status=503, text=failure_page("storage_error"), content_type="text/html"))

    async def redirect(request: web.Request) -> web.Response:
        try:
            return hardened(await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request))))
        except PaperbotError as exc:
            log.warning("install failed", extra={"kv": {"problem": str(exc)}})
            return hardened(web.Response(status=503, text=failure_page("storage_error"), content_type="text/html"))

    settings = flow.settings
    return [web.get(settings.install_path, install), web.get(settings.redirect_uri_path, redirect)]
