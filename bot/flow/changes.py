"""Which changes to a paper are news: what makes paperbot bring a card it posted up to date.

Upvotes move every hour and most of it is noise; an edit is made when something a reader would act
on appeared (code, a project page), the paper crossed an upvote milestone, or it became its day's
most upvoted paper.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def new_leaders(before: Iterable[Paper], after: Iterable[Paper]) -> set[str]:
    """Papers that became the most upvoted of their Hugging Face day (``featured_on``) between two
    views of the same papers: news too."""

    def leaders(papers: Iterable[Paper]) -> dict[object, str]:
        best: dict[object, tuple[int, str]] = {}
        for paper in papers:
            if paper.featured_on is not None and paper.upvotes:
                day = paper.featured_on.date()
                best[day] = max(best.get(day, (-1, "")), (paper.upvotes, paper.id))
        return {day: pid for day, (_, pid) in best.items()}

    was = leaders(before)
    return {pid for day, pid in leaders(after).items() if day in was and was[day] != pid}


def rising_why(first_seen: int, now: int) -> str:
    """The why-line of a paper delivered late because its upvotes rose past a channel's threshold."""
    return f"rising: ▲ {now} (was ▲ {first_seen} when first seen)"
