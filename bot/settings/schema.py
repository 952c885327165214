"""Settings: ``config/paperbot.toml`` for defaults, the environment for overrides and secrets.

``load_settings(environ)`` reads everything once, reports every problem in one ``ConfigError``
and is the only reader of the environment; nothing else in paperbot looks at ``os.environ``.
Sections mirror the file: ``sources.huggingface.endpoint`` in the file is
``settings.sources.huggingface.endpoint`` in code. Secrets sit in the section that uses them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError
from bot.model import Channel
from bot.platforms import PLATFORMS as PLATFORM_ROWS
from bot.settings import values as v
from bot.settings.channels import channels_from, check_platforms
from bot.settings.values import DEFAULT_SAVE_EMOJI, Secret

__all__ = ["DEFAULT_CONFIG", "DEFAULT_SAVE_EMOJI", "Secret", "Settings", "load_settings", "settings_from"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "paperbot.toml"
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey")


@dataclass(frozen=True, slots=True)
class HuggingFace:
    """``[sources.huggingface]``: Daily Papers."""

    enabled: bool
    endpoint: str
    lookback_days: int
    page_size: int
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class Arxiv:
    """``[sources.arxiv]``: the arXiv API (off while ``categories`` is empty)."""

    categories: tuple[str, ...]
    api_url: str
    max_results: int
    min_interval: float


@dataclass(frozen=True, slots=True)
class Sources:
    """``[sources]``."""

    huggingface: HuggingFace
    arxiv: Arxiv


@dataclass(frozen=True, slots=True)
class Schedule:
    """``[schedule]``: how often ``paperbot run`` polls."""

    poll_interval_minutes: float
    jitter_seconds: float
    poll_budget_seconds: float


@dataclass(frozen=True, slots=True)
class Http:
    """``[http]``: the sources' HTTP client."""

    timeout: float
    deadline: float
    retries: int
    backoff: float
    backoff_max: float


@dataclass(frozen=True, slots=True)
class Summary:
    """``[summary]``."""

    tldr_length: int


@dataclass(frozen=True, slots=True)
class Store:
    """``[store]``: Redis (``REDIS_URL``) or the embedded store in ``data_dir``."""

    key_prefix: str
    data_dir: str
    paper_ttl_days: int
    redis_url: Secret | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """``[delivery]``."""

    claim_idle_seconds: float
    interval_seconds: float
    first_run_limit: int
    track_days: float  # posted cards are kept current this long after the paper was first seen; 0: never
    edit_spacing_minutes: float  # one edit per message per this, at most


@dataclass(frozen=True, slots=True)
class Slack:
    """``[slack]`` and the Slack secrets."""

    api_url: str
    command: str
    bot_token: Secret | None = None
    app_token: Secret | None = None
    signing_secret: Secret | None = None
    client_id: str = ""  # with client_secret: multi-workspace mode (OAuth installs)
    client_secret: Secret | None = None
    client_secret_previous: Secret | None = None  # after regenerating the secret: opens what the old one sealed
    redirect_uri: str = ""  # the OAuth redirect URL, when the app has several (else Slack uses its one)

    @property
    def workspaces(self) -> bool:
        """Multi-workspace mode: any workspace installs the app through ``/slack/install``."""
        return bool(self.client_id and self.client_secret)


@dataclass(frozen=True, slots=True)
class Web:
    """``PORT``: the web port (health, metrics, Slack's HTTP mode); 0 = only when Slack's HTTP mode needs
    it, then ``DEFAULT_PORT``."""

    port: int

    DEFAULT_PORT = 3000


@dataclass(frozen=True, slots=True)
class Discord:
    """The Discord API base URL, secrets and development guild."""

    api_url: str = "https://discord.com/api/v10"
    token: Secret | None = None
    guild_id: int | None = None


@dataclass(frozen=True, slots=True)
class Chat:
    """``[chat]``: what every chat platform shares."""

    page_size: int
    save_emoji: dict[str, str]
    managers: str | frozenset[str]
    dm_at: str  # when a reader's daily digest arrives unless they say (their time zone, else UTC)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything paperbot needs to run, validated."""

    sources: Sources
    schedule: Schedule
    http: Http
    summary: Summary
    store: Store
    delivery: Delivery
    slack: Slack
    discord: Discord
    chat: Chat
    web: Web
    channels: tuple[Channel, ...]
    config_path: str = ""

    def secrets(self) -> list[str]:
        """Every secret value in use (and the password inside ``REDIS_URL``), so they can be scrubbed."""
        values = [_at(self, path) for path in _SECRETS]
        found = [s.reveal() for s in values if isinstance(s, Secret)]
        if self.store.redis_url:
            password = urlsplit(self.store.redis_url.reveal()).password
            found += [password] if password else []
        return found


# path in the file (= path in Settings), environment variable, parser, default
_FIELDS: list[tuple[str, str | None, Callable[[Any], Any], Any]] = [
    ("sources.huggingface.enabled", "PAPERBOT_HF_ENABLED", v.boolean, True),
    ("sources.huggingface.endpoint", "HF_ENDPOINT", v.url, "https://huggingface.co"),
    ("sources.huggingface.lookback_days", "PAPERBOT_LOOKBACK_DAYS", v.number(int, 0, 30), 2),
    ("sources.huggingface.page_size", None, v.number(int, 1, 100), 100),
    ("sources.arxiv.categories", "PAPERBOT_ARXIV_CATEGORIES", v.words, ()),
    ("sources.arxiv.api_url", "ARXIV_API_URL", v.url, "https://export.arxiv.org/api/query"),
    ("sources.arxiv.max_results", None, v.number(int, 1, 2000), 200),
    ("sources.arxiv.min_interval", "PAPERBOT_ARXIV_MIN_INTERVAL", v.number(float, 0, 60), 3.0),
    ("schedule.poll_interval_minutes", "PAPERBOT_POLL_INTERVAL", v.number(float, 1, 1440), 30.0),
    ("schedule.jitter_seconds", None, v.number(float, 0, 3600), 120.0),
    ("schedule.poll_budget_seconds", "PAPERBOT_POLL_BUDGET", v.number(float, 1, 3600), 600.0),
    ("http.timeout", "PAPERBOT_HTTP_TIMEOUT", v.number(float, 0.1, 300), 20.0),
    ("http.deadline", "PAPERBOT_HTTP_DEADLINE", v.number(float, 0.1, 3600), 120.0),
    ("http.retries", "PAPERBOT_HTTP_RETRIES", v.number(int, 0, 10), 4),
    ("http.backoff", "PAPERBOT_HTTP_BACKOFF", v.number(float, 0, 60), 1.0),
    ("http.backoff_max", None, v.number(float, 0, 3600), 60.0),
    ("summary.tldr_length", "PAPERBOT_TLDR_LENGTH", v.number(int, 40, 2000), 280),
    ("store.key_prefix", "PAPERBOT_KEY_PREFIX", v.text, "paperbot:"),
    ("store.data_dir", "PAPERBOT_DATA_DIR", v.text, ""),
    ("store.paper_ttl_days", None, v.number(int, 1, 3650), 30),
    ("delivery.claim_idle_seconds", None, v.number(float, 1, 86400), 300.0),
    ("delivery.interval_seconds", None, v.number(float, 1, 3600), 5.0),
    ("delivery.first_run_limit", "PAPERBOT_FIRST_RUN_LIMIT", v.number(int, 0, 10_000), 10),
    ("delivery.track_days", "PAPERBOT_TRACK_DAYS", v.number(float, 0, 365), 7.0),
    ("delivery.edit_spacing_minutes", "PAPERBOT_EDIT_SPACING", v.number(float, 0, 1440), 60.0),
    ("slack.api_url", "SLACK_API_URL", v.url, "https://slack.com/api/"),
    ("slack.command", None, v.command, "/papers"),
    ("slack.client_id", "SLACK_CLIENT_ID", v.text, ""),
    ("slack.redirect_uri", "SLACK_REDIRECT_URI", v.text, ""),
    ("discord.api_url", "DISCORD_API_URL", v.url, "https://discord.com/api/v10"),
    ("web.port", "PORT", v.number(int, 0, 65535), 0),
    ("chat.page_size", None, v.number(int, 1, 20), 5),
    ("chat.save_emoji", None, v.emoji, DEFAULT_SAVE_EMOJI),
    ("chat.managers", None, v.managers, "managers"),
    ("chat.dm_at", None, v.clock, "08:00"),
]
# path in Settings → environment variable; read from the environment only
_SECRETS = {"sources.huggingface.token": "HF_TOKEN", "store.redis_url": "REDIS_URL"}
_SECRETS |= {path: env for row in PLATFORM_ROWS for path, env in row.secrets.items()}
SECRET_ENV = tuple(_SECRETS.values())


def _at(settings: Settings, path: str) -> Any:
    """The value at a dotted settings path (``slack.bot_token``); None where a section has no such field."""
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part, None)
    return value


_TABLES = {path.rpartition(".")[0] for path, *_ in _FIELDS} | {"sources"}


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
    for path, env, parse, default in _FIELDS:
        raw, where = flat.pop(path, default), path
        if env and environ.get(env, "") != "":
            raw, where = environ[env], env
        try:
            values[path] = parse(raw) if raw is not default else default
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    channels = channels_from(flat.pop("channels", None), problems)
    check_platforms(channels, environ, problems)
    problems.extend(f"{key}: unknown setting (check the spelling against config/paperbot.toml)" for key in flat)
    if values.get("store.key_prefix") == "":
        problems.append("store.key_prefix: must not be empty (keys of other applications could collide)")
    values["discord.guild_id"] = None
    if environ.get("DISCORD_GUILD_ID"):
        try:
            values["discord.guild_id"] = v.number(int, 1, 2**64)(environ["DISCORD_GUILD_ID"])
        except ValueError as exc:
            problems.append(f"DISCORD_GUILD_ID: {exc} (Developer Mode → right-click the server → Copy Server ID)")
    if problems:
        raise ConfigError(problems)
    values |= {path: Secret(environ[env]) if environ.get(env) else None for path, env in _SECRETS.items()}

    def section(name: str) -> dict[str, Any]:
        return {path.rpartition(".")[2]: value for path, value in values.items() if path.rpartition(".")[0] == name}

    return Settings(
        sources=Sources(HuggingFace(**section("sources.huggingface")), Arxiv(**section("sources.arxiv"))),
        schedule=Schedule(**section("schedule")),
        http=Http(**section("http")),
        summary=Summary(**section("summary")),
        store=Store(**section("store")),
        delivery=Delivery(**section("delivery")),
        slack=Slack(**section("slack")),
        discord=Discord(**section("discord")),
        chat=Chat(**section("chat")),
        web=Web(**section("web")),
        channels=channels,
        config_path=config_path,
    )


def _flatten(document: Mapping[str, Any], problems: list[str], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if any(word in key.lower() for word in _SECRET_WORDS):
            problems.append(f"{path}: secrets belong in the environment, not in the configuration file")
        elif isinstance(value, dict) and path in _TABLES:
            flat.update(_flatten(value, problems, f"{path}."))
        else:
            flat[path] = value
    return flat
