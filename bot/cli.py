"""The ``paperbot`` command line: parses arguments, loads settings, and hands over to the composition root."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from rich.console import Console

from bot import __version__, logs
from bot.app import diagnose, open_app, sync_discord
from bot.errors import ConfigError, PaperbotError, StoreError
from bot.model import Destination, UserRef
from bot.pacing import backoff
from bot.ports import ReplyViewer
from bot.service import doctor, operations
from bot.service.runner import ROLES, App, run_once, serve
from bot.settings.schema import Settings, load_settings

log = logging.getLogger("bot.app")

EXIT_FAILURE, EXIT_CONFIG = 1, 2
SHUTDOWN_GRACE = 4.0  # seconds after SIGTERM before the process ends whatever is still closing
START_RETRY_FIRST, START_RETRY_LAST = 1.0, 60.0  # seconds between start attempts while Redis is unreachable


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the README's reference and tests)."""
    main = argparse.ArgumentParser(prog="paperbot", description="New research papers in your team's channels.")
    main.add_argument("--version", action="version", version=f"paperbot {__version__}")
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="poll the sources and deliver new papers")
    run.add_argument("--once", action="store_true", help="run one poll-and-deliver cycle, then exit")
    run.add_argument("--json", action="store_true", help="print one JSON object per delivered paper per line")
    run.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="poller: only poll (one replica at a time holds the lock); worker: only deliver; all: both (default)",
    )
    run.add_argument("-v", "--verbose", action="count", default=0, help="debug logs (-vv: also HTTP requests)")
    run.add_argument("-q", "--quiet", action="store_true", help="errors only")
    for name, text in (("ask", "answer one /papers command as a console user"), ("shell", "type /papers commands at a prompt")):
        sub = commands.add_parser(name, help=text)
        if name == "ask":
            sub.add_argument("text", help='the command, e.g. "/papers subscribe reasoning"')
        sub.add_argument("--user", default="you", help="the console user's name (default: you)")
        sub.add_argument("--channel", default="terminal", help="the console channel (default: terminal)")
        sub.add_argument("-v", "--verbose", action="count", default=0, help="debug logs")
        sub.add_argument("-q", "--quiet", action="store_true", help="errors only")
    for name, text in (
        ("deliveries", "list queued and failed deliveries (--retry: queue the failed ones again)"),
        ("status", "each source's last success and failure, the queue, each destination's last post"),
        ("backfill", "fetch and deliver the papers of the last N days (after a long outage)"),
    ):
        sub = commands.add_parser(name, help=text)
        if name == "deliveries":
            sub.add_argument("--retry", action="store_true", help="queue dead letters again and resume paused destinations")
        if name == "backfill":
            sub.add_argument("--days", type=int, required=True, help="how many days back, 1 to 60")
        sub.add_argument("-v", "--verbose", action="count", default=0, help="debug logs")
        sub.add_argument("-q", "--quiet", action="store_true", help="errors only")
    doctor = commands.add_parser("doctor", help="check tokens, scopes, channels, Redis and sources against the real thing")
    doctor.add_argument(
        "--post", metavar="DESTINATION", default="", help="also post a test card there and delete it (slack:C0123)"
    )
    doctor.add_argument("-v", "--verbose", action="count", default=0, help="debug logs")
    doctor.add_argument("-q", "--quiet", action="store_true", help="errors only")
    discord_cmd = commands.add_parser("discord", help="Discord maintenance")
    discord_cmd.add_argument("action", choices=["sync"], help="sync: register /papers for every server (a deploy step)")
    discord_cmd.add_argument("--guild", type=int, help="only this server, at once (default: DISCORD_GUILD_ID if set)")
    discord_cmd.add_argument("--clear", action="store_true", help="remove /papers (from that server with --guild)")
    discord_cmd.add_argument("-v", "--verbose", action="count", default=0, help="debug logs")
    discord_cmd.add_argument("-q", "--quiet", action="store_true", help="errors only")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"paperbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    redact = logs.redactor(settings.secrets())
    logs.configure(-1 if args.quiet else args.verbose, redact)
    try:
        return asyncio.run(_run(args, settings, redact))
    except ConfigError as exc:
        print(f"paperbot: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CONFIG
    except PaperbotError as exc:
        print(f"paperbot: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `paperbot run --once --json | head -1`: the reader left. What was being printed was not
        # acknowledged, so the next run delivers it; say nothing and succeed, as Unix filters do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _run(args: argparse.Namespace, settings: Settings, redact: logs.Redact) -> int:
    if args.command != "run" or args.once:
        return await _run_once(args, settings, redact)
    # The service: SIGTERM and SIGINT stop it cleanly (exit 0) at any moment, the wait for Redis included.
    loop, stop = asyncio.get_running_loop(), asyncio.Event()

    def stopping() -> None:
        stop.set()
        # An orderly stop closes connections and retires this worker; if something hangs on the way
        # (a Redis that accepts and never answers), the process still ends, with status 0.
        watchdog = threading.Timer(SHUTDOWN_GRACE, _exit_now)
        watchdog.daemon = True
        watchdog.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    attempt = 0
    while True:  # the service outlives Redis outages: one line per attempt, backing off, then on its own again
        try:
            return await _run_once(args, settings, redact, stop)
        except StoreError as exc:
            if stop.is_set():  # Redis went away as we were stopping: that is not a start-up failure
                log.info("paperbot stopped")
                return 0
            delay = round(backoff(attempt, START_RETRY_FIRST, START_RETRY_LAST), 1)
            attempt += 1
            log.error("cannot start: Redis unreachable; retrying", extra={"kv": {"problem": str(exc), "retry_in_s": delay}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                log.info("paperbot stopped")
                return 0


def _exit_now() -> None:
    log.error("shutdown took longer than %.0f s; exiting now (nothing unacknowledged is lost)", SHUTDOWN_GRACE)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


async def _run_once(args: argparse.Namespace, settings: Settings, redact: logs.Redact, stop: asyncio.Event | None = None) -> int:
    if args.command == "doctor":
        checks = await diagnose(settings, args.post)
        print(redact(doctor.checklist(checks)))
        return EXIT_FAILURE if doctor.failed(checks) else 0
    if args.command == "discord":
        guild = args.guild or settings.discord.guild_id
        count = await sync_discord(settings, guild, args.clear)
        if guild is None:
            print(f"paperbot: {count} Discord command(s) registered for every server; they can take up to an hour to appear")
        else:
            print(f"paperbot: {count} Discord command(s) now registered for server {guild}")
        return 0
    async with open_app(settings, role=getattr(args, "role", "all"), json_lines=getattr(args, "json", False)) as app:
        if args.command == "run":
            await (run_once(app) if args.once else serve(app, stop))
        elif args.command == "deliveries":
            print(redact(await operations.deliveries(app.ledger, app.coordination, args.retry)))
        elif args.command == "status":
            print(redact(await operations.status(app.ledger, app.coordination)))
        elif args.command == "backfill":
            await _backfill(app, args.days)
        else:
            return await converse(app, args)
    return 0


async def _backfill(app: App, days: int) -> None:
    if not 1 <= days <= 60:
        raise ConfigError([f"--days: must be between 1 and 60, got {days}"])
    from rich.progress import Progress  # only this command draws a progress bar

    with Progress(console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("backfill", total=None)

        def progress(label: str, done: int, total: int) -> None:
            bar.update(task, description=label, completed=done, total=total)

        report = await operations.backfill(app, days, progress)
    print(
        f"paperbot: backfill of {days} days: {report.fetched} papers fetched, {report.new} new, {report.queued} deliveries queued"
    )


async def converse(app: App, args: argparse.Namespace) -> int:
    """``ask``: one command (exit status 1 when it was refused: a mistake, or the store away); ``shell``: a
    prompt, until ``exit``, ``quit`` or end of input."""
    console = app.adapters.get("console")
    if not isinstance(console, ReplyViewer):
        raise ConfigError(["the console adapter cannot show replies"])
    user, where = UserRef("console", args.user), Destination("console", args.channel)
    if args.command == "ask":
        reply = await app.commands.handle(args.text, user, where)
        await console.show_reply(reply)
        return EXIT_FAILURE if reply.refused else 0
    print("paperbot shell: type /papers help, or exit", file=sys.stderr)
    while True:
        try:
            line = await asyncio.to_thread(input, "papers> ")
        except EOFError:
            return 0
        if line.strip() in ("exit", "quit"):
            return 0
        if line.strip():
            await console.show_reply(await app.commands.handle(line, user, where))
