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

    adapters: dict[str, Adapter] = {"console": ConsoleAdapter(sys.stdout, json_lines=getattr(args, "json", False))}
    if settings.slack_bot_token:
        from adapters.slack.adapter import SlackAdapter

        adapters["slack"] = SlackAdapter(
            settings.slack_bot_token.reveal(),
            api_url=settings.slack_api_url,
            app_token=settings.slack_app_token.reveal() if settings.slack_app_token else None,
            signing_secret=settings.slack_signing_secret.reveal() if settings.slack_signing_secret else None,
            command=settings.slack_command,
            port=settings.slack_port,
        )
    if settings.discord_token:
        from adapters.discord.adapter import DiscordAdapter

        adapters["discord"] = DiscordAdapter(settings.discord_token.reveal(), guild_id=settings.discord_guild_id)
    return adapters


def main() -> int:
    """Console-script entry point."""
    return cli_main(sys.argv[1:], make_adapters)


if __name__ == "__main__":
    sys.exit(main())
