"""The composition root: the one place that builds paperbot — settings → clients → stores → core →
adapters → listeners — and owns their lifetimes. It alone (with ``bot/store``) names a Redis class,
and it alone (lazily, when a platform is configured) imports the chat adapters."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as redis

from bot.cards import to_card
from bot.chat.commands import ChatOptions, ChatStores, CommandCore
from bot.chat.digests import DirectDigests
from bot.chat.feed import Feed
from bot.chat.vectors import Embedder
from bot.chat.workspaces import Workspaces
from bot.errors import ConfigError, PaperbotError
from bot.flow.channels import Channels
from bot.flow.delivery import Deliverer
from bot.flow.following import Follower
from bot.flow.poller import AfterCommit, Poller, PollOptions, digests_due, with_new
from bot.flow.recap import Recaps
from bot.logs import redactor
from bot.model import Check, Destination, Links, Paper
from bot.pacing import MinInterval
from bot.ports import Adapter, Installations, Listener, Locks, SharedPace, Source, Watched
from bot.query.index import PaperIndex
from bot.service.doctor import platform_checks, source_checks, store_checks, trial_post
from bot.service.health import Status, installations_open
from bot.service.metrics import Metrics
from bot.service.runner import App, Schedule
from bot.settings.schema import Settings
from bot.sources.arxiv import ArxivSource
from bot.sources.http import RetryingGetter, make_client
from bot.sources.huggingface import HuggingFaceSource
from bot.store.coordination import RedisCoordination
from bot.store.embedded import EmbeddedRedis, default_data_dir
from bot.store.follows import RedisFollows
from bot.store.installations import RedisInstallations
from bot.store.keys import Client, cluster_prefix, is_cluster, redis_errors
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore
from bot.store.subscriptions import RedisSubscriptions

log = logging.getLogger(__name__)


async def _quietly(cleanup: Callable[[str], Awaitable[None]], consumer: str) -> None:
    """Retiring the consumer at exit: bounded in time, and a failure is one log line, never a failed start."""
    try:
        await asyncio.wait_for(cleanup(consumer), CLEANUP_WAIT)
    except (PaperbotError, TimeoutError) as exc:
        log.warning("could not retire this delivery consumer at exit", extra={"kv": {"problem": str(exc) or "timed out"}})


@dataclass
class Platforms:
    """The chat side of one process: an adapter per platform that posts, a listener per platform that serves."""

    adapters: dict[str, Adapter] = field(default_factory=dict)
    listeners: dict[str, Listener] = field(default_factory=dict)


def build_platforms(
    settings: Settings, json_lines: bool = False, installations: Installations | None = None, locks: Locks | None = None
) -> Platforms:
    """The console, plus Slack and Discord when configured (an SDK is imported only when used), plus the
    web port when ``PORT`` is set or Slack's HTTP mode needs it: it carries Slack's routes then, and is
    that platform's listener. With ``SLACK_CLIENT_ID``/``SLACK_CLIENT_SECRET`` Slack serves every
    workspace that installs it (``installations`` keeps them; ``locks`` make token renewals single-flight)."""
    from adapters.console import ConsoleAdapter

    built = Platforms({"console": ConsoleAdapter(sys.stdout, json_lines=json_lines)})
    slack = settings.slack
    http_mode = bool(slack.signing_secret and not slack.app_token and (slack.bot_token or slack.workspaces))
    web = None
    if settings.web.port or http_mode:
        from adapters.web import WebServer

        web = WebServer(settings.web.port or settings.web.DEFAULT_PORT)
        built.listeners["web"] = web
    if slack.bot_token or slack.workspaces:
        from adapters.slack.inbound import SlackInbound
        from adapters.slack.outbound import SlackOutbound, web_client

        client = web_client(slack.bot_token.reveal() if slack.bot_token else None, slack.api_url)
        oauth, tokens = None, None
        if slack.workspaces and slack.client_secret and installations is not None and locks is not None:
            from adapters.slack.oauth import oauth_flow
            from adapters.slack.tokens import TokenKeeper, WorkspaceTokens

            secret = slack.client_secret.reveal()
            keeper = TokenKeeper(installations, client, slack.client_id, secret, locks)
            oauth = oauth_flow(
                installations,
                client,
                client_id=slack.client_id,
                client_secret=secret,
                command=slack.command,
                redirect_uri=slack.redirect_uri or None,
                keeper=keeper,
            )
            tokens = WorkspaceTokens(keeper)
        built.adapters["slack"] = SlackOutbound(client, tokens=tokens)
        inbound = SlackInbound(
            client,
            app_token=slack.app_token.reveal() if slack.app_token else None,
            signing_secret=slack.signing_secret.reveal() if slack.signing_secret else None,
            command=slack.command,
            save_emoji=settings.chat.save_emoji.get("slack", "bookmark"),
            oauth=oauth,
        )
        if slack.app_token:  # posting needs no inbound credential; listening does
            built.listeners["slack"] = inbound
        elif http_mode and web is not None:
            web.mount(inbound.routes)
            built.listeners["slack"] = built.listeners.pop("web")  # Slack reaches paperbot through it
    if settings.discord.token:
        from adapters.discord.client import new_client
        from adapters.discord.inbound import DiscordInbound
        from adapters.discord.outbound import DiscordOutbound

        token, discord_client = settings.discord.token.reveal(), new_client(settings.discord.api_url)
        built.adapters["discord"] = DiscordOutbound(discord_client, token)
        built.listeners["discord"] = DiscordInbound(discord_client, token)
    return built


async def sync_discord(settings: Settings, guild_id: int | None = None, clear: bool = False) -> int:
    """``paperbot discord sync [--guild ID] [--clear]``: register ``/papers`` (see ``DiscordInbound.sync``);
    returns how many commands are registered there now."""
    if not settings.discord.token:
        raise ConfigError(["DISCORD_TOKEN: required to sync the Discord commands"])
    from adapters.discord.client import new_client
    from adapters.discord.inbound import DiscordInbound

    inbound = DiscordInbound(new_client(settings.discord.api_url), settings.discord.token.reveal())
    return await inbound.sync(guild_id, clear)


def build_sources(settings: Settings, client: httpx.AsyncClient) -> list[Source]:
    """The enabled sources over the shared client."""
    http, hf, arxiv = settings.http, settings.sources.huggingface, settings.sources.arxiv
    getter = RetryingGetter(client, http.retries, http.backoff, http.backoff_max, deadline=http.deadline)
    sources: list[Source] = []
    if hf.enabled:
        sources.append(HuggingFaceSource(getter, hf.endpoint, hf.lookback_days, hf.page_size))
    if arxiv.categories:
        sources.append(
            ArxivSource(
                getter,
                arxiv.api_url,
                arxiv.categories,
                lookback_days=max(hf.lookback_days, 4),  # arXiv announces Friday's work on Monday
                page_size=arxiv.max_results,
                pace=MinInterval(arxiv.min_interval),
            )
        )
    if not sources:
        raise ConfigError(["no source is enabled: set sources.huggingface.enabled or sources.arxiv.categories"])
    return sources


def open_sources(settings: Settings, stack: AsyncExitStack, transport: httpx.AsyncBaseTransport | None = None) -> list[Source]:
    """The enabled sources over one HTTP client that ``stack`` closes (``transport``: the tests')."""
    hf = settings.sources.huggingface
    http = make_client(settings.http.timeout, hf.token.reveal() if hf.token else None, transport)
    stack.push_async_callback(http.aclose)
    return build_sources(settings, http)


def close_adapters(platforms: Platforms, stack: AsyncExitStack) -> None:
    """Have ``stack`` close every adapter that holds connections."""
    for adapter in platforms.adapters.values():
        if callable(aclose := getattr(adapter, "aclose", None)):
            stack.push_async_callback(aclose)


CLEANUP_WAIT = 2.0  # seconds: SIGTERM must end the process promptly whatever Redis is doing
REDIS_CONNECTIONS = 64  # per process; more concurrent commands wait for a connection instead of failing
REDIS_WAIT = 10.0  # seconds a command waits for a free connection before it is a StoreError


async def open_redis(settings: Settings, stack: AsyncExitStack) -> tuple[Client, str]:
    """The client and the key prefix to use on it: ``REDIS_URL`` when set, else the embedded Redis in the
    data directory; checked with a PING. A URL naming any node of a Redis Cluster (``cluster_enabled:1``)
    gets a cluster client, and the prefix a hash tag. The single-server pool blocks when every connection
    is busy (a burst of commands queues; it does not fail)."""
    options: dict[str, Any] = {"max_connections": REDIS_CONNECTIONS, "protocol": 2, "socket_timeout": 10}
    prefix = settings.store.key_prefix
    pool: redis.BlockingConnectionPool
    if settings.store.redis_url:
        url = settings.store.redis_url.reveal()
        try:
            pool = redis.BlockingConnectionPool.from_url(url, socket_connect_timeout=5, timeout=REDIS_WAIT, **options)
        except ValueError:
            raise ConfigError(["REDIS_URL: not a valid redis:// or rediss:// or unix:// URL"]) from None
    else:
        data_dir = Path(settings.store.data_dir) if settings.store.data_dir else default_data_dir()
        # On this (the main) thread: the server is told to stop when the thread that started it ends.
        embedded = EmbeddedRedis(data_dir)
        stack.callback(embedded.close)
        pool = redis.BlockingConnectionPool(
            connection_class=redis.UnixDomainSocketConnection, path=embedded.socket_path, timeout=REDIS_WAIT, **options
        )
    single = redis.Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections
    stack.push_async_callback(single.aclose)
    async with redis_errors(single, "answer PING"):
        await single.ping()
    if not settings.store.redis_url or not await is_cluster(single):
        return single, prefix
    await single.aclose()
    cluster = redis.RedisCluster.from_url(url, socket_connect_timeout=5, **options)
    stack.push_async_callback(cluster.aclose)
    async with redis_errors(cluster, "describe its cluster"):
        # Learn the slots before any concurrent use: commands racing the client's first discovery can be
        # handed a connection that discovery is closing (redis-py 8.1).
        await cluster.initialize()
    log.info("Redis Cluster", extra={"kv": {"masters": len(cluster.get_primaries()), "prefix": cluster_prefix(prefix)}})
    return cluster, cluster_prefix(prefix)


@dataclass(frozen=True)
class Stores:
    """Every store of one process, on one client and prefix, by the ports they implement."""

    store: RedisStore  # Outbox, LivingPosts, Ledger and Papers
    coordination: RedisCoordination
    subscriptions: RedisSubscriptions
    library: RedisLibrary
    follows: RedisFollows
    installations: RedisInstallations


def open_stores(settings: Settings, client: Client, prefix: str) -> Stores:
    """The stores over ``client``; workspaces' tokens are sealed with a key from the environment."""
    slack, store = settings.slack, settings.store
    seal = None
    if slack.workspaces and slack.client_secret:
        from bot.store.sealing import Seal  # cryptography is loaded only where it is used

        previous = slack.client_secret_previous.reveal() if slack.client_secret_previous else ""
        seal = Seal(slack.client_secret.reveal(), previous)
    redact = redactor(settings.secrets())
    records = RedisStore(
        client,
        prefix,
        store.paper_ttl_days * 86400,
        redact,
        track_seconds=settings.delivery.track_days * 86400,
        edit_spacing=settings.delivery.edit_spacing_minutes * 60,
    )
    return Stores(
        records,
        RedisCoordination(client, prefix, redact),
        RedisSubscriptions(client, prefix),
        RedisLibrary(client, prefix),
        RedisFollows(client, prefix),
        RedisInstallations(client, prefix, seal),
    )


def build_commands(
    settings: Settings,
    stores: Stores,
    index: PaperIndex,
    feed: Feed,
    catch_all: frozenset[Destination],
    metrics: Metrics,
    workspaces: Workspaces,
) -> CommandCore:
    """``/papers`` for every platform."""
    chat = settings.chat
    return CommandCore(
        ChatStores(stores.store, stores.subscriptions, stores.library, stores.coordination, stores.follows),
        index,
        ChatOptions(chat.save_emoji, catch_all, chat.page_size, settings.summary.tldr_length, chat.managers, chat.dm_at),
        feed=feed,
        workspaces=workspaces,
        timed=metrics.answered,
    )


def build_poller(
    settings: Settings, sources: list[Source], stores: Stores, channels: Channels, feed: Feed, digests: DirectDigests, owner: str
) -> Poller:
    """The poller and its after-commit steps: vectors for new papers, posted papers followed (while
    ``track_days`` says so), weekly recaps and readers' digests that fell due."""

    store, follow = stores.store, settings.delivery.track_days > 0
    steps: list[AfterCommit] = [with_new(feed.remember)]
    if follow:
        steps.append(Follower(store, store).after_commit)
    if recapped := [c for c in settings.channels if c.top_digest]:
        steps.append(Recaps(store, store, recapped, lambda: datetime.now(UTC)).after_commit)
    steps.append(digests_due(digests.queue))
    options = PollOptions(
        owner=owner,
        budget=settings.schedule.poll_budget_seconds,
        first_run_limit=settings.delivery.first_run_limit,
        watch=follow,
    )
    return Poller(
        sources,
        store,
        channels.router,
        coordination=stores.coordination,
        options=options,
        likes=feed.route_likes,
        after_commit=steps,
    )


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    role: str = "all",
    json_lines: bool = False,
    platforms: Platforms | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[App]:
    """Build the app for one process; everything it opened is closed, in reverse order, when the block
    ends. ``platforms`` and ``transport`` replace the chat platforms and the sources' HTTP (tests)."""
    async with AsyncExitStack() as stack:
        sources = open_sources(settings, stack, transport)
        stores = open_stores(settings, *await open_redis(settings, stack))
        store, coordination = stores.store, stores.coordination
        platforms = platforms or build_platforms(settings, json_lines, stores.installations, stores.coordination)
        close_adapters(platforms, stack)
        for adapter in platforms.adapters.values():
            if isinstance(adapter, SharedPace):
                adapter.share_pace(coordination)  # one pace per channel across every worker process
        missing = {c.destination.platform for c in settings.channels} - set(platforms.adapters)
        if missing:
            raise ConfigError([f"channels: no adapter for platform {p!r} is running" for p in sorted(missing)])

        channels = Channels(settings.channels, stores.subscriptions)
        await channels.seed()
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        stack.push_async_callback(_quietly, store.retire, consumer)
        index = PaperIndex(store, settings.store.paper_ttl_days * 86400)
        stack.callback(index.close)
        stack.push_async_callback(index.saved)  # runs first: a snapshot being written is finished
        feed = Feed(index, store, stores.library, Embedder())
        metrics = Metrics()
        digests = DirectDigests(stores.follows, index, feed, store, lambda: datetime.now(UTC))
        workspaces = Workspaces(stores.installations, stores.subscriptions, store, stores.follows)
        commands = build_commands(settings, stores, index, feed, channels.catch_all, metrics, workspaces)
        poller = build_poller(settings, sources, stores, channels, feed, digests, consumer)
        delivery = settings.delivery
        deliverer = Deliverer(
            store,
            store,
            platforms.adapters,
            consumer,
            delivery.claim_idle_seconds,
            settings.summary.tldr_length,
            channels.settings,
            coordination=coordination,
            undeliverable=digests.undeliverable,
            forget=lambda gone: workspaces.forget_channels(gone.platform, [gone.channel]),
        )
        schedule = Schedule(settings.schedule.poll_interval_minutes, settings.schedule.jitter_seconds, delivery.interval_seconds)
        # A process that polls is unready when no poll (anyone's) finished for two intervals and a budget.
        budget = settings.schedule.poll_budget_seconds
        overdue = None if role == "worker" else 2 * 60 * schedule.poll_minutes + schedule.jitter_seconds + budget
        multi = settings.slack.workspaces
        count = stores.installations.count if multi else None
        checks = [installations_open(stores.installations)] if multi else []
        status = Status(
            metrics, store, coordination, platforms.listeners, poll_overdue=overdue, installations=count, checks=checks
        )
        for listener in platforms.listeners.values():
            if isinstance(listener, Watched):
                listener.watch(status)
        yield App(
            poller,
            deliverer,
            commands,
            store,
            coordination,
            store,
            schedule,
            role,
            platforms.adapters,
            platforms.listeners,
            consumer,
            metrics,
            status,
        )


DOCTOR_PAPER = Paper(
    id="0000.00000",
    title="paperbot doctor: a test card (deleted again at once)",
    abstract="This card checks that paperbot may post here. It is removed right after it is posted.",
    authors=("paperbot",),
    published=datetime(2026, 1, 1, tzinfo=UTC),
    links=Links(abstract="https://arxiv.org/abs/0000.00000"),
    sources=frozenset({"doctor"}),
)


async def diagnose(settings: Settings, post: str = "") -> list[Check]:
    """``paperbot doctor``: every check against the real store, sources and platforms (see
    ``bot.service.doctor``). Unlike ``open_app`` it changes nothing (no channel is seeded) and an
    unreachable Redis is a failed check, not a failed start. With ``post`` (a destination such as
    ``slack:C0123`` or ``discord:1234``) one test card is posted there and deleted."""
    checks: list[Check] = []
    async with AsyncExitStack() as stack:
        installations, locks = None, None
        try:
            stores = open_stores(settings, *await open_redis(settings, stack))
            checks += await store_checks(stores.coordination)
            installations, locks = stores.installations, stores.coordination
        except PaperbotError as exc:
            checks.append(Check("Redis", "fail", str(exc), "start Redis, or set REDIS_URL to one that answers"))
        checks += await source_checks(open_sources(settings, stack))
        platforms = build_platforms(settings, installations=installations, locks=locks)
        close_adapters(platforms, stack)
        destinations = [c.destination for c in settings.channels]
        checks += await platform_checks([*platforms.adapters.values(), *platforms.listeners.values()], destinations)
        if "slack" in platforms.adapters and "slack" not in platforms.listeners:
            fix = "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
            checks.append(Check("Slack events", "warn", "posting only: /papers, reactions and Save are not received", fix))
        if post:
            where = Destination.parse(post)
            checks.append(await trial_post(platforms.adapters.get(where.platform), where, to_card(DOCTOR_PAPER)))
    return checks
