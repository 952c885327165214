"""The weekly recap ("top of the week"): when a channel's recap falls due, in the channel's time zone.

A channel asks for it with ``top_digest = "mon 09:00"`` and ``timezone = "Europe/Berlin"``. The
poller queues a recap for the latest moment due, once (a guard in the store names that moment), so a
recap that fell due while paperbot was down goes out when it is back, and never twice.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
TITLE = "Top papers of the week"
WHY = "top of the week"


def parse_when(text: str) -> tuple[int, time]:
    """``"mon 09:00"`` → (0, 09:00): a weekday (its name or its first three letters or more, any case)
    and a time of day (24-hour)."""
    day, _, clock = text.strip().lower().partition(" ")
    weekday = next((n for n, name in enumerate(DAYS) if len(day) >= 3 and name.startswith(day)), None)
    try:
        hour, minute = (int(part) for part in clock.strip().split(":"))
        if weekday is None:
            raise ValueError
        return weekday, time(hour, minute)
    except ValueError:
        raise ValueError(f"expected a weekday and a time like 'mon 09:00', got {text!r}") from None


def last_due(when: str, zone: str, now: datetime) -> datetime:
    """The latest moment at or before ``now`` (aware) when the recap ``when`` fell due in ``zone``."""
    weekday, at = parse_when(when)
    local = now.astimezone(ZoneInfo(zone))
    day = local.date() - timedelta(days=(local.weekday() - weekday) % 7)
    due = datetime.combine(day, at, tzinfo=ZoneInfo(zone))
    if due > local:
        due = datetime.combine(day - timedelta(days=7), at, tzinfo=ZoneInfo(zone))
    return due
