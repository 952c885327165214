"""Workspaces that install and uninstall the app (a Slack workspace in multi-workspace mode, a Discord
server): when one removes paperbot, everything of it goes — the installation (its tokens), its
channels' subscriptions, its people's follows and whatever was still queued for it — and nothing of
any other workspace."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from bot.model import Destination, Following
from bot.ports import Follows, Installations, Ledger, Subscriptions

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What went with a workspace."""

    installation: bool
    subscriptions: int
    follows: int
    queued: int


class Workspaces:
    """Forgets a workspace's state across the stores."""

    def __init__(self, installations: Installations, subscriptions: Subscriptions, outbox: Ledger, follows: Follows) -> None:
        self._installations = installations
        self._subscriptions = subscriptions
        self._outbox = outbox
        self._follows = follows

    async def forget_channels(self, platform: str, channels: Collection[str]) -> int:
        """Forget ``channels`` (deleted, or in a server that removed the bot while no gateway was up): their
        subscriptions and queue. Returns how many deliveries were dropped."""
        if not channels:
            return 0
        for destination in await self._subscriptions.everything():
            if destination.platform == platform and destination.channel in channels:
                await self._subscriptions.forget(destination)
        dropped = await self._outbox.drop([Destination(platform, channel).key for channel in channels])
        log.info(
            "channels gone; their state is gone",
            extra={"kv": {"platform": platform, "channels": len(channels), "queued": dropped}},
        )
        return dropped

    async def forget(self, platform: str, workspace: str, channels: Collection[str] = ()) -> Forgotten:
        """Remove everything of ``workspace`` (idempotent: Slack may send both app_uninstalled and
        tokens_revoked). ``channels``: its channels, for a platform whose destinations do not carry their
        workspace (a Discord server's channel ids)."""
        everything = await self._subscriptions.everything()
        subscriptions = 0
        for destination in everything:
            if destination.platform == platform and (destination.workspace == workspace or destination.channel in channels):
                subscriptions += await self._subscriptions.forget(destination)
        follows = 0
        for following in await self._follows.everyone():
            if following.user.platform == platform and following.user.workspace == workspace:
                await self._follows.keep(Following(following.user))  # no queries left: forgotten
                follows += 1
        # Slack's destinations carry their workspace (a key prefix); a Discord server names its channels.
        where = [Destination(platform, channel).key for channel in channels] or [Destination(platform, "", workspace).key]
        queued = await self._outbox.drop(where)
        installation = await self._installations.delete(workspace)
        forgotten = Forgotten(installation, subscriptions, follows, queued)
        kv = {"platform": platform, "workspace": workspace, "subscriptions": subscriptions, "follows": follows, "queued": queued}
        log.info("workspace removed the app; its state is gone", extra={"kv": kv})
        return forgotten
