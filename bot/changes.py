"""Which changes to a paper are news: what makes paperbot bring a card it posted up to date.

Upvotes move every hour and most of it is noise; an edit is made when something a reader would act
on appeared (code, a project page) or the paper crossed an upvote milestone.
"""

from __future__ import annotations

from bot.model import Paper

MILESTONES = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)


def news(before: Paper, after: Paper) -> tuple[str, ...]:
    """The meaningful changes from ``before`` to ``after``, as short phrases ("code", "▲ 100")."""
    found = []
    if after.links.code and not before.links.code:
        found.append("code")
    if after.links.project and not before.links.project:
        found.append("project page")
    crossed = [m for m in MILESTONES if (before.upvotes or 0) < m <= (after.upvotes or 0)]
    if crossed:
        found.append(f"▲ {crossed[-1]}")
    return tuple(found)


def rising_why(first_seen: int, now: int) -> str:
    """The why-line of a paper delivered late because its upvotes rose past a channel's threshold."""
    return f"rising: ▲ {now} (was ▲ {first_seen} when first seen)"
