"""What the core needs from the outside world, one protocol per role. The contract suites in
tests/contract check every implementation against these; the core is typed against them alone.

Outbound: ``Source`` (papers come in), ``Adapter`` (cards go out). State, by role: ``Outbox``
(the seen-set, queued deliveries and their records), ``LivingPosts`` (cards kept current, papers
followed), ``Ledger`` (the operator's view of what is owed and dead), ``Papers`` (the cache queries read),
``Subscriptions``, ``Library`` (saved papers), ``Coordination`` (what processes agree on).
Inbound: a ``Listener`` serves a platform's events with ``Commands``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any, Protocol, runtime_checkable

from bot.model import (
    Backlog,
    Card,
    Check,
    Command,
    Delivery,
    Destination,
    Following,
    OutboxEntry,
    Paper,
    PostRef,
    Reaction,
    Reply,
    Saved,
    UserRef,
)


class Source(Protocol):
    """A place papers come from."""

    @property
    def name(self) -> str:
        """The source's name in logs and health records."""
        ...

    async def fetch(self, catch_up: int = 0) -> list[Paper]:
        """The source's current papers, reaching ``catch_up`` extra days back after downtime;
        ``SourceError`` when it cannot say."""
        ...


@runtime_checkable
class DaySource(Source, Protocol):
    """A source that can also fetch one given day (``paperbot backfill`` goes day by day)."""

    async def fetch_day(self, day: date) -> list[Paper]:
        """The papers of ``day``; ``SourceError`` when the source cannot say."""
        ...


class Adapter(Protocol):
    """A chat platform (or the terminal) that can show a card in a destination."""

    @property
    def platform(self) -> str:
        """The platform's name, as in ``Destination.platform``."""
        ...

    async def post(self, destination: Destination, card: Card) -> PostRef:
        """Show ``card``; return the platform's reference only once the platform accepted it.
        Raise ``DeliveryError`` (``permanent=True`` when retrying cannot help)."""
        ...

    async def post_digest(self, destination: Destination, cards: Sequence[Card], top: int, title: str = "") -> list[PostRef]:
        """Show several cards as one digest: the first ``top`` in the message, the rest in its thread
        where the platform has threads; ``title`` heads it (default: how many new papers). Returns one
        reference per card, in order."""
        ...


@runtime_checkable
class Editor(Protocol):
    """An adapter that can bring a card it posted up to date."""

    async def edit(self, post: PostRef, card: Card) -> None:
        """Show ``card`` in place of the message ``post``. Raise ``DeliveryError`` like ``post``, with
        ``gone=True`` when the message no longer exists."""
        ...


@runtime_checkable
class Diagnosable(Protocol):
    """A platform's adapter or listener that can check itself against the real platform (``paperbot doctor``)."""

    async def diagnose(self, destinations: Sequence[Destination]) -> list[Check]:
        """Its credentials, the permissions they carry, and each of ``destinations`` reachable; never raises."""
        ...


@runtime_checkable
class TrialPoster(Protocol):
    """An adapter that can post a card and take it back (``paperbot doctor --post``)."""

    async def trial(self, destination: Destination, card: Card) -> Check:
        """Post ``card`` to ``destination``, then delete it; what happened, never raises."""
        ...


@runtime_checkable
class PostFinder(Protocol):
    """An adapter that can tell whether a paper's card is already in a channel (so a delivery taken over
    from a process that died mid-post is recorded instead of posted twice)."""

    async def find_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, PostRef]:
        """The recent posts of those of ``paper_ids`` found in ``destination``, by paper id, with one look
        at the channel; a paper not found (or no way to tell) is left out."""
        ...


class Outbox(Protocol):
    """The seen-set, the queued deliveries and the record of what was posted where."""

    async def first_run(self) -> bool:
        """True for a store that never polled, or one that lost its data (its epoch is gone)."""
        ...

    async def begin(self) -> None:
        """Record that this store has polled (its epoch)."""
        ...

    async def unseen(self, paper_ids: Sequence[str]) -> list[str]:
        """The ids in ``paper_ids`` never committed before, in input order; one round trip."""
        ...

    async def commit(
        self, papers: Sequence[Paper], deliveries: Sequence[Delivery], watched: Collection[Destination] = ()
    ) -> list[str]:
        """Atomically mark ``papers`` seen, cache them and queue their deliveries. A paper that another
        process committed first is skipped with its deliveries. Returns the ids this call committed.
        With ``watched`` (destinations with an upvote threshold), papers are followed: their first-seen
        upvotes and their routing to those destinations are recorded for late deliveries."""
        ...

    async def heartbeat(self, consumer: str, ttl: float) -> None:
        """``consumer`` is alive for ``ttl`` more seconds (a delivering process repeats this)."""
        ...

    async def wait_for_work(self, after: str, longest: float) -> str:
        """Wait until something newer than ``after`` is queued (at most ``longest`` seconds); the newest
        id seen. ``after`` empty: the newest id now, without waiting."""
        ...

    async def take(self, consumer: str, claim_idle: float, count: int = 500) -> list[OutboxEntry]:
        """Deliveries for ``consumer``: its own unacknowledged ones, those of consumers whose heartbeat
        stopped, ones abandoned for ``claim_idle`` seconds, then new ones. They stay pending until ``done``."""
        ...

    async def earlier_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, str]:
        """Message ids of the papers among ``paper_ids`` already posted to ``destination``, in one round trip."""
        ...

    async def queue_recap(self, recap: Delivery, occasion: str, keep_seconds: int) -> bool:
        """Queue a recap once per ``occasion``; False if that one was already queued."""
        ...

    async def intend(self, entry: OutboxEntry) -> None:
        """Record that ``entry`` is about to be posted: if this process dies before ``done``, whoever takes
        the entry over asks the platform whether the post went out (``PostFinder``) before posting again."""
        ...

    async def intended(self, entries: Sequence[OutboxEntry]) -> set[str]:
        """The ids of ``entries`` whose posting began and was never settled, in one round trip."""
        ...

    async def done(self, entry: OutboxEntry, post: PostRef) -> None:
        """Record a successful post (and its message → paper mapping) and acknowledge the entry, atomically."""
        ...

    async def skip(self, entry: OutboxEntry, reason: str) -> None:
        """Settle an entry without posting it; it counts as delivered from then on."""
        ...

    async def failed_attempt(self, entry: OutboxEntry) -> int:
        """Count a real failed attempt to post ``entry``; returns the total."""
        ...

    async def bury(self, entry: OutboxEntry, reason: str) -> None:
        """Move a delivery to the dead letters."""
        ...

    async def retire(self, consumer: str) -> None:
        """Forget ``consumer`` if it holds no pending deliveries (a process calls this as it exits)."""
        ...


class LivingPosts(Protocol):
    """Cards kept current after they were posted, and papers followed for late deliveries."""

    async def update(self, papers: Sequence[Paper]) -> None:
        """Replace cached papers with newer reports of them (their expiry unchanged)."""
        ...

    async def posts_of(self, destinations: Sequence[Destination], paper_ids: Sequence[str]) -> list[Delivery]:
        """The single-card messages showing ``paper_ids`` in ``destinations``, as edits of them."""
        ...

    async def queue_edits(self, edits: Sequence[Delivery]) -> int:
        """Queue edits, each message at most once per spacing (sooner ones wait); returns how many now."""
        ...

    async def first_seen(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """The upvotes each still-followed paper had when first seen."""
        ...

    async def queue_late(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries of followed papers to destinations they were never routed to, once each."""
        ...


class Ledger(Protocol):
    """What an operator (and the health probes) read and fix: owed and dead deliveries, and the records of
    destinations that went away."""

    async def requeue_dead(self) -> int:
        """Queue every dead letter again (someone fixed the cause); returns how many."""
        ...

    async def dead_letters(self) -> list[dict[str, str]]:
        """Every delivery given up on, oldest first, with ``id``, ``dest``, ``paper``, ``reason``, ``at``."""
        ...

    async def queued(self) -> list[dict[str, str]]:
        """Every delivery still owed, oldest first, with ``id``, ``dest`` and ``paper``."""
        ...

    async def drop(self, destinations: Collection[str]) -> int:
        """Remove every queued delivery to ``destinations`` (exact destination keys, or a workspace's
        prefix such as ``slack:T042/``), returning how many, and every record kept for them."""
        ...

    async def backlog(self) -> Backlog:
        """How many deliveries are owed, how old the oldest is, and how many are dead letters (one round trip)."""
        ...

    async def last_posts(self) -> dict[str, str]:
        """When paperbot last posted to each destination (ISO times)."""
        ...


class Papers(Protocol):
    """The paper cache: what queries, deliveries and reactions read."""

    async def paper(self, paper_id: str) -> Paper | None:
        """A cached paper, or None once it expired."""
        ...

    async def papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        """The cached papers among ``paper_ids``; expired ones are left out."""
        ...

    async def recent(self, since_ms: int) -> tuple[list[str], int]:
        """Ids committed after ``since_ms`` (oldest first) and the cursor to pass next time."""
        ...

    async def paper_for_post(self, post: PostRef) -> str | None:
        """The paper a platform message shows, if paperbot posted it."""
        ...

    async def vectors(self, paper_ids: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors (``bot.chat.vectors``: 128 bytes each) of those of ``paper_ids`` that have one."""
        ...

    async def keep_vectors(self, vectors: Mapping[str, bytes]) -> None:
        """Store papers' vectors beside them, expiring with the paper cache."""
        ...

    async def index_snapshot(self) -> bytes | None:
        """The query index's last snapshot (opaque bytes), or None."""
        ...

    async def keep_index_snapshot(self, blob: bytes) -> None:
        """Replace the query index's snapshot; it expires with the cache period."""
        ...


class Subscriptions(Protocol):
    """Each destination's topic queries; configuration seeds them once, chat changes them."""

    async def subscribe(self, destination: Destination, query: str) -> bool:
        """Add ``query`` (canonical text); False if it was already there."""
        ...

    async def unsubscribe(self, destination: Destination, query: str) -> bool:
        """Remove ``query``; False if it was not there."""
        ...

    async def topics(self, destination: Destination) -> list[str]:
        """The destination's queries, oldest first."""
        ...

    async def everything(self) -> dict[Destination, list[str]]:
        """Every destination's queries."""
        ...

    async def forget(self, destination: Destination) -> int:
        """Drop every subscription of ``destination`` (its workspace uninstalled the app); returns how many."""
        ...

    async def seed(self, destination: Destination, queries: list[str]) -> list[str]:
        """Subscribe to each configured query the first time it is configured; returns those added."""
        ...


class Library(Protocol):
    """Each person's saved papers (kept as long as they are saved) and their last search."""

    async def save(self, user: UserRef, paper: Paper) -> bool:
        """Keep ``paper`` for ``user``; False if it was already saved."""
        ...

    async def unsave(self, user: UserRef, paper_id: str) -> bool:
        """Forget ``paper_id`` for ``user``; False if it was not saved."""
        ...

    async def saved(self, user: UserRef, limit: int | None = None) -> list[Saved]:
        """The user's saved papers, newest first."""
        ...

    async def paper(self, paper_id: str) -> Paper | None:
        """A paper someone saved, whether or not the paper cache still has it."""
        ...

    async def remember_search(self, user: UserRef, query: str, page: int) -> None:
        """Remember the user's search so ``/papers more`` can show the next page."""
        ...

    async def last_search(self, user: UserRef) -> tuple[str, int] | None:
        """The user's last search and the page shown, while it is recent."""
        ...


class Follows(Protocol):
    """Readers' follows and their digest times; notices for readers a digest could not reach."""

    async def following(self, user: UserRef) -> Following | None:
        """``user``'s follows, or None."""
        ...

    async def keep(self, following: Following) -> None:
        """Store (or replace) a reader's follows; with no queries left, forget them."""
        ...

    async def everyone(self) -> list[Following]:
        """Every reader who follows something."""
        ...

    async def notice(self, user: UserRef, why: str) -> None:
        """Remember why ``user``'s digest could not be sent."""
        ...

    async def take_notice(self, user: UserRef) -> str:
        """The notice for ``user`` (empty if none), removed as it is read."""
        ...


class Coordination(Protocol):
    """What processes agree on through the store: the poll lock, pauses and backoff, pace, counts, health."""

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take a lock for ``ttl`` seconds unless someone holds it."""
        ...

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend a held lock; False if it was lost."""
        ...

    async def unlock(self, name: str, owner: str) -> None:
        """Release a lock if ``owner`` holds it."""
        ...

    async def holder(self, name: str) -> str | None:
        """Who holds the lock ``name`` now, or None."""
        ...

    async def pause(self, destination: Destination, reason: str, seconds: int) -> None:
        """Stop delivering to ``destination`` for a while; its papers stay queued."""
        ...

    async def unpause(self, destination: Destination) -> bool:
        """Resume delivering to ``destination`` now; False if it was not paused."""
        ...

    async def next_due(self) -> float | None:
        """Seconds until the earliest pause ends (0 if one just did), or None if nothing is paused."""
        ...

    async def paused(self, destination: Destination) -> str | None:
        """Why ``destination`` is paused, or None."""
        ...

    async def paused_destinations(self) -> dict[str, str]:
        """Every paused destination (by key) and why."""
        ...

    async def count_failure(self, destination: Destination, reset: bool = False) -> int:
        """Consecutive failed passes for ``destination``; ``reset`` after a success."""
        ...

    async def count_post(self, destination: Destination, day: str, delta: int = 1) -> int:
        """Add ``delta`` to the destination's post count for ``day``; returns the total."""
        ...

    async def take_turn(self, key: str, owner: str, hold: float) -> float:
        """Take ``key``'s turn for at most ``hold`` seconds: 0 when ``owner`` has it now, else the seconds
        to wait before asking again (briefly while someone holds it; the rest of the pause after a turn)."""
        ...

    async def end_turn(self, key: str, owner: str, gap: float) -> None:
        """End ``owner``'s turn: the next one may start ``gap`` seconds from now."""
        ...

    async def first_time(self, key: str, ttl: int = 3600) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds."""
        ...

    async def record_health(self, source: str, ok: bool, detail: str, count: int = 0) -> None:
        """Remember a source's latest success or failure."""
        ...

    async def health(self) -> dict[str, dict[str, Any]]:
        """Each source's latest success and failure (ISO times)."""
        ...

    async def server(self) -> dict[str, str]:
        """What the store's server says of itself: ``version``, ``persistence`` (aof, rdb, none or unknown),
        ``memory_policy``, ``used_memory``, ``mode`` (single or cluster)."""
        ...


class Commands(Protocol):
    """What a listener calls: every answer is a ``Reply`` (a user's mistake or a store outage included)."""

    async def handle(self, text: str, user: UserRef, where: Destination) -> Reply:
        """Answer one ``/papers`` command typed as text (Slack, the terminal)."""
        ...

    async def run(self, command: Command, user: UserRef, where: Destination) -> Reply:
        """Answer one command whose name and argument the platform already separated (Discord)."""
        ...

    async def react(self, reaction: Reaction) -> Reply | None:
        """Save or unsave the paper behind a paperbot post; None when the reaction means nothing."""
        ...

    async def save(self, user: UserRef, paper_id: str) -> Reply:
        """Keep a paper in ``user``'s list (reactions, Save buttons and ``/papers save`` all call this)."""
        ...

    async def unsave(self, user: UserRef, paper_id: str) -> Reply:
        """Remove a paper from ``user``'s list."""
        ...

    async def topics(self, where: Destination) -> list[str]:
        """The destination's subscriptions (for autocomplete)."""
        ...

    async def saved(self, user: UserRef) -> list[Saved]:
        """``user``'s saved papers, newest first (for the Slack App Home)."""
        ...

    async def uninstalled(self, platform: str, workspace: str, channels: Sequence[str] = ()) -> None:
        """The app was removed from ``workspace`` (whose ``channels`` are listed where destinations do not
        carry their workspace): forget its installation, subscriptions, follows and queue."""
        ...

    async def channels(self, platform: str) -> list[str]:
        """Every channel of ``platform`` that has subscriptions (to check against what the bot can see)."""
        ...

    async def forget_channels(self, platform: str, channels: Sequence[str]) -> int:
        """These channels no longer exist, or the bot can no longer see them: forget their subscriptions
        and what is queued for them; returns how many deliveries were dropped."""
        ...

    async def once(self, event_id: str) -> bool:
        """True the first time a platform delivers ``event_id``; its retries get False."""
        ...

    async def warm_up(self) -> None:
        """Load what queries need now rather than on the first command."""
        ...


@runtime_checkable
class Listener(Protocol):
    """The inbound side of a chat platform (Slack, Discord): commands, reactions, buttons. A listener
    whose platform allows one connection per bot says so with ``one_connection_per_bot = True``; the
    service then runs it in one process only."""

    async def run(self, commands: Commands) -> None:
        """Serve inbound events with ``commands`` until cancelled."""
        ...


class Locks(Protocol):
    """Named locks with an expiry that every process sees (``Coordination`` has them)."""

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take ``name`` for ``ttl`` seconds unless someone holds it."""
        ...

    async def unlock(self, name: str, owner: str) -> None:
        """Release ``name`` if ``owner`` holds it."""
        ...


class Turns(Protocol):
    """Turns per key, one holder at a time, with a pause after each (``Coordination`` has them)."""

    async def take_turn(self, key: str, owner: str, hold: float) -> float:
        """0 when ``owner`` now holds ``key`` (for at most ``hold`` seconds), else seconds to wait."""
        ...

    async def end_turn(self, key: str, owner: str, gap: float) -> None:
        """Release ``key``; the next turn starts no sooner than ``gap`` seconds from now."""
        ...


@runtime_checkable
class SharedPace(Protocol):
    """An adapter whose per-channel pace can be held in the store, so several processes share it."""

    def share_pace(self, turns: Turns) -> None:
        """Take posting turns from ``turns`` (the store) instead of an in-process table."""
        ...


@runtime_checkable
class ReplyViewer(Protocol):
    """An adapter that shows a command's reply to the user who asked (the console does)."""

    async def show_reply(self, reply: Reply) -> None:
        """Show ``reply``."""
        ...


class Probe(Protocol):
    """What an operator's probes ask a process (``bot.service.health.Status``)."""

    async def problems(self) -> list[str]:
        """Why this process is not ready; empty when it is."""
        ...

    async def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text for a scrape, and its content type."""
        ...


@runtime_checkable
class Watched(Protocol):
    """A listener that reports on the process (the web port's ``/readyz`` and ``/metrics``)."""

    def watch(self, probe: Probe) -> None:
        """Answer from ``probe`` from now on."""
        ...


class Installations(Protocol):
    """The app's installations in chat workspaces (Slack OAuth) and the one-time states of installs."""

    async def save(self, workspace: str, document: dict[str, Any]) -> None:
        """Keep ``document`` as ``workspace``'s installation."""
        ...

    async def find(self, workspace: str) -> dict[str, Any] | None:
        """``workspace``'s installation, or None."""
        ...

    async def delete(self, workspace: str) -> bool:
        """Forget ``workspace``'s installation; False if there was none."""
        ...

    async def count(self) -> int:
        """How many workspaces have the app installed."""
        ...

    async def workspaces(self) -> list[str]:
        """Every workspace with an installation."""
        ...

    async def issue(self, state: str, seconds: int) -> None:
        """Remember an install in progress for ``seconds``."""
        ...

    async def consume(self, state: str) -> bool:
        """True once for an issued, unexpired state; False ever after."""
        ...
