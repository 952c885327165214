"""Each workspace's bot token, renewed before it expires (Slack's token rotation) by one caller at a time.

Slack's refresh tokens are single-use: two processes (or two channels of one process) renewing the
same token at once get ``invalid_refresh_token`` for all but one, and a reported race can even leave an
invalid token stored. So a renewal is single-flight: an ``asyncio.Lock`` per workspace in the process
and a lock in the store across processes; whoever waits re-reads the installation and finds the new
token. bolt is never handed a refresh token (``InstallationStore`` strips it), so this is the only
place that rotates. A renewal that fails keeps the current token while it lasts (one warning); once
that has expired, the workspace fails alone and transiently (``TokenUnavailable``), never the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import DeliveryError, PaperbotError
from bot.ports import Installations, Locks

log = logging.getLogger(__name__)

ROTATE_MINUTES = 120  # rotating tokens are renewed when they expire within this
LOCK_SECONDS = 30.0  # a renewal holds the workspace's lock at most this long (oauth.v2.access has 15 s)
WAIT_SECONDS = 20.0  # a caller waits this long for another's renewal, then uses the token it has
POLL_SECONDS = 0.25  # how often a waiting caller looks again


class TokenUnavailable(DeliveryError):
    """The workspace's token expired and could not be renewed just now: retried later, that workspace alone."""


class TokenKeeper:
    """Reads a workspace's installation and renews its bot token when it is about to expire."""

    def __init__(
        self,
        installations: Installations,
        client: AsyncWebClient,
        client_id: str,
        client_secret: str,
        locks: Locks,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._installations = installations
        self._rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret, client=client)
        self._locks = locks
        self._clock = clock
        self._owner = f"tokens-{uuid.uuid4().hex[:12]}"
        self._local: dict[str, asyncio.Lock] = {}

    async def installation(self, workspace: str) -> Installation | None:
        """``workspace``'s installation with a token good for ``ROTATE_MINUTES`` more (renewed if need
        be), or None when the app is not installed there. Raises ``TokenUnavailable`` when the token
        expired and cannot be renewed now."""
        found = await self._read(workspace)
        if found is None or not self._due(found):
            return found
        async with self._local.setdefault(workspace, asyncio.Lock()):  # one renewal in flight per process
            return await self._renew(workspace)

    async def _read(self, workspace: str) -> Installation | None:
        found = await self._installations.find(workspace)
        return Installation(**found) if found else None

    def _due(self, installation: Installation) -> bool:
        expires = installation.bot_token_expires_at
        return bool(installation.bot_refresh_token and expires and expires - self._clock() < ROTATE_MINUTES * 60)

    async def _renew(self, workspace: str) -> Installation | None:
        lock, deadline = f"rotate:{workspace}", time.monotonic() + WAIT_SECONDS
        while True:
            installation = await self._read(workspace)  # another task or process may have renewed it
            if installation is None or not self._due(installation):
                return installation
            if await self._locks.lock(lock, self._owner, LOCK_SECONDS):
                break
            if time.monotonic() > deadline:
                return self._while_it_lasts(workspace, installation, "another process is renewing it")
            await asyncio.sleep(POLL_SECONDS)
        try:
            installation = await self._read(workspace)  # as it is now that the lock is ours
            if installation is None or not self._due(installation):
                return installation
            try:
                rotated = await self._rotator.perform_token_rotation(
                    installation=installation, minutes_before_expiration=ROTATE_MINUTES
                )
            except (SlackApiError, SlackTokenRotationError, aiohttp.ClientError, TimeoutError) as exc:
                return self._while_it_lasts(workspace, installation, f"oauth.v2.access failed ({_reason(exc)})")
            if rotated is None:
                return installation
            await self._installations.save(workspace, dict(vars(rotated)))
            log.info("workspace token renewed", extra={"kv": {"workspace": workspace}})
            return rotated
        finally:
            await self._locks.unlock(lock, self._owner)

    def _while_it_lasts(self, workspace: str, installation: Installation, problem: str) -> Installation:
        """The current token while it is valid (said once a renewal fails); a transient failure once expired."""
        expires = installation.bot_token_expires_at or 0
        kv = {"workspace": workspace, "problem": problem, "expires_in_s": int(expires - self._clock())}
        if expires - self._clock() > 60:
            log.warning("could not renew a workspace's token; using it while it lasts", extra={"kv": kv})
            return installation
        raise TokenUnavailable(f"Slack workspace {workspace}: its token expired and could not be renewed ({problem})")


class WorkspaceTokens:
    """The bot token to post with in each workspace (the delivery loop's ``tokens``), through the keeper."""

    def __init__(self, keeper: TokenKeeper) -> None:
        self._keeper = keeper

    async def __call__(self, workspace: str) -> str | None:
        """The bot token for ``workspace``; None when it has no installation (any more). A store or renewal
        failure is a transient ``DeliveryError`` of that workspace."""
        try:
            installation = await self._keeper.installation(workspace)
        except TokenUnavailable:
            raise
        except PaperbotError as exc:  # the store is away: this workspace waits like any other failure
            raise DeliveryError(f"Slack workspace {workspace}: its token could not be read ({exc})") from None
        return installation.bot_token if installation is not None and installation.bot_token else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        return str(data.get("error")) if isinstance(data, dict) and data.get("error") else "an error answer"
    return type(exc).__name__
