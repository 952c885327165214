"""The running app: one cycle (``paperbot run --once``) or the service (the scheduler and every chat
listener in one event loop). ``bot.app`` builds the ``App``; this module only runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import ListenerError, PaperbotError, SourceError, StoreError
from bot.flow.delivery import Deliverer, DeliveryReport
from bot.flow.poller import Poller, PollReport
from bot.pacing import backoff
from bot.ports import Adapter, Commands, Coordination, Ledger, Listener, Outbox
from bot.service.health import Status
from bot.service.metrics import Metrics

log = logging.getLogger("bot.app")

RETRY_FIRST, RETRY_LAST = 5.0, 300.0  # seconds between attempts while Redis is unreachable
CONNECTION_TTL = 15.0  # seconds a process holds a one-per-bot chat connection's lock without renewing it
LISTENER_RETRY_FIRST, LISTENER_RETRY_LAST, LISTENER_STEADY = 5.0, 600.0, 600.0  # a chat connection's retries
ROLES = ("all", "poller", "worker")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When things run: polls every ``poll_minutes`` (plus up to ``jitter_seconds``); delivery at once when
    something is queued, and at least every ``deliver_seconds`` (retries that fall due)."""

    poll_minutes: float = 30.0
    jitter_seconds: float = 120.0
    deliver_seconds: float = 5.0


@dataclass
class CycleReport:
    """One poll followed by one delivery pass."""

    poll: PollReport
    delivery: DeliveryReport

    def summary(self) -> dict[str, object]:
        """The fields of the one log line a cycle writes."""
        edited = {"edited": self.delivery.edited} if self.delivery.edited else {}
        return self.poll.summary() | {"delivered": self.delivery.delivered, "pending": self.delivery.pending} | edited


@dataclass
class App:
    """Everything one process runs, over the ports; ``role`` says which of poller and deliverer run."""

    poller: Poller
    deliverer: Deliverer
    commands: Commands
    outbox: Outbox
    coordination: Coordination
    ledger: Ledger  # what operators read and fix (``paperbot deliveries``, ``status``)
    schedule: Schedule = field(default_factory=Schedule)
    role: str = "all"
    adapters: Mapping[str, Adapter] = field(default_factory=dict)
    listeners: Mapping[str, Listener] = field(default_factory=dict)
    owner: str = "paperbot"  # this process, as locks and delivery consumers name it
    metrics: Metrics = field(default_factory=Metrics)
    status: Status | None = None  # what /readyz reports (the service registers its loops there)

    async def cycle(self) -> CycleReport:
        """Poll (unless a worker) and deliver (unless a poller). What is already queued goes out while the
        poll runs, never after it; what the poll queued goes out when it ends; a failed poll delivers too."""
        polling = asyncio.create_task(self._poll())
        try:
            delivery = await self.deliver() if self.role != "poller" else DeliveryReport()
            poll = await polling
        finally:
            polling.cancel()  # only still running if delivery raised (Redis lost): do not leave it behind
        if (poll.queued or poll.edits or poll.rising or poll.recaps or poll.digests) and self.role != "poller":
            delivery = delivery.merged(await self.deliver())
        report = CycleReport(poll, delivery)
        log.info("cycle finished", extra={"kv": report.summary()})
        return report

    async def poll(self) -> PollReport:
        """One poll, logged as one line (the service's scheduled job; delivery runs on its own)."""
        report = await self._poll()
        log.info("poll finished", extra={"kv": report.summary() | {"queued": report.queued}})
        return report

    async def deliver(self) -> DeliveryReport:
        """One delivery pass, counted in the metrics."""
        report = await self.deliverer.deliver()
        self.metrics.delivered(report)
        return report

    async def _poll(self) -> PollReport:
        if self.role == "worker":
            return PollReport(skipped=True)
        started = time.perf_counter()
        try:
            report = await self.poller.poll()
        except StoreError:
            raise
        except Exception as exc:  # a bug in one poll must not stop delivery of what is queued
            problem = f"{type(exc).__name__}: {exc}"[:500]
            log.error("poll failed", extra={"kv": {"problem": problem}})
            report = PollReport(failed={"poll": problem})
        self.metrics.polled(report, time.perf_counter() - started)
        return report


async def run_once(app: App) -> CycleReport:
    """One cycle; ``SourceError`` when every source failed, so the caller can exit non-zero."""
    report = await app.cycle()
    if not report.poll.answered and not report.poll.skipped:
        reasons = "; ".join(f"{name}: {why}" for name, why in report.poll.failed.items())
        raise SourceError(f"every source failed ({reasons})")
    return report


async def deliver_forever(app: App) -> None:
    """The service's delivery: a pass at once, then another as soon as anything is queued (a blocking
    read on the outbox), when a paused destination's retry falls due, or after ``schedule.deliver_seconds``
    at the latest.
    Detection to post takes a round trip, not a poll interval. A lost Redis (or any failure) is retried
    with backoff: only cancellation ends it."""
    beating = asyncio.create_task(app.deliverer.keep_alive())  # its entries stay its own while it lives
    tip, failures = "", 0
    try:
        while True:
            try:
                tip = tip or await app.outbox.wait_for_work("", 0)
                report = await app.deliver()
                if report.delivered or report.edited or report.failed or report.dead:
                    kv = {"delivered": report.delivered, "edited": report.edited, "pending": report.pending, "dead": report.dead}
                    log.info("delivered", extra={"kv": kv | ({"failed": ",".join(report.failed)} if report.failed else {})})
                tip = await app.outbox.wait_for_work(tip, await _until_next_pass(app))
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost Redis, or anything else: delivery goes on after a pause
                retry_in = round(backoff(failures, RETRY_FIRST, RETRY_LAST), 1)
                failures += 1
                problem = str(exc) if isinstance(exc, StoreError) else f"unexpected {type(exc).__name__}: {exc}"[:300]
                log.error("delivery failed; retrying", extra={"kv": {"problem": problem, "retry_in_s": retry_in}})
                await asyncio.sleep(retry_in)
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)


async def _until_next_pass(app: App) -> float:
    # New work wakes the loop at once; a retry wakes it when its destination's pause ends; anything else
    # (a dead worker's entries, freed when its heartbeat lapses) at the latest after deliver_seconds.
    due = await app.coordination.next_due()
    longest = app.schedule.deliver_seconds
    return longest if due is None else min(longest, due + 0.05)


async def hold_and_serve(name: str, listener: Listener, commands: Commands, coordination: Coordination, owner: str) -> None:
    """For a platform that allows one connection per bot (Discord: every gateway session receives every
    interaction, so N processes would answer each one N times): serve only while this process holds that
    platform's lock in Redis. The other processes ask every ``CONNECTION_TTL / 3`` seconds; one takes over
    that soon after the holder stops (it releases the lock), or ``CONNECTION_TTL`` later if it died."""
    key = f"listener:{name}"
    while True:
        try:
            held = await coordination.lock(key, owner, CONNECTION_TTL)
        except StoreError:
            held = False  # Redis is away: try again later; delivery says so in its own log lines
        if held:
            log.info("chat connection taken", extra={"kv": {"platform": name, "owner": owner}})
            serving = asyncio.create_task(supervise(name, listener, commands))
            try:
                while not serving.done():
                    await asyncio.sleep(CONNECTION_TTL / 3)
                    if not await _renewed(coordination, key, owner):
                        log.warning("chat connection's lock lost; handing it over", extra={"kv": {"platform": name}})
                        break
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                with contextlib.suppress(StoreError):
                    await coordination.unlock(key, owner)
        await asyncio.sleep(CONNECTION_TTL / 3)


async def _renewed(coordination: Coordination, key: str, owner: str) -> bool:
    try:
        return await coordination.renew(key, owner, CONNECTION_TTL)
    except StoreError:
        return True  # a Redis blip: keep the connection; the lock is lost only if someone else took it


async def supervise(name: str, listener: Listener, commands: Commands) -> None:
    """Keep one platform's listener running: when it fails (a revoked token, no network, a port in use),
    one log line says why and it is tried again with backoff, while delivery and the other platforms
    carry on. Only cancellation (shutdown) stops it."""
    failures = 0
    while True:
        started = asyncio.get_running_loop().time()
        try:
            await listener.run(commands)
            problem = "stopped on its own"
        except asyncio.CancelledError:
            raise
        except ListenerError as exc:  # the adapter said why, in words for a person
            problem = str(exc)[:300]
        except Exception as exc:  # any failure of one platform's connection must not stop the others
            problem = f"{type(exc).__name__}: {exc}"[:300]
        if asyncio.get_running_loop().time() - started > LISTENER_STEADY:
            failures = 0  # it ran for a good while: this is a new outage, not the same one
        retry_in = round(backoff(failures, LISTENER_RETRY_FIRST, LISTENER_RETRY_LAST), 1)
        failures += 1
        log.error("chat listener down; retrying", extra={"kv": {"platform": name, "problem": problem, "retry_in_s": retry_in}})
        await asyncio.sleep(retry_in)


class Cycles:
    """Runs the polls on APScheduler: at start, then every poll interval (with jitter). Expected trouble is
    one log line; an unreachable Redis is retried soon, with doubling waits, rather than at the next poll."""

    def __init__(self, app: App) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # only the service schedules

        self.app = app
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.running: set[asyncio.Task[Any]] = set()
        self._failures = 0

    def start(self) -> None:
        """Schedule the first poll now and the next ones every interval (a worker does not poll)."""
        schedule = self.app.schedule
        if self.app.role != "worker":
            self.scheduler.add_job(
                self.run,
                "interval",
                minutes=schedule.poll_minutes,
                jitter=schedule.jitter_seconds,
                next_run_time=datetime.now(UTC),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
                id="cycle",
            )
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES

        self.scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()

    def _skipped(self, event: object) -> None:
        # APScheduler drops a cycle whose previous run is still going; say so, or a stuck cycle is silent.
        log.warning("cycle skipped: the previous one is still running (bounded by schedule.poll_budget_seconds)")

    async def run(self) -> None:
        """One guarded poll (the delivery loop posts what it queues at once)."""
        task = asyncio.current_task()
        assert task is not None  # APScheduler runs coroutines as tasks
        self.running.add(task)
        try:
            await self.app.poll()
            self._failures = 0
        except asyncio.CancelledError:
            # Shutdown interrupted the cycle: nothing is lost (the outbox keeps what was not acknowledged).
            log.info("cycle interrupted by shutdown")
        except StoreError as exc:
            retry_in = round(backoff(self._failures, RETRY_FIRST, RETRY_LAST), 1)
            self._failures += 1
            log.error("cycle failed; retrying", extra={"kv": {"problem": str(exc), "retry_in_s": retry_in}})
            run_at = datetime.now(UTC) + timedelta(seconds=retry_in)
            self.scheduler.add_job(self.run, "date", run_date=run_at, id="retry", replace_existing=True)
        except PaperbotError as exc:
            # Other expected trouble (every source down): one line; the next cycle tries again.
            log.error("cycle failed", extra={"kv": {"problem": str(exc)}})
        finally:
            self.running.discard(task)

    async def stop(self, others: list[asyncio.Task[Any]]) -> None:
        """Stop scheduling, interrupt what runs (and ``others``), and wait for all of it to end."""
        self.scheduler.shutdown(wait=False)
        tasks = [*others, *self.running]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(app: App, stop: asyncio.Event | None = None) -> None:
    """Poll at start, then on the schedule, and serve every chat listener, all in this one event loop,
    until SIGTERM or SIGINT (or until ``stop`` is set, when one is given)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    cycles = Cycles(app)
    cycles.start()
    listeners = [
        asyncio.create_task(
            hold_and_serve(name, listener, app.commands, app.coordination, app.owner)
            if getattr(listener, "one_connection_per_bot", False)
            else supervise(name, listener, app.commands),
            name=name,
        )
        for name, listener in app.listeners.items()
    ]
    if app.role != "poller":
        delivery = asyncio.create_task(deliver_forever(app), name="delivery")
        cycles.running.add(delivery)
        if app.status is not None:
            app.status.watch_task("delivery", delivery)  # /readyz says so if it ever stops
    if listeners:  # chat users will query: load the index now, not on the first /papers
        cycles.running.add(asyncio.create_task(app.commands.warm_up(), name="warm-up"))
    if "slack" in app.adapters and "slack" not in app.listeners:
        log.warning(
            "slack: posting only; /papers, reactions and Save need SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)"
        )
    chat = ",".join(t.get_name() for t in listeners) or "none"
    log.info("paperbot running", extra={"kv": {"poll_interval_minutes": app.schedule.poll_minutes, "chat": chat}})
    done = asyncio.ensure_future(stop.wait())
    try:
        await done
    finally:
        await cycles.stop([*listeners, done])
        for sig in signals:
            loop.remove_signal_handler(sig)
        log.info("paperbot stopped")
