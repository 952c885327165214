"""The real command core over RedisStore on a private fakeredis server, for adapter tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import fakeredis

from bot.chat.commands import ChatOptions, ChatStores, CommandCore
from bot.chat.digests import DirectDigests
from bot.chat.feed import Feed
from bot.chat.workspaces import Workspaces
from bot.model import Destination, UserRef
from bot.query.index import PaperIndex
from bot.settings.schema import DEFAULT_SAVE_EMOJI
from bot.store.coordination import RedisCoordination
from bot.store.follows import RedisFollows
from bot.store.installations import RedisInstallations
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from bot.store.subscriptions import RedisSubscriptions
from tests.fakes import EMBEDDER


class World:
    """Stores and the command core sharing one fakeredis server."""

    def __init__(self, page_size: int = 2, prefix: str = "c:", managers: str | frozenset[str] = "anyone") -> None:
        self.client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
        self.store = RedisStore(self.client, prefix=prefix)
        self.subscriptions = RedisSubscriptions(self.client, prefix=prefix)
        self.library = RedisLibrary(self.client, prefix=prefix)
        self.index = index = PaperIndex(self.store, 30 * 86400)
        self.coordination = RedisCoordination(self.client, prefix=prefix)
        self.feed = Feed(index, self.store, self.library, EMBEDDER)
        self.follows = RedisFollows(self.client, prefix=prefix)
        self.core = CommandCore(
            ChatStores(self.store, self.subscriptions, self.library, self.coordination, self.follows),
            index,
            ChatOptions(DEFAULT_SAVE_EMOJI, page_size=page_size, managers=managers),
            feed=self.feed,
            workspaces=Workspaces(RedisInstallations(self.client, prefix), self.subscriptions, self.store, self.follows),
        )

    def digests(self, clock: Callable[[], datetime]) -> DirectDigests:
        """Readers' digests as the poller queues them, at the time ``clock`` says."""
        return DirectDigests(self.follows, self.index, self.feed, self.store, clock)

    async def ask(self, text: str, user: UserRef, where: Destination) -> str:
        return (await self.core.handle(text, user, where)).text

    async def aclose(self) -> None:
        await self.client.aclose()
