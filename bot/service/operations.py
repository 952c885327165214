"""Operator commands: what is queued or failed, how the sources are doing, and filling in missed days."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from bot.flow.poller import PollReport
from bot.model import Destination
from bot.ports import Coordination, DaySource, Ledger
from bot.service.runner import App


async def deliveries(outbox: Ledger, coordination: Coordination, retry: bool) -> str:
    """``paperbot deliveries``: queued deliveries per destination, dead letters, paused destinations.
    With ``retry``, dead letters are queued again and every pause is lifted first."""
    lines = []
    if retry:
        requeued = await outbox.requeue_dead()
        resumed = [d for d in await coordination.paused_destinations() if await coordination.unpause(Destination.parse(d))]
        lines.append(f"requeued {requeued} dead letter(s); resumed {len(resumed)} paused destination(s)")
    queued = await outbox.queued()
    counts = Counter(item["dest"] for item in queued)
    lines.append(f"queued: {len(queued)}" + "".join(f"\n  {dest}: {n}" for dest, n in sorted(counts.items())))
    dead = await outbox.dead_letters()
    lines.append(f"dead letters: {len(dead)}" + "".join(f"\n  {d['at']} {d['dest']} {d['paper']}: {d['reason']}" for d in dead))
    paused = await coordination.paused_destinations()
    lines.append(f"paused: {len(paused)}" + "".join(f"\n  {dest}: {why}" for dest, why in sorted(paused.items())))
    return "\n".join(lines)


async def status(outbox: Ledger, coordination: Coordination) -> str:
    """``paperbot status``: each source's last success and failure, the queue, and each destination's last post."""
    lines = ["sources:"]
    for source, health in sorted((await coordination.health()).items()):
        ok = f"last success {health['ok_at']} ({health.get('count', 0)} papers)" if health.get("ok_at") else "never succeeded"
        failed = f"; last failure {health['failed_at']}: {health['error']}" if health.get("failed_at") else ""
        lines.append(f"  {source}: {ok}{failed}")
    if len(lines) == 1:
        lines.append("  (no poll yet)")
    queued, dead, paused = await outbox.queued(), await outbox.dead_letters(), await coordination.paused_destinations()
    lines.append(f"queue: {len(queued)} queued, {len(dead)} dead letters, {len(paused)} paused destinations")
    lines.append("destinations (last post):")
    posts = await outbox.last_posts()
    lines += [f"  {dest}: {at}" for dest, at in sorted(posts.items())] or ["  (nothing posted yet)"]
    return "\n".join(lines)


async def backfill(app: App, days: int, progress: Callable[[str, int, int], None], today: date | None = None) -> PollReport:
    """Fetch the last ``days`` days day by day (each source that can), queue what is unseen, deliver.
    ``progress(label, done, total)`` is called as each day completes."""
    today = today or datetime.now(UTC).date()
    report = PollReport()
    by_day = [s for s in app.poller.sources if isinstance(s, DaySource)]
    whole = [s for s in app.poller.sources if not isinstance(s, DaySource)]
    total = (days + 1) * len(by_day) + len(whole)
    done = 0
    for source in by_day:
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            await app.poller.ingest(await source.fetch_day(day), report)
            done += 1
            progress(f"{source.name} {day.isoformat()}", done, total)
    for other in whole:
        await app.poller.ingest(await other.fetch(catch_up=days), report)
        done += 1
        progress(other.name, done, total)
    await app.deliverer.deliver()
    return report
