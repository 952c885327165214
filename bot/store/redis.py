"""RedisStore: the papers paperbot has seen and what it owes each destination, on ``redis.asyncio``.

One role a module: ``outbox`` (the seen-set and the queue), ``posts`` (living posts), ``ledger`` (the
operator's view), ``papers`` (the paper cache), on the ground they share (``records``; the scripts are in
``scripts``, the key helper in ``keys``). Coordination between processes (locks, pauses, pace, counts,
health) is ``bot.store.coordination``.

Keys (``P`` is the prefix)::

    P seen                  SET     the paper ids seen in the last SEEN_DAYS days at least (the seen-set)
    P seen:<n>              STRING  the ids first seen in 28-day period n, one a line: they leave the seen-set
                                    together when the period leaves the window
    P seen:periods          ZSET    the periods that have such a list
    P paper:<id>            STRING  the paper as compressed JSON, expiring after the cache period
    P outbox                STREAM  one entry per (destination, paper) still to post; group "delivery"
    P routed:<n>            HASH    papers first seen in week n, while followed: "<id>|^" → upvotes then,
                                    "<id>|<dest>" → 1 for each destination it was routed to
    P edited:<dest>:<msg>   STRING  an edit of that message was made within the spacing (expires then)
    P edits:later           ZSET    edits waiting for their message's spacing to end → when
    P recapped:<dest>:<t>   STRING  the weekly recap due at t was queued (expires after 8 days)
    P vec:<n>               HASH    paper id → its vector (64 bytes, bot/chat/vectors.py), in 2,039 buckets by a hash of
                                    the id (small hashes: Redis keeps them as compact listpacks, ~80 bytes a
                                    paper instead of ~230 for a key each); dropped with the paper
    P index:snapshot        STRING  the query index's snapshot (bot/query/table.py), expiring with the cache
    P posts:<dest>:<n>      HASH    what was settled there in week n, kept as long as the paper cache:
                                    "p:<paper id>" → message id (or "skipped:<why>"), "m:<message id>" → paper id
                                    (reactions find their paper here)
    P recent                ZSET    paper id → when it was committed (ms), for the query cache; at each commit
                                    the entries (and cached papers) older than the cache period are dropped
    P dead                  STREAM  deliveries given up on (permanent error, or too many attempts), with why; ~10,000 kept
    P lastpost              HASH    destination → when paperbot last posted there
    P attempts              HASH    outbox entry id → real failed attempts to post it
    P posting               HASH    outbox entry id → when posting it began (ms); removed when it is settled
    P alive:<consumer>      STRING  a delivering process's heartbeat (seconds); gone = its entries are free
    P epoch                 STRING  when this store first polled; missing = a first run, or Redis lost its data
"""

from __future__ import annotations

from bot.store.ledger import RedisLedger
from bot.store.outbox import RedisOutbox
from bot.store.papers import RedisPapers
from bot.store.posts import RedisLivingPosts


class RedisStore(RedisOutbox, RedisLivingPosts, RedisLedger, RedisPapers):
    """The ``Outbox``, ``LivingPosts``, ``Ledger`` and ``Papers`` ports on one Redis server, one module each
    over one shared ground (``bot.store.records``); every method is one or two round trips."""
