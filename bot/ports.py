"""What the core needs from the outside world. The contract suites in tests/contract check these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.model import Card, Delivery, Destination, Paper, PostRef, Reply

if TYPE_CHECKING:  # the core depends on the ports, not the other way round
    from bot.commands import CommandCore


class Source(Protocol):
    """A place papers come from."""

    name: str

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        """The source's current papers, reaching ``catch_up`` extra days back after downtime;
        ``SourceError`` when it cannot say."""
        ...


class Adapter(Protocol):
    """A chat platform (or the terminal) that can show a card in a destination."""

    platform: str

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """Show ``card``; return the platform's reference only once the platform accepted it.
        Raise ``DeliveryError`` (``permanent=True`` when retrying cannot help)."""
        ...

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int) -> list[PostRef]:
        """Show several cards as one digest: the first ``top`` in the message, the rest in its thread
        where the platform has threads. Returns one reference per card, in order."""
        ...


class Coordination(Protocol):
    """What processes agree on through the store: the poll lock, pauses and backoff, counts, health."""

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take a lock for ``ttl`` seconds unless someone holds it."""
        ...

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend a held lock; False if it was lost."""
        ...

    async def unlock(self, name: str, owner: str) -> None:
        """Release a lock if ``owner`` holds it."""
        ...

    async def record_health(self, source: str, ok: bool, detail: str, count: int = 0) -> None:
        """Remember a source's latest success or failure."""
        ...

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each source's latest success and failure (ISO times)."""
        ...

    async def pause(self, destination: Destination, reason: str, seconds: int) -> None:
        """Stop delivering to ``destination`` for a while; its papers stay queued."""
        ...

    async def paused(self, destination: Destination) -> str | None:
        """Why ``destination`` is paused, or None."""
        ...

    async def count_failure(self, destination: Destination, reset: bool = False) -> int:
        """Consecutive failed passes for ``destination``; ``reset`` after a success."""
        ...

    async def count_post(self, destination: Destination, day: str, delta: int = 1) -> int:
        """Add ``delta`` to the destination's post count for ``day``; returns the total."""
        ...


@runtime_checkable
class Listener(Protocol):
    """An adapter that also receives commands and reactions (Slack, Discord)."""

    async def run(self, core: CommandCore) -> None:
        """Serve inbound events with ``core`` until cancelled."""
        ...


Reserve = Callable[[str, float], Awaitable[float]]  # (key, interval) → seconds to wait for the slot


@runtime_checkable
class SharedPace(Protocol):
    """An adapter whose per-channel pace can be held in the store, so several processes share it."""

    def share_pace(self, reserve: Reserve) -> None:
        """Take posting slots from ``reserve`` instead of an in-process timer."""
        ...


@runtime_checkable
class ReplyViewer(Protocol):
    """An adapter that shows a command's reply to the user who asked (the console does)."""

    async def show_reply(self, reply: Reply) -> None:
        """Show ``reply``."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A queued delivery as read from the outbox."""

    entry_id: str
    delivery: Delivery


class Store(Protocol):
    """Durable state: the seen-set, the paper cache, the outbox and the delivery records."""

    async def bury(self, entry: OutboxEntry, reason: str) -> None:
        """Move a delivery to the dead letters."""
        ...

    async def failed_attempt(self, entry: OutboxEntry) -> int:
        """Count a real failed attempt to post ``entry``; returns the total."""
        ...

    async def unseen(self, paper_ids: Sequence[str]) -> list[str]:
        """The ids in ``paper_ids`` never committed before, in input order; one round trip."""
        ...

    async def commit(self, papers: Sequence[Paper], deliveries: Sequence[Delivery]) -> list[str]:
        """Atomically mark ``papers`` seen, cache them and queue their deliveries. A paper that another
        process committed first is skipped with its deliveries. Returns the ids this call committed."""
        ...

    async def paper(self, paper_id: str) -> Paper | None:
        """A cached paper, or None once it expired."""
        ...

    async def take(self, consumer: str, claim_idle: float, count: int = 500) -> list[OutboxEntry]:
        """Deliveries for ``consumer``: its own unacknowledged ones, ones abandoned by others for
        ``claim_idle`` seconds, then new ones. They stay pending until ``done``."""
        ...

    async def delivered(self, destination: Destination, paper_id: str) -> str | None:
        """The message id of an earlier successful post of ``paper_id`` to ``destination``."""
        ...

    async def earlier_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, str]:
        """Message ids of the papers among ``paper_ids`` already posted to ``destination``, in one round trip."""
        ...

    async def done(self, entry: OutboxEntry, post: PostRef) -> None:
        """Record a successful post (and its message → paper mapping) and acknowledge the entry, atomically."""
        ...

    async def skip(self, entry: OutboxEntry, reason: str) -> None:
        """Settle an entry without posting it; it counts as delivered from then on."""
        ...

    async def papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        """The cached papers among ``paper_ids``; expired ones are left out."""
        ...

    async def retire(self, consumer: str) -> None:
        """Forget ``consumer`` if it holds no pending deliveries (a process calls this as it exits)."""
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...
