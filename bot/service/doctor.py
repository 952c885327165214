"""``paperbot doctor``: the checks a person runs against their real workspace or bot before trusting it.

The store (reachable, a version paperbot's commands need, what survives a restart, an eviction policy
that never drops the seen-set), each source answering, and each chat platform through its adapters and
listeners (``Diagnosable``: tokens, granted scopes, channels reachable, commands registered); with
``--post`` one test card posted and taken back. Each check is a line of a checklist with a fix for
anything short of ok; the command exits 1 when anything failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from bot.errors import PaperbotError
from bot.model import Card, Check, Destination
from bot.ports import Coordination, Diagnosable, Source, TrialPoster

OLDEST_REDIS = (6, 2)  # GETDEL, XAUTOCLAIM and SET … GET arrived in 6.2
SOURCE_WAIT = 60.0  # seconds a source may take to answer the doctor
MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}
SOURCE_FIX = "check the network, and its URL setting (HF_ENDPOINT, ARXIV_API_URL)"


async def store_checks(coordination: Coordination) -> list[Check]:
    """Redis: its version, persistence and eviction policy."""
    try:
        facts = await coordination.server()
    except PaperbotError as exc:
        return [Check("Redis", "fail", str(exc), "start Redis, or set REDIS_URL to one that answers")]
    checks = [Check("Redis", "ok", f"version {facts['version']}, {facts['mode']}, {facts['used_memory']} in use")]
    version = tuple(int(n) for n in facts["version"].split(".")[:2] if n.isdigit())
    if len(version) == 2 and version < OLDEST_REDIS:
        checks.append(Check("Redis version", "fail", f"{facts['version']} is too old", "use Redis 6.2 or newer"))
    if facts["memory_policy"] not in ("noeviction", "?"):
        checks.append(
            Check(
                "Redis eviction",
                "fail",
                f"maxmemory-policy is {facts['memory_policy']}: Redis may drop the seen-set and saved papers when full",
                "set maxmemory-policy noeviction (paperbot keeps its own keys bounded)",
            )
        )
    persistence = facts["persistence"]
    if persistence in ("none", "unknown"):
        detail = "nothing is written to disk" if persistence == "none" else "the server would not say (CONFIG refused)"
        fix = "turn on AOF (appendonly yes) or RDB snapshots, so a restart keeps saved papers and the seen-set"
        checks.append(Check("Redis persistence", "warn", detail, fix))
    else:
        checks.append(Check("Redis persistence", "ok", persistence))
    return checks


async def source_checks(sources: Sequence[Source], wait: float = SOURCE_WAIT) -> list[Check]:
    """Each source asked for its current papers, at once, each within ``wait`` seconds."""

    async def one(source: Source) -> Check:
        try:
            async with asyncio.timeout(wait):
                papers = await source.fetch()
        except TimeoutError:
            return Check(f"source {source.name}", "fail", f"no answer within {wait:.0f} s", SOURCE_FIX)
        except PaperbotError as exc:
            return Check(f"source {source.name}", "fail", str(exc), SOURCE_FIX)
        return Check(f"source {source.name}", "ok", f"{len(papers)} paper{'' if len(papers) == 1 else 's'} now")

    return list(await asyncio.gather(*(one(source) for source in sources)))


async def platform_checks(parts: Iterable[object], destinations: Sequence[Destination]) -> list[Check]:
    """What each platform's adapters and listeners say of themselves, for the destinations on them."""
    checks: list[Check] = []
    for part in parts:
        if isinstance(part, Diagnosable):
            checks += await part.diagnose(destinations)
    return checks


async def trial_post(adapter: object, destination: Destination, card: Card) -> Check:
    """``--post``: one card posted to ``destination`` and deleted."""
    if not isinstance(adapter, TrialPoster):
        return Check(f"post to {destination.key}", "fail", f"{destination.platform} cannot post a test card", "")
    return await adapter.trial(destination, card)


def checklist(checks: Sequence[Check]) -> str:
    """The checklist as a person reads it: a mark, what, what was found, and the fix where one is due."""
    lines = []
    for check in checks:
        lines.append(f"{MARKS.get(check.level, '?')} {check.what}: {check.detail}")
        if check.level != "ok" and check.fix:
            lines.append(f"    fix: {check.fix}")
    failed = sum(c.level == "fail" for c in checks)
    warned = sum(c.level == "warn" for c in checks)
    summary = "all good" if not failed and not warned else f"{failed} failed, {warned} to look at"
    return "\n".join([*lines, "", f"paperbot doctor: {len(checks)} checks, {summary}"])


def failed(checks: Sequence[Check]) -> bool:
    """Whether anything failed (the command's exit status)."""
    return any(check.level == "fail" for check in checks)
