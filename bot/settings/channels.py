"""The ``[[channels]]`` tables: each checked (platform, id, mode, numbers, topics) and the platforms'
secrets required where a channel needs them. Problems are collected, not raised."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import CommandError
from bot.flow.recap import parse_when
from bot.model import Channel, Destination
from bot.platforms import NAMES
from bot.platforms import PLATFORMS as PLATFORM_ROWS
from bot.query.parser import parse_query
from bot.settings.values import boolean, number, words

MODES = ("each", "digest")
_CHANNEL_KEYS = {"platform", "id", "topics", "mode", "catch_all", "daily_cap", "min_upvotes", "digest_size"}
_CHANNEL_KEYS |= {"top_digest", "timezone"}


def check_platforms(channels: tuple[Channel, ...], environ: Mapping[str, str], problems: list[str]) -> None:
    """Each platform in use has the secrets it needs, with a hint where to get them."""
    for row in PLATFORM_ROWS:
        mine = [c for c in channels if c.destination.platform == row.name]
        if mine and row.token and not environ.get(row.token):
            problems.append(f"{row.token}: required for {row.name} channels ({row.token_hint})")
        if row.numeric_ids:
            bad = [c.destination.channel for c in mine if not c.destination.channel.isdigit()]
            problems.extend(f"channels: {row.name} channel id {i!r} must be a number (Copy Channel ID)" for i in bad)
    oauth = [name for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if environ.get(name)]
    if len(oauth) == 1:
        both = "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (Basic Information → App Credentials)"
        problems.append(f"{oauth[0]}: multi-workspace mode needs both {both}")
    if len(oauth) == 2 and not environ.get("SLACK_SIGNING_SECRET"):
        problems.append("SLACK_SIGNING_SECRET: required in multi-workspace mode (installs and events arrive over HTTP)")
    if len(oauth) == 2 and environ.get("SLACK_APP_TOKEN"):
        problems.append("SLACK_APP_TOKEN: unset it in multi-workspace mode, which runs in HTTP mode (Socket Mode off)")
    for name, prefix in (("SLACK_BOT_TOKEN", "xoxb-"), ("SLACK_APP_TOKEN", "xapp-")):
        if environ.get(name) and not environ[name].startswith(prefix):
            problems.append(f"{name}: expected a token starting with {prefix!r}")


def channels_from(raw: Any, problems: list[str]) -> tuple[Channel, ...]:
    """The configured channels; with no ``[[channels]]`` at all, the terminal."""
    if raw is None:
        return (Channel(Destination("console", "terminal")),)
    if not isinstance(raw, list):
        problems.append("channels: expected a list of [[channels]] tables")
        return ()
    channels = [c for i, item in enumerate(raw, start=1) if (c := _channel(item, f"channels[{i}]", problems))]
    keys = [c.destination.key for c in channels]
    problems.extend(f"channels: {key} is listed twice" for key in sorted({k for k in keys if keys.count(k) > 1}))
    return tuple(channels)


def _channel(item: Any, where: str, problems: list[str]) -> Channel | None:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a table with platform and id")
        return None
    problems.extend(f"{where}.{key}: unknown setting" for key in sorted(set(item) - _CHANNEL_KEYS))
    platform, channel_id, mode = item.get("platform"), item.get("id"), item.get("mode", "each")
    if platform not in NAMES:
        problems.append(f"{where}.platform: must be one of {', '.join(NAMES)}, got {platform!r}")
    if not isinstance(channel_id, str) or not channel_id.strip():
        problems.append(f"{where}.id: a non-empty channel id is required")
    if mode not in MODES:
        problems.append(f"{where}.mode: must be one of {', '.join(MODES)}, got {mode!r}")
    numbers = {}
    for key, low, high, default in (("daily_cap", 0, 10_000, 0), ("min_upvotes", 0, 100_000, 0), ("digest_size", 1, 10, 5)):
        try:
            numbers[key] = number(int, low, high)(item.get(key, default))
        except ValueError as exc:
            problems.append(f"{where}.{key}: {exc}")
    try:
        catch_all = boolean(item.get("catch_all", True))
    except ValueError as exc:
        problems.append(f"{where}.catch_all: {exc}")
        catch_all = True
    topics = _topics(item.get("topics", []), f"{where}.topics", problems)
    recap = _recap(item.get("top_digest", ""), item.get("timezone", "UTC"), where, problems)
    if not (isinstance(platform, str) and isinstance(channel_id, str)) or len(numbers) < 3:
        return None
    channel = Channel(Destination(platform, channel_id.strip()), topics, mode, catch_all, **numbers)
    return dataclasses.replace(channel, top_digest=recap[0], timezone=recap[1])


def _recap(when: Any, zone: Any, where: str, problems: list[str]) -> tuple[str, str]:
    """``top_digest`` ("mon 09:00") and ``timezone`` (IANA), checked; ("", "UTC") when absent or wrong."""
    if not isinstance(when, str) or not isinstance(zone, str):
        problems.append(f'{where}.top_digest/timezone: expected text like "mon 09:00" and "Europe/Berlin"')
        return "", "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}.timezone: unknown time zone {zone!r} (an IANA name like 'Europe/Berlin' or 'UTC')")
        zone = "UTC"
    if not when.strip():
        return "", zone
    try:
        parse_when(when)
    except ValueError as exc:
        problems.append(f"{where}.top_digest: {exc}")
        return "", zone
    return " ".join(when.split()).lower(), zone


def _topics(raw: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """Configured topics, each checked by the query parser and stored in its canonical spelling."""
    try:
        texts = words(raw) if not isinstance(raw, str) else (raw,)
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
