"""Parsers for single setting values (each raises ``ValueError`` with a message for the user), and ``Secret``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bot.platforms import NAMES, SAVE_EMOJI

DEFAULT_SAVE_EMOJI = SAVE_EMOJI


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


def boolean(raw: Any) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def url(raw: Any) -> str:
    """An absolute http(s) URL."""
    parts = urlsplit(str(raw))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {raw!r}")
    return str(raw)


def words(raw: Any) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string (as environment variables give them)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of strings, got {raw!r}")
    return tuple(i.strip() for i in items if i.strip())


def number(kind: type[int] | type[float], low: float, high: float) -> Callable[[Any], Any]:
    """A parser for whole numbers (``int``) or numbers (``float``) between ``low`` and ``high``."""

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


def text(raw: Any) -> str:
    """A string."""
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return raw


def clock(raw: Any) -> str:
    """A time of day, ``HH:MM`` (24-hour)."""
    hour, _, minute = str(raw).partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60 and len(minute) == 2):
        raise ValueError(f"expected a time of day like 08:00, got {raw!r}")
    return f"{int(hour):02d}:{minute}"


def command(raw: Any) -> str:
    """A slash command's name, like ``/papers``."""
    if not isinstance(raw, str) or not raw.startswith("/") or not raw[1:].replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"expected a slash command like /papers, got {raw!r}")
    return raw


def managers(raw: Any) -> str | frozenset[str]:
    """Who may change a channel's subscriptions: "anyone", "managers", or a list of user ids."""
    if raw in ("anyone", "managers"):
        return str(raw)
    if isinstance(raw, list) and raw and all(isinstance(i, str) and i.strip() for i in raw):
        return frozenset(i.strip() for i in raw)
    raise ValueError(f'expected "anyone", "managers" or a list of user ids like ["slack:U0123"], got {raw!r}')


def emoji(raw: Any) -> dict[str, str]:
    """The save reaction per platform, merged over the defaults."""
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v.strip(":") for v in raw.values()):
        raise ValueError(f'expected a table like {{ slack = "bookmark", discord = "🔖" }}, got {raw!r}')
    unknown = set(raw) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown platform {sorted(unknown)[0]!r}")
    return DEFAULT_SAVE_EMOJI | {k: v.strip(":") for k, v in raw.items()}
