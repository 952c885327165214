"""RedisStore: the papers paperbot has seen and what it owes each destination, on ``redis.asyncio``.

Coordination between processes (locks, pauses, pace, counts, health) is ``bot.store.coordination``.

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

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from bot.errors import StoreError
from bot.model import Backlog, Delivery, Destination, OutboxEntry, Paper, PostRef
from bot.store.retention import SEEN_DAYS, Buckets, pack, unpack

log = logging.getLogger(__name__)

GROUP = "delivery"
VECTOR_BUCKETS = 2039  # a prime: ids spread evenly (the commit script has it too)


def vector_bucket(paper_id: str) -> int:
    """Which ``vec:<n>`` hash holds a paper's vector (the commit script computes the same)."""
    h = 0
    for byte in paper_id.encode():
        h = (h * 31 + byte) % VECTOR_BUCKETS
    return h


# Marks each paper seen and queues its deliveries in one atomic step; a paper already in the seen-set,
# or committed first by some other process (SADD answers 0), is skipped with its deliveries, so nothing
# is queued twice. Each newly seen id is also appended to its period's list; the periods that left the
# window take their ids out of the seen-set with them. Each newly seen paper is also recorded in this
# week's routed bucket (its first-seen upvotes as "<id>|^", each destination it was routed to as
# "<id>|<destination>"), so a paper that rises later reaches only the destinations that did not get it;
# the routed bucket that left the window goes.
# KEYS: outbox, recent, seen, seen:<this period>, seen:periods, then paper:<id>... (ARGV[3] of them),
# then routed:<this week>, routed:<the week that left the window>.
# ARGV: cache ttl, now (ms), papers, this period, the newest period that left the window, paper key
# prefix, seen key prefix, routed bucket ttl (0: papers are not followed), vector key prefix, then per
# paper: id, doc,
# upvotes, n, n × (destination, why, watched: 1 if it has an upvote threshold, so it is recorded).
_COMMIT = """
local VECTOR_BUCKETS = 2039
local ttl, now, papers = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local track = tonumber(ARGV[8])
local first_paper = #KEYS - 2 - papers + 1
local routed = KEYS[#KEYS - 1]
-- The cache forgets in step with its index of recent papers, whatever the server's clock says.
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000, 'LIMIT', 0, 5000)
for _, id in ipairs(old) do
  redis.call('DEL', ARGV[6] .. id)
  local h = 0  -- vector_bucket(id), as in Python
  for c = 1, #id do h = (h * 31 + string.byte(id, c)) % VECTOR_BUCKETS end
  redis.call('HDEL', ARGV[9] .. h, id)
end
if #old > 0 then redis.call('ZREM', KEYS[2], unpack(old)) end
for _, period in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', ARGV[5], 'LIMIT', 0, 4)) do
  local list, ids = ARGV[7] .. period, {}
  for id in string.gmatch(redis.call('GET', list) or '', '[^\\n]+') do
    ids[#ids + 1] = id
    if #ids == 4000 then redis.call('SREM', KEYS[3], unpack(ids)) ids = {} end
  end
  if #ids > 0 then redis.call('SREM', KEYS[3], unpack(ids)) end
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[5], period)
end
local committed = {}
local i = 10
for k = first_paper, first_paper + papers - 1 do
  local id, doc, upvotes, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  i = i + 4
  if redis.call('SADD', KEYS[3], id) == 1 then
    redis.call('APPEND', KEYS[4], id .. '\\n')
    redis.call('SET', KEYS[k], doc, 'EX', ttl)
    redis.call('ZADD', KEYS[2], now, id)
    if track > 0 then redis.call('HSET', routed, id .. '|^', upvotes) end
    for d = 0, n - 1 do
      local dest = ARGV[i + 3 * d]
      redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', id, 'why', ARGV[i + 3 * d + 1])
      if track > 0 and ARGV[i + 3 * d + 2] == '1' then redis.call('HSET', routed, id .. '|' .. dest, 1) end
    end
    committed[#committed + 1] = id
  end
  i = i + 3 * n
end
if #committed > 0 then redis.call('ZADD', KEYS[5], ARGV[4], ARGV[4]) end
if #committed > 0 and track > 0 then
  redis.call('EXPIRE', routed, track)
  redis.call('DEL', KEYS[#KEYS])
end
return committed
"""

# Settles one outbox entry atomically: records it in this week's bucket of its destination (dropping the
# bucket that left the window), acknowledges and deletes it, forgets its attempts, notes the post time.
# KEYS: this week's posts bucket, the fallen bucket, outbox, attempts, lastpost, posting.
# ARGV: bucket ttl, group, entry id, destination, posted at ("" = not posted), then field, value pairs.
_SETTLE = """
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
redis.call('DEL', KEYS[2])
redis.call('XACK', KEYS[3], ARGV[2], ARGV[3])
redis.call('XDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[3])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[4], ARGV[5]) end
return 1
"""

# Queues edits, at most one per message per spacing: a message edited within the spacing gets its edit
# parked in "edits:later" until then. Parked edits whose time came are queued first (the newest ask
# for a message replaces a parked one: it renders the paper as it is by then anyway).
# KEYS: outbox, edits:later. ARGV: now (ms), spacing (ms), edited key prefix, then per edit: dest,
# paper, why, message.
_QUEUE_EDITS = """
local now, spacing, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local queued = 0
local function ask(dest, paper, why, message)
  local guard = prefix .. dest .. ':' .. message
  if redis.call('SET', guard, '1', 'NX', 'PX', spacing) then
    redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', paper, 'why', why, 'edit', message)
    redis.call('ZREM', KEYS[2], cjson.encode({dest, paper, why, message}))
    queued = queued + 1
  else
    redis.call('ZADD', KEYS[2], now + redis.call('PTTL', guard), cjson.encode({dest, paper, why, message}))
  end
end
for _, parked in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', KEYS[2], parked)
  local e = cjson.decode(parked)
  ask(e[1], e[2], e[3], e[4])
end
for i = 4, #ARGV, 4 do ask(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]) end
return queued
"""

# Queues each late delivery whose paper is still followed (a routed bucket kept has its record) and
# was never routed to that destination, and records that it now was.
# KEYS: outbox, then the routed buckets kept. ARGV: per delivery: destination, paper, why.
_QUEUE_LATE = """
local queued = 0
for i = 1, #ARGV, 3 do
  local dest, paper = ARGV[i], ARGV[i + 1]
  for k = 2, #KEYS do
    if redis.call('HEXISTS', KEYS[k], paper .. '|^') == 1 then
      if redis.call('HSETNX', KEYS[k], paper .. '|' .. dest, 1) == 1 then
        redis.call('XADD', KEYS[1], '*', 'dest', dest, 'paper', paper, 'why', ARGV[i + 2])
        queued = queued + 1
      end
      break
    end
  end
end
return queued
"""

# Queues one outbox entry unless its guard exists, and sets the guard: both or neither.
# KEYS: guard, outbox. ARGV: guard ttl (s), then the entry's field, value pairs.
_QUEUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
  return 1
end
return 0
"""

ORPHAN_IDLE_MS = 1000
DEAD_KEPT = 10_000  # dead letters kept (the oldest go first); `paperbot deliveries` lists them
# Key families with a destination in their name (this store's and RedisCoordination's), for ``drop``.
PER_DESTINATION = ("posts", "edited", "recapped", "posted", "paused", "failures")
DROP_BATCH = 1000  # outbox entries read at a time when a workspace's deliveries are dropped
BLOCK_SLICE = 5.0  # seconds one blocking read may wait (the client's socket timeout is 10 s)


Client = redis.Redis | redis.RedisCluster  # a single server (or Sentinel's master), or a Redis Cluster


def cluster_prefix(prefix: str) -> str:
    """The key prefix on a Redis Cluster: with a hash tag, so every key paperbot has lands in one slot and
    any script or transaction may touch any of them together (``paperbot:`` → ``{paperbot}:``)."""
    if "{" in prefix and "}" in prefix.split("{", 1)[1]:
        return prefix  # the operator chose a tag (one per deployment sharing a cluster)
    return "{" + (prefix.rstrip(":") or "paperbot") + "}:"


async def is_cluster(client: redis.Redis) -> bool:
    """Whether the server ``client`` reached is a Redis Cluster node (``cluster_enabled:1``); a server
    that will not say (some managed services restrict INFO) is taken for a single server."""
    try:
        return (await client.info("cluster")).get("cluster_enabled") in (1, "1")
    except RedisError:
        return False


def describe(client: Client) -> str:
    """Where ``client`` connects, without credentials, for error messages."""
    if isinstance(client, redis.RedisCluster):
        node = client.get_default_node()
        return f"cluster {node.host}:{node.port}" if node else "cluster"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


@asynccontextmanager
async def redis_errors(client: Client, what: str) -> AsyncIterator[None]:
    """Translate redis-py exceptions into ``StoreError`` naming the server (never its password)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        problem = exc.__class__.__name__
        raise StoreError(f"Redis at {describe(client)} is unreachable while trying to {what} ({problem})") from None
    except RedisError as exc:
        raise StoreError(f"Redis refused to {what}: {exc}") from None


def text(value: Any) -> str:
    """A Redis reply as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore:
    """The ``Outbox`` and ``Papers`` ports on one Redis server; every method is one or two round trips."""

    def __init__(
        self,
        client: Client,
        prefix: str = "paperbot:",
        paper_ttl: int = 30 * 86400,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = time.time,
        track_seconds: float = 7 * 86400,
        edit_spacing: float = 3600,
    ) -> None:
        self._track = min(track_seconds, paper_ttl)  # a paper is followed while it is cached, at most
        self._edit_spacing = edit_spacing
        self._redact = redact  # a dead letter's reason may quote a platform's answer: no secret is ever stored
        self._redis = client
        self._prefix = prefix
        self._paper_ttl = paper_ttl
        self._clock = clock  # what "now" is for everything the store dates (a simulated year in bench/storage.py)
        self._seen = Buckets(SEEN_DAYS, 28)
        self._seen_listed = False
        # A post matters while its paper is cached: a reaction saves the cached paper, a retry checks here first.
        self._posts = Buckets(paper_ttl / 86400, 7)
        # Where each followed paper was routed at first sight: weekly buckets covering the tracking window.
        self._routed = Buckets(max(self._track, 1) / 86400, 7)
        self._commit = client.register_script(_COMMIT)
        self._settle_script = client.register_script(_SETTLE)
        self._queue_edits = client.register_script(_QUEUE_EDITS)
        self._queue_late = client.register_script(_QUEUE_LATE)
        self._queue_once = client.register_script(_QUEUE_ONCE)
        self._group_ready = False
        self._closed = False

    def key(self, *parts: str) -> str:
        """A key under this store's prefix."""
        return self._prefix + ":".join(parts)

    def _errors(self, what: str) -> AbstractAsyncContextManager[None]:
        return redis_errors(self._redis, what)

    async def _adopt_unlisted_seen(self) -> None:
        """Once per process: ids in the seen-set that no period lists (a store from before periods) are
        listed under the current period, so they too leave the seen-set when it leaves the window."""
        if self._seen_listed:
            return
        async with self._errors("list seen ids by period"):
            if await self._redis.exists(self.key("seen")) and not await self._redis.exists(self.key("seen", "periods")):
                period = self._seen.current(self._clock())
                async for chunk in _chunks(self._redis.sscan_iter(self.key("seen"), count=5000), 5000):
                    await self._redis.append(self.key("seen", str(period)), "".join(f"{text(i)}\n" for i in chunk))
                await self._redis.zadd(self.key("seen", "periods"), {str(period): period})
        self._seen_listed = True

    def _routed_keys(self) -> list[str]:
        return [self.key("routed", str(n)) for n in self._routed.kept(self._clock())]

    def _posts_keys(self, destination: str) -> list[str]:
        return [self.key("posts", destination, str(n)) for n in self._posts.kept(self._clock())]

    async def first_run(self) -> bool:
        """True until ``begin`` is called: a store that never polled, or one that lost its data."""
        async with self._errors("read the store's epoch"):
            return not await self._redis.exists(self.key("epoch"))

    async def begin(self) -> None:
        """Mark the store as having polled (its epoch: when it started remembering)."""
        async with self._errors("write the store's epoch"):
            await self._redis.set(self.key("epoch"), datetime.now(UTC).isoformat(timespec="seconds"), nx=True)

    async def unseen(self, paper_ids: Sequence[str]) -> list[str]:
        if not paper_ids:
            return []
        async with self._errors("check the seen-set"):
            flags = await self._redis.smismember(self.key("seen"), list(paper_ids))
        return [pid for pid, seen in zip(paper_ids, flags, strict=True) if not seen]

    async def commit(
        self, papers: Sequence[Paper], deliveries: Sequence[Delivery], watched: Collection[Destination] = ()
    ) -> list[str]:
        if not papers:
            return []
        await self._ensure_group()
        owed: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            owed.setdefault(delivery.paper_id, []).append(delivery)
        await self._adopt_unlisted_seen()
        now = self._clock()
        period = self._seen.current(now)
        keys = [
            self.key("outbox"),
            self.key("recent"),
            self.key("seen"),
            self.key("seen", str(period)),
            self.key("seen", "periods"),
        ]
        keys += [self.key("paper", p.id) for p in papers]
        keys += [self.key("routed", str(self._routed.current(now))), self.key("routed", str(self._routed.fallen(now)))]
        args: list[Any] = [self._paper_ttl, int(now * 1000), len(papers), period, self._seen.fallen(now)]
        # Only where a threshold could let a paper in later is its routing worth keeping.
        args += [
            self.key("paper", ""),
            self.key("seen", ""),
            self._routed.ttl if self._track and watched else 0,
            self.key("vec", ""),
        ]
        for paper in papers:
            mine = owed.get(paper.id, [])
            args += [paper.id, pack(paper.to_json()), paper.upvotes or 0, len(mine)]
            for delivery in mine:
                args += [delivery.destination.key, json.dumps(list(delivery.why)), int(delivery.destination in watched)]
        async with self._errors("commit new papers"):
            committed = await self._commit(keys=keys, args=args)
        return [text(c) for c in committed]

    async def paper(self, paper_id: str) -> Paper | None:
        async with self._errors("read a cached paper"):
            raw = await self._redis.get(self.key("paper", paper_id))
        return Paper.from_json(unpack(raw)) if raw else None

    async def papers(self, paper_ids: Sequence[str]) -> list[Paper]:
        """The cached papers among ``paper_ids`` (expired ones are left out), in chunks of 1,000."""
        found: list[Paper] = []
        for start in range(0, len(paper_ids), 1000):
            chunk = paper_ids[start : start + 1000]
            async with self._errors("read cached papers"):
                docs = await self._redis.mget([self.key("paper", pid) for pid in chunk])
            found.extend(Paper.from_json(unpack(doc)) for doc in docs if doc)
        return found

    async def recent(self, since_ms: int) -> tuple[list[str], int]:
        """Ids committed after ``since_ms`` (oldest first) and the cursor to pass next time.
        Entries older than the cache period are dropped on the way."""
        now = int(self._clock() * 1000)
        async with self._errors("list recent papers"), self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.key("recent"), "-inf", now - self._paper_ttl * 1000)
            pipe.zrangebyscore(self.key("recent"), f"({since_ms}", "+inf", withscores=True)
            _, rows = await pipe.execute()
        cursor = max((int(score) for _, score in rows), default=since_ms)
        return [text(pid) for pid, _ in rows], cursor

    async def vectors(self, paper_ids: Sequence[str]) -> dict[str, bytes]:
        """The stored vectors among ``paper_ids``: one HMGET per bucket, 256 buckets a round trip (all
        2,039 in 8, however many papers)."""
        buckets: dict[int, list[str]] = {}
        for pid in paper_ids:
            buckets.setdefault(vector_bucket(pid), []).append(pid)
        found: dict[str, bytes] = {}
        batches = list(buckets.items())
        for start in range(0, len(batches), 256):
            batch = batches[start : start + 256]
            async with self._errors("read paper vectors"), self._redis.pipeline(transaction=False) as pipe:
                for bucket, ids in batch:
                    pipe.hmget(self.key("vec", str(bucket)), ids)
                answers = await pipe.execute()
            for (_, ids), blobs in zip(batch, answers, strict=True):
                found.update((pid, blob) for pid, blob in zip(ids, blobs, strict=True) if blob)
        return found

    async def keep_vectors(self, vectors: Mapping[str, bytes]) -> None:
        """Store vectors beside their papers; each leaves with its paper (at the commit that drops it). A
        bucket nobody writes for a cache period expires, so an abandoned deployment leaves nothing."""
        items = list(vectors.items())
        for start in range(0, len(items), 1000):
            buckets: dict[int, dict[str, bytes]] = {}
            for pid, blob in items[start : start + 1000]:
                buckets.setdefault(vector_bucket(pid), {})[pid] = blob
            async with self._errors("store paper vectors"), self._redis.pipeline(transaction=False) as pipe:
                for bucket, fields in buckets.items():
                    pipe.hset(self.key("vec", str(bucket)), mapping=fields)  # type: ignore[arg-type]
                    pipe.expire(self.key("vec", str(bucket)), max(1, int(self._paper_ttl)))
                await pipe.execute()

    async def index_snapshot(self) -> bytes | None:
        """The query index's last snapshot (opaque bytes), or None."""
        async with self._errors("read the index snapshot"):
            blob = await self._redis.get(self.key("index", "snapshot"))
        return blob.encode() if isinstance(blob, str) else blob

    async def keep_index_snapshot(self, blob: bytes) -> None:
        """Replace the query index's snapshot; it expires with the cache period."""
        async with self._errors("save the index snapshot"):
            await self._redis.set(self.key("index", "snapshot"), blob, ex=max(1, int(self._paper_ttl)))

    async def paper_for_post(self, post: PostRef) -> str | None:
        """The paper a platform message shows, if paperbot posted it."""
        async with self._errors("look up a post"), self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._posts_keys(post.destination.key):
                pipe.hget(bucket, f"m:{post.message_id}")
            found = [raw for raw in await pipe.execute() if raw is not None]
        return text(found[0]) if found else None

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        async with self._errors("create the delivery group"):
            try:
                # From id 0, so entries queued before the group existed are still delivered.
                await self._redis.xgroup_create(self.key("outbox"), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    async def wait_for_work(self, after: str, longest: float) -> str:
        """Block until the outbox has an entry newer than ``after`` (or ``longest`` seconds pass); returns the
        newest id seen. With ``after`` empty, the current newest id at once."""
        outbox = self.key("outbox")
        async with self._errors("wait for deliveries"):
            if not after:
                newest = await self._redis.xrevrange(outbox, count=1)
                return text(newest[0][0]) if newest else "0-0"
            deadline = time.monotonic() + longest
            while (left := deadline - time.monotonic()) > 0:
                # At most BLOCK_SLICE at a time: the connection's read timeout is longer than that.
                reply = await self._redis.xread({outbox: after}, count=1, block=max(1, int(min(left, BLOCK_SLICE) * 1000)))
                if entries := _stream_entries(reply):
                    return text(entries[-1][0])
        return after

    async def heartbeat(self, consumer: str, ttl: float) -> None:
        """``consumer`` is alive for ``ttl`` more seconds; once it stops saying so, others take its entries."""
        async with self._errors("record a heartbeat"):
            await self._redis.set(self.key("alive", consumer), 1, px=int(ttl * 1000))

    async def take(self, consumer: str, claim_idle: float, count: int = 500) -> list[OutboxEntry]:
        try:
            return await self._take(consumer, claim_idle, count)
        except StoreError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # Redis lost its data (a flush, a restart without persistence): make the group again.
            log.warning("the delivery group was gone (Redis lost its data); recreated it")
            self._group_ready = False
            return await self._take(consumer, claim_idle, count)

    async def _take(self, consumer: str, claim_idle: float, count: int) -> list[OutboxEntry]:
        await self._ensure_group()
        outbox = self.key("outbox")
        async with self._errors("read the outbox"):
            own = await self._redis.xreadgroup(GROUP, consumer, {outbox: "0"}, count=count)
            orphaned = await self._orphaned(consumer, count)
            claimed = await self._redis.xautoclaim(outbox, GROUP, consumer, int(claim_idle * 1000), "0-0", count=count)
            new = await self._redis.xreadgroup(GROUP, consumer, {outbox: ">"}, count=count)
        entries = [*_stream_entries(own), *orphaned, *claimed[1], *_stream_entries(new)]
        parsed: dict[str, Delivery] = {}
        for entry_id, fields in entries:
            if fields:  # empty for an entry deleted while pending
                data = {text(k): text(v) for k, v in fields.items()}
                why = tuple(json.loads(data.get("why", "[]")))
                recap = tuple(json.loads(data["recap"])) if data.get("recap") else ()
                delivery = Delivery(
                    Destination.parse(data["dest"]), data["paper"], why, data.get("edit", ""), recap, data.get("title", "")
                )
                parsed.setdefault(text(entry_id), delivery)
        return [OutboxEntry(eid, delivery) for eid, delivery in parsed.items()]

    async def _orphaned(self, consumer: str, count: int) -> list[Any]:
        """Entries of consumers whose heartbeat has expired (a killed or exited process), claimed now rather
        than after ``claim_idle``. A live consumer's entries are never taken."""
        outbox = self.key("outbox")
        holders = [
            c for c in await self._redis.xinfo_consumers(outbox, GROUP) if c.get("pending") and text(c["name"]) != consumer
        ]
        if not holders:
            return []
        names = [text(c["name"]) for c in holders]
        alive = await self._redis.mget([self.key("alive", name) for name in names])
        entries: list[Any] = []
        for name, beat in zip(names, alive, strict=True):
            if beat is None:
                pending = await self._redis.xpending_range(outbox, GROUP, "-", "+", count, consumername=name)
                ids: list[int | bytes | str | memoryview[int]] = [text(row["message_id"]) for row in pending]
                if ids:  # min idle 1 s: two takers racing for one orphan, the second gets nothing
                    entries += await self._redis.xclaim(outbox, GROUP, consumer, ORPHAN_IDLE_MS, ids)
        return entries

    async def failed_attempt(self, entry: OutboxEntry) -> int:
        """Count a real failed attempt to post ``entry`` (not passes it waited out); returns the total."""
        async with self._errors("count a failed attempt"):
            return int(await self._redis.hincrby(self.key("attempts"), entry.entry_id, 1))

    async def delivered(self, destination: Destination, paper_id: str) -> str | None:
        return (await self.earlier_posts(destination, [paper_id])).get(paper_id)

    async def earlier_posts(self, destination: Destination, paper_ids: Sequence[str]) -> dict[str, str]:
        """Message ids of the papers among ``paper_ids`` already posted to ``destination``; one round trip."""
        found = await self._newest_in(self._posts_keys(destination.key), paper_ids, "p:{}", "read delivery records")
        return {pid: text(mid) for pid, mid in found.items()}

    async def _newest_in(self, buckets: list[str], paper_ids: Sequence[str], field: str, what: str) -> dict[str, Any]:
        """Each paper's ``field`` (a format of its id) from the newest of ``buckets`` that has it; one round trip."""
        if not paper_ids:
            return {}
        fields = [field.format(pid) for pid in paper_ids]
        async with self._errors(what), self._redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hmget(bucket, fields)
            replies = await pipe.execute()
        found: dict[str, Any] = {}
        for pid, *values in zip(paper_ids, *replies, strict=True):
            if (value := next((v for v in values if v is not None), None)) is not None:
                found[pid] = value
        return found

    async def _settle(self, entry: OutboxEntry, fields: list[str], posted: bool, what: str) -> None:
        # This week's bucket of the destination's records; the bucket that just left the window goes.
        dest, now = entry.delivery.destination.key, self._clock()
        keys = [
            self.key("posts", dest, str(self._posts.current(now))),
            self.key("posts", dest, str(self._posts.fallen(now))),
            self.key("outbox"),
            self.key("attempts"),
            self.key("lastpost"),
            self.key("posting"),
        ]
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds") if posted else ""
        args: list[str | int] = [self._posts.ttl, GROUP, entry.entry_id, dest, at, *fields]
        async with self._errors(what):
            await self._settle_script(keys=keys, args=args)

    async def update(self, papers: Sequence[Paper]) -> None:
        """Replace cached papers with newer reports of them (keeping their expiry), and list them as
        recent again so the query index reads them anew. Papers no longer cached stay gone."""
        now = int(self._clock() * 1000)
        for start in range(0, len(papers), 1000):
            async with self._errors("update cached papers"), self._redis.pipeline(transaction=False) as pipe:
                for paper in papers[start : start + 1000]:
                    pipe.set(self.key("paper", paper.id), pack(paper.to_json()), xx=True, keepttl=True)
                    pipe.zadd(self.key("recent"), {paper.id: now}, xx=True)
                await pipe.execute()

    async def posts_of(self, destinations: Sequence[Destination], paper_ids: Sequence[str]) -> list[Delivery]:
        """The messages (one card each) that show ``paper_ids`` in ``destinations``, as edits of them,
        with the why-line each card was posted with; one round trip. Digests are left out."""
        if not destinations or not paper_ids:
            return []
        fields = [f"{kind}:{pid}" for pid in paper_ids for kind in ("p", "w")]
        keys = [(destination, bucket) for destination in destinations for bucket in self._posts_keys(destination.key)]
        async with self._errors("read delivery records"), self._redis.pipeline(transaction=False) as pipe:
            for _, bucket in keys:
                pipe.hmget(bucket, fields)
            replies = await pipe.execute()
        found: dict[tuple[Destination, str], Delivery] = {}
        for (destination, _), values in zip(keys, replies, strict=True):  # newest bucket first
            for n, pid in enumerate(paper_ids):
                message, why = values[2 * n], values[2 * n + 1]
                if message is None or (destination, pid) in found:
                    continue
                message = text(message)
                if message.startswith("skipped:") or "#" in message:  # not posted, or one card of a digest
                    found[(destination, pid)] = Delivery(destination, pid)
                    continue
                found[(destination, pid)] = Delivery(destination, pid, tuple(json.loads(text(why or "[]"))), message)
        return [delivery for delivery in found.values() if delivery.edit]

    async def queue_edits(self, edits: Sequence[Delivery]) -> int:
        """Queue edits of posted messages, each message at most once per ``edit_spacing``: an edit
        asked for sooner waits and is queued when its time comes (by a later call: every poll makes
        one). An edit renders the paper as it is then, so the changes in between are merged into it.
        Returns how many were queued now."""
        await self._ensure_group()
        now = int(self._clock() * 1000)
        args: list[Any] = [now, max(1, int(self._edit_spacing * 1000)), self.key("edited", "")]
        for edit in edits:
            args += [edit.destination.key, edit.paper_id, json.dumps(list(edit.why)), edit.edit]
        async with self._errors("queue edits"):
            queued = await self._queue_edits(keys=[self.key("outbox"), self.key("edits", "later")], args=args)
        return int(queued)

    async def queue_recap(self, recap: Delivery, occasion: str, keep_seconds: int) -> bool:
        """Queue a recap once per ``occasion`` (the moment it fell due): False if that one was queued."""
        await self._ensure_group()
        fields = ["dest", recap.destination.key, "paper", recap.paper_id, "why", json.dumps(list(recap.why))]
        fields += ["recap", json.dumps(list(recap.recap)), "title", recap.title]
        async with self._errors("queue a recap"):
            queued = await self._queue_once(
                keys=[self.key("recapped", recap.destination.key, occasion), self.key("outbox")], args=[keep_seconds, *fields]
            )
        return bool(queued)

    async def first_seen(self, paper_ids: Sequence[str]) -> dict[str, int]:
        """The upvotes each paper had when first seen, for papers still followed."""
        found = await self._newest_in(self._routed_keys(), paper_ids, "{}|^", "read routed records")
        return {pid: int(value) for pid, value in found.items()}

    async def queue_late(self, deliveries: Sequence[Delivery]) -> int:
        """Queue deliveries of papers seen earlier (they rose past a destination's threshold), each to a
        destination the paper was never routed to, once; papers no longer followed are left alone."""
        await self._ensure_group()
        keys, args = [self.key("outbox"), *self._routed_keys()], []
        for delivery in deliveries:
            args += [delivery.destination.key, delivery.paper_id, json.dumps(list(delivery.why))]
        if not deliveries:
            return 0
        async with self._errors("queue rising papers"):
            return int(await self._queue_late(keys=keys, args=args))

    async def intend(self, entry: OutboxEntry) -> None:
        async with self._errors("record a post about to be made"):
            await self._redis.hset(self.key("posting"), entry.entry_id, int(self._clock() * 1000))

    async def intended(self, entries: Sequence[OutboxEntry]) -> set[str]:
        if not entries:
            return set()
        ids = [e.entry_id for e in entries]
        async with self._errors("read posts begun"):
            began = await self._redis.hmget(self.key("posting"), ids)
        return {eid for eid, at in zip(ids, began, strict=True) if at is not None}

    async def done(self, entry: OutboxEntry, post: PostRef) -> None:
        paper_id, message_id = entry.delivery.paper_id, post.message_id
        fields = [f"p:{paper_id}", message_id, f"m:{message_id}", paper_id]
        if entry.delivery.why:  # what the card said it matched, so an edit says it again (none: nothing kept)
            fields += [f"w:{paper_id}", json.dumps(list(entry.delivery.why))]
        if entry.delivery.recap:  # a recap is no paper's post: recorded apart, so edits still find the posts
            fields = [f"recap:{message_id}", json.dumps(list(entry.delivery.recap))]
        await self._settle(entry, fields, not entry.delivery.edit, "record a delivery")

    async def bury(self, entry: OutboxEntry, reason: str) -> None:
        """Move a delivery to the dead letters (acknowledged here, kept there with the reason), atomically."""
        delivery = entry.delivery
        fields: dict[FieldT, EncodableT] = {
            "dest": delivery.destination.key,
            "paper": delivery.paper_id,
            "why": json.dumps(list(delivery.why)),
            **({"edit": delivery.edit} if delivery.edit else {}),
            **({"recap": json.dumps(list(delivery.recap))} if delivery.recap else {}),
            **({"title": delivery.title} if delivery.title else {}),
            "reason": self._redact(reason),
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        async with self._errors("move a delivery to the dead letters"), self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.key("dead"), fields, maxlen=DEAD_KEPT, approximate=True)
            pipe.xack(self.key("outbox"), GROUP, entry.entry_id)
            pipe.xdel(self.key("outbox"), entry.entry_id)
            pipe.hdel(self.key("attempts"), entry.entry_id)
            pipe.hdel(self.key("posting"), entry.entry_id)
            await pipe.execute()

    async def dead_letters(self) -> list[dict[str, str]]:
        """Every delivery given up on, oldest first, with ``id``, ``dest``, ``paper``, ``reason``, ``at``."""
        async with self._errors("list dead letters"):
            rows = await self._redis.xrange(self.key("dead"))
        return _rows(rows)

    async def requeue_dead(self) -> int:
        """Queue every dead letter again (someone fixed the cause); returns how many."""
        await self._ensure_group()
        requeued = 0
        for letter in await self.dead_letters():
            async with self._errors("requeue a dead letter"), self._redis.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = {
                    "dest": letter["dest"],
                    "paper": letter["paper"],
                    "why": letter.get("why", "[]"),
                }
                for extra in ("edit", "recap", "title"):
                    if letter.get(extra):
                        fields[extra] = letter[extra]
                pipe.xadd(self.key("outbox"), fields)
                pipe.xdel(self.key("dead"), letter["id"])
                await pipe.execute()
            requeued += 1
        return requeued

    async def queued(self) -> list[dict[str, str]]:
        """Every delivery still owed (delivered ones are removed from the outbox), oldest first."""
        async with self._errors("list queued deliveries"):
            rows = await self._redis.xrange(self.key("outbox"))
        return _rows(rows)

    async def drop(self, destinations: Collection[str]) -> int:
        """Remove every queued delivery to ``destinations`` (exact destination keys, or a workspace's
        prefix such as ``slack:T042/``), returning how many, and everything else kept for them: what was
        posted there, edits and recaps, daily counts, pauses and failure counts (``PER_DESTINATION``),
        and when paperbot last posted there."""
        wanted = list(destinations)

        def ours(rest: str) -> bool:  # a destination key, or one followed by ":<more>" (a key's suffix)
            return any(rest.startswith(d) if d.endswith("/") else rest == d or rest.startswith(d + ":") for d in wanted)

        async with self._errors("drop a destination's records"):
            keys = []
            for platform in {d.partition(":")[0] for d in wanted}:  # one pass over the keys a platform
                async for key in self._redis.scan_iter(match=f"{self.key('*')}:{platform}:*", count=1000):
                    family, _, rest = text(key)[len(self._prefix) :].partition(":")
                    if family in PER_DESTINATION and ours(rest):
                        keys.append(key)
            for chunk in range(0, len(keys), 500):
                await self._redis.delete(*keys[chunk : chunk + 500])
            last = [f for f in await self._redis.hkeys(self.key("lastpost")) if ours(text(f))]
            if last:
                await self._redis.hdel(self.key("lastpost"), *last)
        return await self._drop_queued(ours)

    async def _drop_queued(self, ours: Callable[[str], bool]) -> int:
        dropped, start = 0, "-"
        while True:
            async with self._errors("drop queued deliveries"):
                rows = _rows(await self._redis.xrange(self.key("outbox"), min=start, count=DROP_BATCH))
                gone = [row["id"] for row in rows if ours(row.get("dest", ""))]
                if gone:
                    async with self._redis.pipeline(transaction=True) as pipe:
                        pipe.xack(self.key("outbox"), GROUP, *gone)
                        pipe.xdel(self.key("outbox"), *gone)
                        pipe.hdel(self.key("attempts"), *gone)
                        pipe.hdel(self.key("posting"), *gone)
                        await pipe.execute()
            dropped += len(gone)
            if len(rows) < DROP_BATCH:
                return dropped
            start = "(" + rows[-1]["id"]

    async def backlog(self) -> Backlog:
        """How many deliveries are owed, how old the oldest is, and how many are dead letters (one round trip)."""
        async with self._errors("measure the outbox"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.key("outbox"))
            pipe.xrange(self.key("outbox"), count=1)
            pipe.xlen(self.key("dead"))
            depth, oldest, dead = await pipe.execute()
        age = 0.0
        if oldest:
            age = max(0.0, self._clock() - int(text(oldest[0][0]).split("-")[0]) / 1000)  # a stream id starts with its ms
        return Backlog(int(depth), age, int(dead))

    async def last_posts(self) -> dict[str, str]:
        """When paperbot last posted to each destination."""
        async with self._errors("read last posts"):
            raw = await self._redis.hgetall(self.key("lastpost"))
        return {text(k): text(v) for k, v in raw.items()}

    async def skip(self, entry: OutboxEntry, reason: str) -> None:
        """Settle a delivery without posting (e.g. over the daily cap): recorded, acknowledged, never retried."""
        await self._settle(entry, [f"p:{entry.delivery.paper_id}", f"skipped:{reason}"], False, "record a skipped delivery")

    async def retire(self, consumer: str) -> None:
        # Its heartbeat goes first, so another process takes over what it leaves at once. Only an idle
        # consumer is removed: deleting one drops its pending entries from the group.
        if not self._group_ready:
            return
        async with self._errors("retire a delivery consumer"):
            await self._redis.delete(self.key("alive", consumer))
            pending = await self._redis.xpending_range(self.key("outbox"), GROUP, "-", "+", 1, consumername=consumer)
            if not pending:
                await self._redis.xgroup_delconsumer(self.key("outbox"), GROUP, consumer)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._redis.aclose()


async def _chunks(items: AsyncIterator[Any], size: int) -> AsyncIterator[list[Any]]:
    chunk: list[Any] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows(reply: Any) -> list[dict[str, str]]:
    # XRANGE answers [(id, {field: value}), ...]; an entry deleted meanwhile has no fields.
    return [{"id": text(eid), **{text(k): text(v) for k, v in (fields or {}).items()}} for eid, fields in reply or []]


def _stream_entries(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    # XREADGROUP answers [[stream, [(id, fields), ...]]]; the client is created with RESP2.
    return [entry for _, entries in reply or [] for entry in entries]
