"""Settings: ``config/paperbot.toml`` for defaults, the environment for overrides and secrets.

``load_settings(environ)`` reads everything once, reports every problem in one ``ConfigError``
and is the only reader of the environment; nothing else in paperbot looks at ``os.environ``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import CommandError, ConfigError
from bot.model import PLATFORMS, Channel, Destination
from bot.query import parse_query

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "paperbot.toml"
SECRET_ENV = ("HF_TOKEN", "REDIS_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "DISCORD_TOKEN")
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey")
MODES = ("each", "digest")
DEFAULT_SAVE_EMOJI = {"slack": "bookmark", "discord": "🔖", "console": "bookmark"}


class Secret:
    """A value that must never be printed; ``str``/``repr`` show stars, ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value; call only where it is handed to a client."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything paperbot needs to run, validated. Secrets are ``Secret`` or None."""

    hf_enabled: bool
    hf_endpoint: str
    hf_lookback_days: int
    hf_page_size: int
    arxiv_categories: tuple[str, ...]
    arxiv_api_url: str
    arxiv_max_results: int
    arxiv_min_interval: float
    poll_interval_minutes: float
    poll_jitter_seconds: float
    http_timeout: float
    http_retries: int
    http_backoff: float
    http_backoff_max: float
    tldr_length: int
    key_prefix: str
    data_dir: str
    paper_ttl_days: int
    claim_idle_seconds: float
    deliver_interval_seconds: float
    slack_api_url: str
    page_size: int
    save_emoji: dict[str, str]
    channels: tuple[Channel, ...]
    slack_command: str = "/papers"
    slack_port: int = 3000
    hf_token: Secret | None = None
    redis_url: Secret | None = None
    slack_bot_token: Secret | None = None
    slack_app_token: Secret | None = None
    slack_signing_secret: Secret | None = None
    discord_token: Secret | None = None
    discord_guild_id: int | None = None
    config_path: str = ""

    def secrets(self) -> list[str]:
        """Every secret value in use, so logging can scrub them."""
        values = (
            self.hf_token,
            self.redis_url,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.discord_token,
        )
        return [s.reveal() for s in values if s]


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _url(raw: Any) -> str:
    parts = urlsplit(str(raw))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return str(raw)


def _words(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of strings, got {raw!r}")
    return tuple(i.strip() for i in items if i.strip())


def _number(kind: type, low: float, high: float) -> Callable[[Any], Any]:
    def parse(raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected {'a whole number' if kind is int else 'a number'}, got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {raw!r}")
        return value

    return parse


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return raw


def _command(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.startswith("/") or not raw[1:].replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"expected a slash command like /papers, got {raw!r}")
    return raw


def _emoji(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip(":") for v in raw.values()):
        raise ValueError(f'expected a table like {{ slack = "bookmark", discord = "🔖" }}, got {raw!r}')
    unknown = set(raw) - set(PLATFORMS)
    if unknown:
        raise ValueError(f"unknown platform {sorted(unknown)[0]!r}")
    return DEFAULT_SAVE_EMOJI | {k: v.strip(":") for k, v in raw.items()}


# name in Settings, path in the TOML file, environment variable, parser, default
_FIELDS: list[tuple[str, str, str | None, Callable[[Any], Any], Any]] = [
    ("hf_enabled", "sources.huggingface.enabled", "PAPERBOT_HF_ENABLED", _bool, True),
    ("hf_endpoint", "sources.huggingface.endpoint", "HF_ENDPOINT", _url, "https://huggingface.co"),
    ("hf_lookback_days", "sources.huggingface.lookback_days", "PAPERBOT_LOOKBACK_DAYS", _number(int, 0, 30), 2),
    ("hf_page_size", "sources.huggingface.page_size", None, _number(int, 1, 100), 100),
    ("arxiv_categories", "sources.arxiv.categories", "PAPERBOT_ARXIV_CATEGORIES", _words, ()),
    ("arxiv_api_url", "sources.arxiv.api_url", "ARXIV_API_URL", _url, "https://export.arxiv.org/api/query"),
    ("arxiv_max_results", "sources.arxiv.max_results", None, _number(int, 1, 2000), 200),
    ("arxiv_min_interval", "sources.arxiv.min_interval", "PAPERBOT_ARXIV_MIN_INTERVAL", _number(float, 0, 60), 3.0),
    ("poll_interval_minutes", "schedule.poll_interval_minutes", "PAPERBOT_POLL_INTERVAL", _number(float, 1, 1440), 30.0),
    ("poll_jitter_seconds", "schedule.jitter_seconds", None, _number(float, 0, 3600), 120.0),
    ("http_timeout", "http.timeout", "PAPERBOT_HTTP_TIMEOUT", _number(float, 0.1, 300), 20.0),
    ("http_retries", "http.retries", "PAPERBOT_HTTP_RETRIES", _number(int, 0, 10), 4),
    ("http_backoff", "http.backoff", "PAPERBOT_HTTP_BACKOFF", _number(float, 0, 60), 1.0),
    ("http_backoff_max", "http.backoff_max", None, _number(float, 0, 3600), 60.0),
    ("tldr_length", "summary.tldr_length", "PAPERBOT_TLDR_LENGTH", _number(int, 40, 2000), 280),
    ("key_prefix", "store.key_prefix", "PAPERBOT_KEY_PREFIX", _text, "paperbot:"),
    ("data_dir", "store.data_dir", "PAPERBOT_DATA_DIR", _text, ""),
    ("paper_ttl_days", "store.paper_ttl_days", None, _number(int, 1, 3650), 30),
    ("claim_idle_seconds", "delivery.claim_idle_seconds", None, _number(float, 1, 86400), 300.0),
    ("deliver_interval_seconds", "delivery.interval_seconds", None, _number(float, 1, 3600), 60.0),
    ("slack_api_url", "slack.api_url", "SLACK_API_URL", _url, "https://slack.com/api/"),
    ("slack_command", "slack.command", None, _command, "/papers"),
    ("slack_port", "slack.port", "PORT", _number(int, 1, 65535), 3000),
    ("page_size", "chat.page_size", None, _number(int, 1, 20), 5),
    ("save_emoji", "chat.save_emoji", None, _emoji, DEFAULT_SAVE_EMOJI),
]
_KNOWN_TABLES = {
    "sources",
    "sources.huggingface",
    "sources.arxiv",
    "schedule",
    "http",
    "summary",
    "store",
    "delivery",
    "slack",
    "chat",
}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from the TOML file named by ``PAPERBOT_CONFIG`` (or the default) and ``environ``."""
    path = Path(environ["PAPERBOT_CONFIG"]) if environ.get("PAPERBOT_CONFIG") else DEFAULT_CONFIG
    problems: list[str] = []
    document: dict[str, Any] = {}
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: not valid TOML ({exc})")
    elif environ.get("PAPERBOT_CONFIG"):
        problems.append(f"PAPERBOT_CONFIG points to {path}, which does not exist")
    return settings_from(document, environ, problems, config_path=str(path) if path.exists() else "")


def settings_from(
    document: Mapping[str, Any], environ: Mapping[str, str], problems: list[str] | None = None, config_path: str = ""
) -> Settings:
    """Validate a parsed TOML document plus environment overrides; raise one ConfigError listing every problem."""
    problems = list(problems or [])
    flat = _flatten(document, problems)
    values: dict[str, Any] = {}
    for name, path, env, parse, default in _FIELDS:
        raw, where = flat.pop(path, default), path
        if env and environ.get(env, "") != "":
            raw, where = environ[env], env
        try:
            values[name] = parse(raw) if raw is not default else default
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    channels = _channels(flat.pop("channels", None), problems)
    _check_platforms(channels, environ, problems)
    for key in flat:
        problems.append(f"{key}: unknown setting (check the spelling against config/paperbot.toml)")
    if values.get("key_prefix") == "":
        problems.append("store.key_prefix: must not be empty (keys of other applications could collide)")
    guild = None
    if environ.get("DISCORD_GUILD_ID"):
        try:
            guild = _number(int, 1, 2**64)(environ["DISCORD_GUILD_ID"])
        except ValueError as exc:
            problems.append(f"DISCORD_GUILD_ID: {exc} (Developer Mode → right-click the server → Copy Server ID)")
    if problems:
        raise ConfigError(problems)
    secrets = {name: Secret(environ[name]) if environ.get(name) else None for name in SECRET_ENV}
    return Settings(
        **values,
        channels=channels,
        hf_token=secrets["HF_TOKEN"],
        redis_url=secrets["REDIS_URL"],
        slack_bot_token=secrets["SLACK_BOT_TOKEN"],
        slack_app_token=secrets["SLACK_APP_TOKEN"],
        slack_signing_secret=secrets["SLACK_SIGNING_SECRET"],
        discord_token=secrets["DISCORD_TOKEN"],
        discord_guild_id=guild,
        config_path=config_path,
    )


def _check_platforms(channels: tuple[Channel, ...], environ: Mapping[str, str], problems: list[str]) -> None:
    """Each platform in use has the secrets it needs, with a hint where to get them."""
    if any(c.destination.platform == "slack" for c in channels) and not environ.get("SLACK_BOT_TOKEN"):
        problems.append("SLACK_BOT_TOKEN: required for slack channels (OAuth & Permissions → Bot User OAuth Token, xoxb-…)")
    if environ.get("SLACK_BOT_TOKEN") and not (environ.get("SLACK_APP_TOKEN") or environ.get("SLACK_SIGNING_SECRET")):
        problems.append(
            "SLACK_APP_TOKEN or SLACK_SIGNING_SECRET: Slack needs one (Socket Mode: Basic Information → App-Level Tokens, "
            "xapp-… with connections:write; HTTP mode: Basic Information → Signing Secret)"
        )
    if any(c.destination.platform == "discord" for c in channels) and not environ.get("DISCORD_TOKEN"):
        problems.append("DISCORD_TOKEN: required for discord channels (Developer Portal → your application → Bot → Reset Token)")
    bad_ids = [
        c.destination.channel for c in channels if c.destination.platform == "discord" and not c.destination.channel.isdigit()
    ]
    problems.extend(f"channels: discord channel id {i!r} must be a number (Copy Channel ID)" for i in bad_ids)
    if environ.get("SLACK_CLIENT_ID") and environ.get("SLACK_CLIENT_SECRET"):
        problems.append(
            "SLACK_CLIENT_ID/SLACK_CLIENT_SECRET: unset them; they switch slack-bolt to its multi-workspace OAuth flow, "
            "and paperbot is installed in one workspace with SLACK_BOT_TOKEN"
        )
    for name, prefix in (("SLACK_BOT_TOKEN", "xoxb-"), ("SLACK_APP_TOKEN", "xapp-")):
        if environ.get(name) and not environ[name].startswith(prefix):
            problems.append(f"{name}: expected a token starting with {prefix!r}")


def _flatten(document: Mapping[str, Any], problems: list[str], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if any(word in key.lower() for word in _SECRET_WORDS):
            problems.append(f"{path}: secrets belong in the environment, not in the configuration file")
        elif isinstance(value, dict) and path in _KNOWN_TABLES:
            flat.update(_flatten(value, problems, f"{path}."))
        else:
            flat[path] = value
    return flat


def _channels(raw: Any, problems: list[str]) -> tuple[Channel, ...]:
    if raw is None:
        return (Channel(Destination("console", "terminal")),)
    if not isinstance(raw, list):
        problems.append("channels: expected a list of [[channels]] tables")
        return ()
    channels = [c for i, item in enumerate(raw, start=1) if (c := _channel(item, f"channels[{i}]", problems))]
    keys = [c.destination.key for c in channels]
    problems.extend(f"channels: {key} is listed twice" for key in sorted({k for k in keys if keys.count(k) > 1}))
    return tuple(channels)


_CHANNEL_KEYS = {"platform", "id", "topics", "mode", "catch_all", "daily_cap", "min_upvotes", "digest_size"}


def _channel(item: Any, where: str, problems: list[str]) -> Channel | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a table with platform and id")
        return None
    problems.extend(f"{where}.{key}: unknown setting" for key in sorted(set(item) - _CHANNEL_KEYS))
    platform, channel_id, mode = item.get("platform"), item.get("id"), item.get("mode", "each")
    if platform not in PLATFORMS:
        problems.append(f"{where}.platform: must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    if not isinstance(channel_id, str) or not channel_id.strip():
        problems.append(f"{where}.id: a non-empty channel id is required")
    if mode not in MODES:
        problems.append(f"{where}.mode: must be one of {', '.join(MODES)}, got {mode!r}")
    numbers = {}
    for key, low, high, default in (("daily_cap", 0, 10_000, 0), ("min_upvotes", 0, 100_000, 0), ("digest_size", 1, 10, 5)):
        try:
            numbers[key] = _number(int, low, high)(item.get(key, default))
        except ValueError as exc:
            problems.append(f"{where}.{key}: {exc}")
    try:
        catch_all = _bool(item.get("catch_all", True))
    except ValueError as exc:
        problems.append(f"{where}.catch_all: {exc}")
        catch_all = True
    topics = _topics(item.get("topics", []), f"{where}.topics", problems)
    if not (isinstance(platform, str) and isinstance(channel_id, str)) or len(numbers) < 3:
        return None
    return Channel(Destination(platform, channel_id.strip()), topics, mode, catch_all, **numbers)


def _topics(raw: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """Configured topics, each checked by the query parser and stored in its canonical spelling."""
    try:
        texts = _words(raw) if not isinstance(raw, str) else (raw,)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return ()
    topics = []
    for text in texts:
        try:
            topics.append(parse_query(text).text)
        except CommandError as exc:
            problems.append(f"{where}: {exc}")
    return tuple(topics)
