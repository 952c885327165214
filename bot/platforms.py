"""The chat platforms paperbot speaks, one row each: adding a platform is its adapter folder plus a row here.

A row says what the core must know of a platform without importing its SDK: the name used in
``[[channels]]`` and destination keys, its settings section and secrets (read from the environment
only), the token a channel on it needs and where to find it, the reaction that saves a paper, how its
people type commands (free ``text`` after ``/papers``, or typed ``options`` as Discord's slash commands
have), and the loggers whose connection lines show at the default level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Platform:
    """What the core knows of one chat platform."""

    name: str
    section: str = ""  # its settings section ([slack]); empty for none
    secrets: Mapping[str, str] = field(default_factory=dict)  # settings path → environment variable
    token: str = ""  # the environment variable a channel on this platform needs
    token_hint: str = ""  # where a person finds that token
    save_emoji: str = "bookmark"  # the reaction that saves a paper, unless [chat] save_emoji says otherwise
    grammar: str = "text"  # "text": /papers subscribe <query>; "options": /papers subscribe query:<query>
    loggers: tuple[str, ...] = ()  # connect/disconnect lines shown at the default level
    libraries: tuple[str, ...] = ()  # the SDK's loggers: quiet (one line, no traceback) below -vv
    numeric_ids: bool = False  # channel ids are numbers (a name in their place is a mistake to report)


PLATFORMS: tuple[Platform, ...] = (
    Platform("console"),
    Platform(
        "slack",
        section="slack",
        secrets={
            "slack.bot_token": "SLACK_BOT_TOKEN",
            "slack.app_token": "SLACK_APP_TOKEN",
            "slack.signing_secret": "SLACK_SIGNING_SECRET",
            "slack.client_secret": "SLACK_CLIENT_SECRET",
            "slack.client_secret_previous": "SLACK_CLIENT_SECRET_PREVIOUS",
        },
        token="SLACK_BOT_TOKEN",
        token_hint="OAuth & Permissions → Bot User OAuth Token, xoxb-…",
        save_emoji="bookmark",
        grammar="text",
        loggers=("adapters.slack.inbound",),
        # The Slack SDKs log request bodies at debug level, and those carry response_url bearer URLs.
        libraries=("slack_sdk", "slack_bolt", "adapters.slack.bolt"),
    ),
    Platform(
        "discord",
        section="discord",
        secrets={"discord.token": "DISCORD_TOKEN"},
        token="DISCORD_TOKEN",
        token_hint="Developer Portal → your application → Bot → Reset Token",
        save_emoji="🔖",
        grammar="options",
        loggers=("adapters.discord.inbound",),
        libraries=("discord",),
        numeric_ids=True,
    ),
)

NAMES: tuple[str, ...] = tuple(p.name for p in PLATFORMS)
SAVE_EMOJI: dict[str, str] = {p.name: p.save_emoji for p in PLATFORMS}  # the default save reaction, per platform
_BY_NAME = {p.name: p for p in PLATFORMS}


def platform(name: str) -> Platform:
    """The row of ``name``; an unknown name gets the plain defaults (text commands, no secrets)."""
    return _BY_NAME.get(name) or Platform(name)
