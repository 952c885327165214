"""One deployment at public-app scale: 1,000 Slack workspaces installed (multi-workspace mode), each with
5 channels × 3 topic subscriptions (15,000 subscriptions), and 2,000 new papers.

- Routing: the subscriptions read from Redis and compiled, then the 2,000 papers routed, as a poll does;
  then the commit that queues the deliveries (one script call), the outbox's length and memory.
- Delivery: 1, 2 and 4 ``paperbot run --role worker`` processes (default settings, each workspace's
  token from the installation store) drain the same outbox through a stand-in Slack that answers each
  call in 50 ms, checks every call's token against its workspace, and answers 429 to a second message
  within a second in a channel. The baseline is the per-channel bound measured in the same run: the
  busiest channel's posts one second apart (n posts: (n - 1) × 1 s + n × 50 ms); nothing can beat it.
- Memory: what the 1,000 installations take in Redis.

Topics are narrower than ``bench/route.py``'s (two topic words ANDed, or a phrase): a lab's channel
gets a handful of papers a day, not a tenth of arXiv.

    .venv/bin/python bench/scale.py [--workspaces 1000] [--papers 2000] [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as redis
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.oauth import InstallationStore
from bench.corpus import Corpus
from bot.flow.channels import Channels
from bot.model import Destination
from bot.store.installations import RedisInstallations
from bot.store.redis import RedisStore
from bot.store.sealing import Seal
from bot.store.subscriptions import RedisSubscriptions
from tests.redis_servers import RedisProcess, embedded_binary, free_port

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "scale:"
ANSWER_SECONDS, PACE = 0.05, 1.0
CLIENT_SECRET = "bench-client-secret"


class PacedSlack:
    """A stand-in Slack Web API on aiohttp in its own thread: 50 ms an answer, tokens checked, one
    message a second per channel (a faster one gets 429 with Retry-After: 1)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens  # bot token → workspace
        self.port = free_port()
        self.posted: Counter[str] = Counter()
        self.limited = 0
        self.refused = 0
        self.last_at = 0.0
        self._last: dict[str, float] = {}
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/api/{method}", self._call)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port, backlog=4096).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    async def _call(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.json() if request.content_type == "application/json" else dict(await request.post())
        team = self.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer "))
        await asyncio.sleep(ANSWER_SECONDS)
        if team is None:
            self.refused += 1
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method != "chat.postMessage":
            return web.json_response({"ok": True})
        channel, now = str(body.get("channel")), time.monotonic()
        if now - self._last.get(channel, -1e9) < PACE:
            self.limited += 1
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"})
        self._last[channel] = now
        self.posted[channel] += 1
        self.last_at = now
        return web.json_response({"ok": True, "channel": channel, "ts": f"{time.time():.6f}"})

    def __enter__(self) -> PacedSlack:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def narrow_topic(corpus: Corpus) -> str:
    """A lab's topic: two topic words, as a phrase or both required."""
    first, second = corpus.topic_word(), corpus.topic_word()
    return f'"{first} {second}"' if corpus.rng.random() < 0.3 else f"{first} {second}"


async def prepare(client: redis.Redis, args: argparse.Namespace, corpus: Corpus) -> tuple[dict[str, str], int]:
    """Installations and subscriptions in Redis; returns the tokens and the installations' bytes."""
    installations = RedisInstallations(client, PREFIX, Seal(CLIENT_SECRET))  # sealed, as paperbot keeps them
    store = InstallationStore(installations)
    tokens = {}
    for n in range(args.workspaces):
        team, token = f"T{n:05d}", f"xoxb-{n:05d}-{'x' * 40}"
        tokens[token] = team
        installation = Installation(
            app_id="A1", team_id=team, team_name=f"Lab {n}", bot_token=token, bot_id=f"B{n}", bot_user_id=f"UB{n}",
            bot_scopes=["chat:write", "commands", "reactions:read", "channels:history", "im:write", "users:read"],
            user_id=f"U{n}", installed_at=time.time(),
        )  # fmt: skip
        await store.async_save(installation)
    installed = int(await client.memory_usage(PREFIX + "installs") or 0)
    subscriptions = RedisSubscriptions(client, PREFIX)
    for n in range(args.workspaces):
        for c in range(args.channels):
            where = Destination("slack", f"C{n:05d}{c}", f"T{n:05d}")
            for _ in range(args.topics):
                await subscriptions.subscribe(where, narrow_topic(corpus))
    return tokens, installed


Queued = tuple[float, float, int, int, Counter[str]]  # routing s, commit s, outbox entries and bytes, per channel


async def route_and_queue(client: redis.Redis, args: argparse.Namespace, corpus: Corpus) -> Queued:
    """Route the papers as a poll does and queue the deliveries; returns the timings and the outbox."""
    papers = corpus.papers(args.papers)
    started = time.perf_counter()
    router = await Channels((), RedisSubscriptions(client, PREFIX)).router()
    deliveries = router.route(papers)
    routing = time.perf_counter() - started
    store = RedisStore(client, PREFIX)
    started = time.perf_counter()
    await store.commit(papers, deliveries)
    commit = time.perf_counter() - started
    outbox = int(await client.xlen(PREFIX + "outbox"))
    outbox_bytes = int(await client.memory_usage(PREFIX + "outbox", samples=0) or 0)
    return routing, commit, outbox, outbox_bytes, Counter(d.destination.channel for d in deliveries)


def drain(url: str, api: PacedSlack, workers: int, expected: int, data: Path) -> float:
    """Seconds from the first worker's first post to the last post, ``workers`` processes."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(data),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": url,
        "PAPERBOT_KEY_PREFIX": PREFIX,
        "PAPERBOT_HF_ENABLED": "false",
        "PAPERBOT_ARXIV_CATEGORIES": "cs.CL",  # never polled: the workers only deliver
        "SLACK_API_URL": api.url,
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
    }
    command = [sys.executable, "-m", "bot", "run", "--role", "worker"]
    procs = [
        subprocess.Popen(command, env=env | {"PORT": str(free_port())}, cwd=ROOT, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    started = time.monotonic()
    try:
        while sum(api.posted.values()) < expected and time.monotonic() - started < 1800:
            time.sleep(0.1)
        return api.last_at - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)


async def fill(url: str, args: argparse.Namespace) -> tuple[dict[str, str], int, Queued]:
    client = redis.Redis.from_url(url, protocol=2)
    try:
        await client.flushdb()
        corpus = Corpus(seed=7)
        tokens, installed = await prepare(client, args, corpus)
        return tokens, installed, await route_and_queue(client, args, corpus)
    finally:
        await client.aclose()


def main(args: argparse.Namespace) -> None:
    data = Path(tempfile.mkdtemp(prefix="paperbot-scale-"))
    server = RedisProcess(shutil.which("redis-server") or embedded_binary(), data / "redis").start()
    try:
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            tokens, installed, (routing, commit, outbox, outbox_bytes, per_channel) = asyncio.run(fill(server.url, args))
            busiest = max(per_channel.values())
            bound = (busiest - 1) * PACE + busiest * ANSWER_SECONDS
            with PacedSlack(tokens) as api:
                seconds = drain(server.url, api, workers, outbox, data)
                rows.append((workers, seconds, bound, sum(api.posted.values()), api.limited, api.refused))
        subscriptions = args.workspaces * args.channels * args.topics
        median = sorted(per_channel.values())[len(per_channel) // 2]
        print(f"workspaces={args.workspaces:,} channels={args.workspaces * args.channels:,} subscriptions={subscriptions:,}")
        print(f"papers={args.papers:,} deliveries={outbox:,} (busiest channel {busiest}, median {median})")
        print(f"routing {routing:.2f} s (subscriptions read and compiled, papers routed); commit {commit:.2f} s")
        each = installed / args.workspaces
        print(
            f"outbox {outbox:,} entries, {outbox_bytes / 1e6:.1f} MB; installations {installed / 1e6:.2f} MB ({each:.0f} B each)"
        )
        for workers, seconds, bound, posted, limited, refused in rows:
            print(
                f"workers={workers}: drained {posted:,} posts in {seconds:6.1f} s; per-channel bound {bound:5.1f} s; "
                f"ratio {seconds / bound:4.2f}x; {posted / seconds:6.0f} posts/s; 429s={limited} refused={refused}"
            )
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=5)
    parser.add_argument("--topics", type=int, default=3)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    main(parser.parse_args())
