"""The ``paperbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from bot import __version__, logs
from bot.app import open_app, run_once, serve
from bot.errors import ConfigError, PaperbotError
from bot.ports import Adapter
from bot.settings import Settings, load_settings

AdapterFactory = Callable[[argparse.Namespace, Settings], Mapping[str, Adapter]]

EXIT_FAILURE, EXIT_CONFIG = 1, 2


def parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the README's reference and tests)."""
    main = argparse.ArgumentParser(prog="paperbot", description="New research papers in your team's channels.")
    main.add_argument("--version", action="version", version=f"paperbot {__version__}")
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="poll the sources and deliver new papers")
    run.add_argument("--once", action="store_true", help="run one poll-and-deliver cycle, then exit")
    run.add_argument("--json", action="store_true", help="print one JSON object per delivered paper per line")
    run.add_argument("-v", "--verbose", action="count", default=0, help="debug logs (-vv: also HTTP requests)")
    run.add_argument("-q", "--quiet", action="store_true", help="errors only")
    return main


def main(argv: Sequence[str] | None, make_adapters: AdapterFactory) -> int:
    """Run the command line; ``make_adapters`` builds the platform adapters. Returns the exit status."""
    args = parser().parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"paperbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(-1 if args.quiet else args.verbose, settings.secrets())
    try:
        return asyncio.run(_run(args, settings, make_adapters))
    except ConfigError as exc:
        print(f"paperbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PaperbotError as exc:
        print(f"paperbot: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, settings: Settings, make_adapters: AdapterFactory) -> int:
    async with open_app(settings, make_adapters(args, settings)) as app:
        if args.once:
            await run_once(app)
        else:
            await serve(app, settings)
    return 0
