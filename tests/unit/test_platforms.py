"""The platform table: settings, secrets, save emoji, help and channel checks all read one row per platform."""

from __future__ import annotations

import pytest

import bot.settings.channels as channel_settings
from bot.chat.grammar import OPTIONS_USAGE, USAGE
from bot.errors import ConfigError
from bot.platforms import NAMES, PLATFORMS, Platform, platform
from bot.settings.schema import DEFAULT_SAVE_EMOJI, SECRET_ENV, settings_from


def test_every_rows_secrets_are_read_from_the_environment_and_scrubbed() -> None:
    environ = {env: f"secret-of-{env}" for row in PLATFORMS for env in row.secrets.values()}
    environ |= {"SLACK_BOT_TOKEN": "xoxb-secret-bot", "SLACK_APP_TOKEN": "xapp-secret-app"}
    del environ["SLACK_CLIENT_SECRET"], environ["SLACK_CLIENT_SECRET_PREVIOUS"]  # multi-workspace mode wants more
    for row in PLATFORMS:
        assert set(row.secrets.values()) <= set(SECRET_ENV)
    scrubbed = settings_from({}, environ).secrets()
    assert sorted(scrubbed) == sorted(environ.values())
    assert len(scrubbed) == 4  # the bot, app and signing secrets, Discord's token: each once


def test_defaults_and_help_follow_the_rows() -> None:
    assert {row.name: row.save_emoji for row in PLATFORMS} == DEFAULT_SAVE_EMOJI
    assert platform("discord").grammar == "options"
    assert "query:<query>" in OPTIONS_USAGE
    assert platform("slack").grammar == "text"
    assert "/papers subscribe <query>" in USAGE
    assert platform("teams") == Platform("teams")  # an unknown name: plain text commands, no secrets


def test_a_new_row_is_all_a_platform_needs_for_its_channels_to_be_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    teams = Platform("teams", token="TEAMS_TOKEN", token_hint="Azure portal → Bot → Configuration")
    monkeypatch.setattr(channel_settings, "PLATFORM_ROWS", (*PLATFORMS, teams))
    monkeypatch.setattr(channel_settings, "NAMES", (*NAMES, "teams"))
    document = {"channels": [{"platform": "teams", "id": "19:general", "topics": ["agents"]}]}
    with pytest.raises(ConfigError, match="TEAMS_TOKEN: required for teams channels"):
        settings_from(document, {})
    assert settings_from(document, {"TEAMS_TOKEN": "t0ken"}).channels[0].destination.key == "teams:19:general"
