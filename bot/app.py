"""The composition root: builds every part from Settings, runs one cycle or the scheduled service."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis.asyncio as redis
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.channels import Channels
from bot.commands import CommandCore
from bot.delivery import Deliverer, DeliveryReport
from bot.errors import ConfigError, PaperbotError, SourceError, StoreError
from bot.pacing import MinInterval
from bot.poller import Poller, PollReport
from bot.ports import Adapter, Listener, SharedPace, Source
from bot.search import PaperIndex
from bot.settings import Settings
from bot.sources.arxiv import ArxivSource
from bot.sources.http import RetryingGetter, make_client
from bot.sources.huggingface import HuggingFaceSource
from bot.store.coordination import RedisCoordination
from bot.store.embedded import EmbeddedRedis, default_data_dir
from bot.store.library import RedisLibrary
from bot.store.redis import RedisStore, redis_errors
from bot.store.subscriptions import RedisSubscriptions

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_LAST = 5.0, 300.0  # seconds between attempts while Redis is unreachable


@dataclass
class CycleReport:
    """One poll followed by one delivery pass."""

    poll: PollReport
    delivery: DeliveryReport

    def summary(self) -> dict[str, object]:
        """The fields of the one log line a cycle writes."""
        return {
            "sources_ok": ",".join(self.poll.answered) or "none",
            "sources_failed": ",".join(self.poll.failed) or "none",
            "fetched": self.poll.fetched,
            "new": self.poll.new,
            "delivered": self.delivery.delivered,
            "pending": self.delivery.pending,
        }


ROLES = ("all", "poller", "worker")


class App:
    """A poller, a deliverer and the command core over one store; ``role`` says which of the first two run."""

    def __init__(
        self,
        poller: Poller,
        deliverer: Deliverer,
        commands: CommandCore,
        store: RedisStore,
        coordination: RedisCoordination,
        role: str = "all",
    ) -> None:
        self.store = store
        self.coordination = coordination
        self.poller = poller
        self.deliverer = deliverer
        self.commands = commands
        self.role = role

    async def cycle(self) -> CycleReport:
        """Poll (unless a worker), then deliver everything owed (unless a poller)."""
        poll = await self.poller.poll() if self.role != "worker" else PollReport(skipped=True)
        delivery = await self.deliverer.deliver() if self.role != "poller" else DeliveryReport()
        report = CycleReport(poll, delivery)
        log.info("cycle finished", extra={"kv": report.summary()})
        return report


def build_sources(settings: Settings, client: httpx.AsyncClient) -> list[Source]:
    """The enabled sources over the shared client."""
    getter = RetryingGetter(client, settings.http_retries, settings.http_backoff, settings.http_backoff_max)
    sources: list[Source] = []
    if settings.hf_enabled:
        sources.append(HuggingFaceSource(getter, settings.hf_endpoint, settings.hf_lookback_days, settings.hf_page_size))
    if settings.arxiv_categories:
        sources.append(
            ArxivSource(
                getter,
                settings.arxiv_api_url,
                settings.arxiv_categories,
                lookback_days=max(settings.hf_lookback_days, 4),  # arXiv announces Friday's work on Monday
                page_size=settings.arxiv_max_results,
                pace=MinInterval(settings.arxiv_min_interval),
            )
        )
    if not sources:
        raise ConfigError(["no source is enabled: set sources.huggingface.enabled or sources.arxiv.categories"])
    return sources


async def open_redis(settings: Settings, stack: AsyncExitStack) -> redis.Redis:
    """``REDIS_URL`` when set, else the embedded Redis in the data directory; checked with a PING."""
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(settings.redis_url.reveal(), protocol=2, socket_timeout=10, socket_connect_timeout=5)
        except ValueError:
            raise ConfigError(["REDIS_URL: not a valid redis:// or rediss:// or unix:// URL"]) from None
    else:
        data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
        embedded = await asyncio.to_thread(EmbeddedRedis, data_dir)
        stack.callback(embedded.close)
        client = redis.Redis(unix_socket_path=embedded.socket_path, protocol=2, socket_timeout=10)
    stack.push_async_callback(client.aclose)
    async with redis_errors(client, "answer PING"):
        await client.ping()
    return client


@asynccontextmanager
async def open_app(
    settings: Settings, adapters: Mapping[str, Adapter], transport: httpx.AsyncBaseTransport | None = None, role: str = "all"
) -> AsyncIterator[App]:
    """Build the app; everything it opened is closed, in reverse order, when the block ends."""
    async with AsyncExitStack() as stack:
        token = settings.hf_token.reveal() if settings.hf_token else None
        client = make_client(settings.http_timeout, token, transport)
        stack.push_async_callback(client.aclose)
        sources = build_sources(settings, client)
        for adapter in adapters.values():
            if callable(getattr(adapter, "aclose", None)):
                stack.push_async_callback(adapter.aclose)  # type: ignore[attr-defined]
        missing = {c.destination.platform for c in settings.channels} - set(adapters)
        if missing:
            raise ConfigError([f"channels: no adapter for platform {p!r} is running" for p in sorted(missing)])
        client = await open_redis(settings, stack)
        ttl = settings.paper_ttl_days * 86400
        store = RedisStore(client, settings.key_prefix, ttl)
        coordination = RedisCoordination(client, settings.key_prefix)
        for adapter in adapters.values():
            if isinstance(adapter, SharedPace):
                adapter.share_pace(coordination.slot)  # one pace per channel across every worker process
        subscriptions = RedisSubscriptions(client, settings.key_prefix)
        library = RedisLibrary(client, settings.key_prefix)
        channels = Channels(settings.channels, subscriptions)
        await channels.seed()
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        stack.push_async_callback(store.retire, consumer)
        commands = CommandCore(
            store,
            subscriptions,
            library,
            PaperIndex(store, ttl),
            settings.save_emoji,
            channels.catch_all,
            settings.page_size,
            settings.tldr_length,
            coordination=coordination,
        )
        poller = Poller(sources, store, channels.router, coordination=coordination, owner=consumer)
        deliverer = Deliverer(
            store,
            adapters,
            consumer,
            settings.claim_idle_seconds,
            settings.tldr_length,
            channels.settings,
            coordination=coordination,
        )
        yield App(poller, deliverer, commands, store, coordination, role)


async def run_once(app: App) -> CycleReport:
    """One cycle; ``SourceError`` when every source failed, so the caller can exit non-zero."""
    report = await app.cycle()
    if not report.poll.answered and not report.poll.skipped:
        reasons = "; ".join(f"{name}: {why}" for name, why in report.poll.failed.items())
        raise SourceError(f"every source failed ({reasons})")
    return report


class Cycles:
    """Runs the app's cycles on APScheduler: at start, then on the role's schedule. Expected trouble is
    one log line; an unreachable Redis is retried soon, with doubling waits, rather than at the next poll."""

    def __init__(self, app: App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.running: set[asyncio.Task[None]] = set()
        self._retry_in = RETRY_FIRST

    def start(self) -> None:
        """Schedule the first cycle now and the next ones every interval."""
        if self.app.role == "worker":
            # Workers only deliver: often, so what pollers queue goes out within a minute.
            every: dict[str, float] = {"seconds": self.settings.deliver_interval_seconds}
        else:
            every = {"minutes": self.settings.poll_interval_minutes, "jitter": self.settings.poll_jitter_seconds}
        self.scheduler.add_job(
            self.run,
            "interval",
            **every,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            id="cycle",
        )
        self.scheduler.start()

    async def run(self) -> None:
        """One guarded cycle."""
        task = asyncio.current_task()
        self.running.add(task)  # type: ignore[arg-type]
        try:
            await self.app.cycle()
            self._retry_in = RETRY_FIRST
        except asyncio.CancelledError:
            # Shutdown interrupted the cycle: nothing is lost (the outbox keeps what was not acknowledged).
            log.info("cycle interrupted by shutdown")
        except StoreError as exc:
            log.error("cycle failed; retrying", extra={"kv": {"problem": str(exc), "retry_in_s": self._retry_in}})
            run_at = datetime.now(UTC) + timedelta(seconds=self._retry_in)
            self.scheduler.add_job(self.run, "date", run_date=run_at, id="retry", replace_existing=True)
            self._retry_in = min(self._retry_in * 2, RETRY_LAST)
        except PaperbotError as exc:
            # Other expected trouble (every source down): one line; the next cycle tries again.
            log.error("cycle failed", extra={"kv": {"problem": str(exc)}})
        finally:
            self.running.discard(task)  # type: ignore[arg-type]

    async def stop(self, others: list[asyncio.Task[None]]) -> None:
        """Stop scheduling, interrupt what runs (and ``others``), and wait for all of it to end."""
        self.scheduler.shutdown(wait=False)
        tasks = [*others, *self.running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(app: App, settings: Settings, adapters: Mapping[str, Adapter], stop: asyncio.Event | None = None) -> None:
    """Poll at start, then every ``poll_interval`` with jitter, and serve every chat adapter, all in
    this one event loop, until SIGTERM or SIGINT (or until ``stop`` is set, when one is given)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    cycles = Cycles(app, settings)
    cycles.start()
    listeners = [asyncio.create_task(a.run(app.commands), name=name) for name, a in adapters.items() if isinstance(a, Listener)]
    if listeners:  # chat users will query: load the index now, not on the first /papers
        cycles.running.add(asyncio.create_task(app.commands.warm_up(), name="warm-up"))
    chat = ",".join(t.get_name() for t in listeners) or "none"
    log.info("paperbot running", extra={"kv": {"poll_interval_minutes": settings.poll_interval_minutes, "chat": chat}})
    try:
        done = asyncio.ensure_future(stop.wait())
        finished, _ = await asyncio.wait([done, *listeners], return_when=asyncio.FIRST_COMPLETED)
        for task in finished - {done}:
            task.result()  # a listener that stopped on its own: surface why
    finally:
        await cycles.stop([*listeners, done])
        for sig in signals:
            loop.remove_signal_handler(sig)
        log.info("paperbot stopped")
