"""Settings: defaults, file, environment overrides, and every problem reported at once."""

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings.schema import DEFAULT_CONFIG, Secret, load_settings, settings_from


def test_the_shipped_file_is_valid_and_matches_the_code_defaults() -> None:
    from_file = load_settings({})
    assert from_file.config_path == str(DEFAULT_CONFIG)
    no_file = settings_from({}, {})
    for name in ("sources", "schedule", "http", "summary", "store", "delivery", "slack", "discord", "chat", "channels"):
        assert getattr(from_file, name) == getattr(no_file, name), name
    assert [c.destination.key for c in no_file.channels] == ["console:terminal"]


def test_environment_overrides_the_file() -> None:
    s = settings_from(
        {"sources": {"huggingface": {"lookback_days": 5}}},
        {"PAPERBOT_LOOKBACK_DAYS": "1", "HF_ENDPOINT": "http://127.0.0.1:9/", "PAPERBOT_ARXIV_CATEGORIES": "cs.CL, cs.LG"},
    )
    assert s.sources.huggingface.lookback_days == 1
    assert s.sources.huggingface.endpoint == "http://127.0.0.1:9/"
    assert s.sources.arxiv.categories == ("cs.CL", "cs.LG")


def test_every_problem_is_reported_in_one_error() -> None:
    document = {
        "sources": {"huggingface": {"lookbak_days": 2, "enabled": "maybe"}},
        "schedule": {"poll_interval_minutes": 0},
        "slack_token": "xoxb-nope",
        "channels": [{"platform": "teams", "id": ""}, {"platform": "console", "id": "a", "mode": "loud"}],
    }
    with pytest.raises(ConfigError) as caught:
        settings_from(document, {"HF_ENDPOINT": "ftp://x", "PAPERBOT_TLDR_LENGTH": "many"})
    text = str(caught.value)
    for expected in (
        "sources.huggingface.lookbak_days: unknown setting",
        "sources.huggingface.enabled: expected true or false",
        "schedule.poll_interval_minutes: must be between 1 and 1440",
        "slack_token: secrets belong in the environment",
        "channels[1].platform: must be one of console, slack, discord",
        "channels[1].id: a non-empty channel id is required",
        "channels[2].mode: must be one of each, digest",
        "HF_ENDPOINT: expected an http(s) URL",
        "PAPERBOT_TLDR_LENGTH: expected a whole number",
    ):
        assert expected in text
    assert len(caught.value.problems) == 9
    assert "xoxb-nope" not in text


def test_a_missing_config_file_named_in_the_environment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"PAPERBOT_CONFIG": str(tmp_path / "nope.toml")})


def test_broken_toml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[sources\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"PAPERBOT_CONFIG": str(path)})


def test_secrets_come_from_the_environment_and_never_print() -> None:
    s = settings_from({}, {"HF_TOKEN": "hf_supersecretvalue", "REDIS_URL": "redis://:pw@db:6379/0"})
    token = s.sources.huggingface.token
    assert token is not None
    assert token.reveal() == "hf_supersecretvalue"
    assert "supersecret" not in repr(s)
    assert "pw@" not in repr(s)
    assert str(Secret("x")) == "Secret('**********')"
    assert set(s.secrets()) == {"hf_supersecretvalue", "redis://:pw@db:6379/0", "pw"}  # the password alone too


def test_a_weekly_recap_needs_a_weekday_a_time_and_a_real_time_zone() -> None:
    ok = settings_from(
        {"channels": [{"platform": "console", "id": "a", "top_digest": "Monday  09:00", "timezone": "Europe/Berlin"}]}, {}
    )
    assert (ok.channels[0].top_digest, ok.channels[0].timezone) == ("monday 09:00", "Europe/Berlin")
    with pytest.raises(ConfigError) as caught:
        settings_from(
            {
                "channels": [
                    {"platform": "console", "id": "a", "top_digest": "someday 9am"},
                    {"platform": "console", "id": "b", "top_digest": "fri 17:00", "timezone": "Mars/Olympus"},
                ]
            },
            {},
        )
    assert caught.value.problems == [
        "channels[1].top_digest: expected a weekday and a time like 'mon 09:00', got 'someday 9am'",
        "channels[2].timezone: unknown time zone 'Mars/Olympus' (an IANA name like 'Europe/Berlin' or 'UTC')",
    ]
