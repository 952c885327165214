"""Process entry (``paperbot`` and ``python -m bot``): the one place that knows which adapters exist."""

from __future__ import annotations

import argparse
import sys

from bot.cli import main as cli_main
from bot.ports import Adapter
from bot.settings import Settings


def make_adapters(args: argparse.Namespace, settings: Settings) -> dict[str, Adapter]:
    """The adapters this process runs; platform SDKs are imported only when a platform is used."""
    from adapters.console import ConsoleAdapter

    return {"console": ConsoleAdapter(sys.stdout, json_lines=getattr(args, "json", False))}


def main() -> int:
    """Console-script entry point."""
    return cli_main(sys.argv[1:], make_adapters)


if __name__ == "__main__":
    sys.exit(main())
