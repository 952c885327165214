"""How long the store remembers, and the compact forms it keeps things in.

Records that only matter for a while (seen ids, what was posted where) live in weekly buckets: one
key per week, written to the current week, read across the weeks still kept, and dropped whole when
they fall out of the window. A bucket costs one key and one expiry for a week of records, instead of
one key (or none, and unbounded growth) per record.

Paper documents are stored zlib-compressed: a cached paper is ~2.2 KB of JSON and ~0.9 KB
compressed, and the paper cache is most of the store's memory.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

WEEK = 7 * 86400

# Seen ids must outlive every window a source can be asked for again: a 30-day lookback, a 14-day
# catch-up after downtime, a 60-day `paperbot backfill`. A paper first seen longer ago than this and
# offered again would be news again.
SEEN_DAYS = 120


def week(now: float) -> int:
    """The bucket number of the moment ``now`` (seconds since the epoch)."""
    return int(now // WEEK)


def weeks_for(days: float) -> int:
    """How many weekly buckets, the current one included, cover at least ``days`` days."""
    return math.ceil(days * 86400 / WEEK) + 1


def bucket_ttl(weeks: int) -> int:
    """Seconds a bucket lives after its last write: until it is past the kept window, with a week to spare."""
    return (weeks + 1) * WEEK


def pack(doc: Any) -> bytes:
    """A JSON document, compressed."""
    return zlib.compress(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(), 6)


def unpack(raw: bytes | str) -> Any:
    """A document written by ``pack`` (or, from older stores, plain JSON)."""
    if isinstance(raw, str):
        return json.loads(raw)
    return json.loads(raw if raw[:1] == b"{" else zlib.decompress(raw))
