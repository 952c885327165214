"""Hostile chat members and platforms: absurd queries, a poisoned stored subscription, bursts of
commands, replayed requests, and a platform that echoes the token. Through the real entry points:
``paperbot`` subprocesses, the composition root, and the real bolt app with signed requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as redis

from bench.corpus import Corpus
from bot.app import open_app
from bot.model import Destination, UserRef
from bot.settings.schema import settings_from
from tests.e2e.test_run_once import DAYS, hf_item
from tests.hostile.conftest import hostile_env, ids, measured
from tests.slack.conftest import SlackHarness, signed, slash_body
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e
FORM = "application/x-www-form-urlencoded"

DEEP = "(" * 243 + "reasoning" + ")" * 243  # 495 characters: what once stopped every poll
WORST = [
    " ".join(f"-never{n}" for n in range(20)),  # twenty negations: every paper, twenty tests each
    " OR ".join(Corpus(seed=2).words[:20]),  # twenty of the commonest words
    '"' + " ".join(Corpus(seed=2).words[:12]) + '"',  # a phrase of twelve common words
    "upvotes>=0 " + " ".join(f"-zz{n}" for n in range(19)),
    "code:no " + " OR ".join(Corpus(seed=2).words[:19]),
]


def test_a_nested_query_is_refused_with_a_clear_answer(real_redis_url: str, tmp_path: Path) -> None:
    env = hostile_env(tmp_path, real_redis_url, "http://127.0.0.1:9")
    run = measured(env, "ask", f"/papers subscribe {DEEP}")
    assert run.returncode == 1  # refused: a script can tell
    assert "nests parentheses and NOT more than 6 deep" in run.stdout
    topics = measured(env, "ask", "/papers topics")
    assert "no topics" in topics.stdout  # nothing was stored
    run.assert_calm(0)


def test_a_stored_poisoned_subscription_disables_itself_alone(real_redis_url: str, tmp_path: Path) -> None:
    # Stored before today's limits: the channel "console:evil" subscribed to DEEP.
    env = hostile_env(tmp_path, real_redis_url, "http://127.0.0.1:9")
    prefix = env["PAPERBOT_KEY_PREFIX"]

    async def store_it() -> None:
        client = redis.Redis.from_url(real_redis_url)
        await client.zadd(f"{prefix}subs:console:evil", {DEEP: 1})
        await client.sadd(f"{prefix}subscribed", "console:evil")
        await client.aclose()

    asyncio.run(store_it())
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00041", "Reasoning, still delivered")]})) as hf:
        env["HF_ENDPOINT"] = hf.url
        first = measured(env, "run", "--once", "--json")
        topics = measured(env, "ask", "--channel", "evil", "/papers topics")
    assert first.returncode == 0, first.stderr
    assert ids(first.stdout) == ["2611.00041"]  # the terminal's delivery went on
    assert first.stderr.count("subscription disabled") == 1
    first.assert_calm(3)
    assert "(disabled: the query nests parentheses and NOT more than 6 deep; unsubscribe it)" in topics.stdout


async def test_200_concurrent_commands_are_all_answered(real_redis_url: str, tmp_path: Path) -> None:
    env = hostile_env(tmp_path, real_redis_url, "http://127.0.0.1:9")
    settings = settings_from({}, env)
    where = Destination("console", "burst")
    async with open_app(settings) as app:
        replies = await asyncio.gather(
            *(app.commands.handle(f"/papers subscribe topic{n}", UserRef("console", f"u{n}"), where) for n in range(200))
        )
        stored = await app.commands.topics(where)
    assert all(reply.text.startswith("Subscribed this channel") for reply in replies), {r.text for r in replies}
    assert len(stored) == 200  # it stored 100 and failed the rest before the blocking pool


async def test_worst_queries_are_bounded_and_do_not_stall_other_commands(real_redis_url: str, tmp_path: Path) -> None:
    env = hostile_env(tmp_path, real_redis_url, "http://127.0.0.1:9")
    settings = settings_from({}, env)
    corpus = Corpus(seed=2)
    async with open_app(settings) as app:
        for start in range(0, 10_000, 2000):
            await app.outbox.commit(corpus.papers(2000, start), [])
        await app.commands.warm_up()
        user, where = UserRef("console", "asker"), Destination("console", "terminal")

        async def timed(text: str) -> tuple[float, str]:
            started = time.monotonic()
            reply = await app.commands.handle(f"/papers {text}", user, where)
            return time.monotonic() - started, reply.text

        worst = [asyncio.create_task(timed(q)) for q in WORST]
        ordinary = await asyncio.gather(*(timed(w) for w in corpus.words[100:130]))
        worst_done = await asyncio.gather(*worst)
    assert all("match" in text for _, text in ordinary)
    # Correctness bounds, not performance figures (those are in bench/hostile_queries.py): nothing waits
    # seconds behind the worst queries, and each worst query answers or refuses within bounded time.
    assert max(seconds for seconds, _ in ordinary) < 5
    assert max(seconds for seconds, _ in worst_done) < 10
    assert all("match" in text or "too broad" in text for _, text in worst_done), [t for _, t in worst_done]


async def test_a_replayed_signed_command_runs_once(slack: SlackHarness) -> None:
    where = Destination("slack", "C1")
    for topic in ("robots", "agents", "proteins"):
        await slack.world.subscriptions.subscribe(where, topic)
    request = slash_body("unsubscribe 1", channel="C1")
    answers = [await slack.dispatch(signed(request, FORM)) for _ in range(3)]  # within Slack's 5-minute window
    assert [status for status, _ in answers] == [200, 200, 200]
    assert await slack.world.subscriptions.topics(where) == ["agents", "proteins"]  # it removed three before


def test_a_platform_echoing_the_token_never_gets_it_stored_or_printed(real_redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "paperbot.toml"
    config.write_text('[[channels]]\nplatform = "slack"\nid = "C1"\n')
    token = "xoxb-e2e-token"
    with SlackStandIn() as api, StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00051", "Echo")]})) as hf:
        api.fail("chat.postMessage", *[(200, {}, {"ok": False, "error": f"unknown token {token}"})] * 5)
        env = hostile_env(
            tmp_path, real_redis_url, hf.url, SLACK_API_URL=api.api_url, SLACK_BOT_TOKEN=token, PAPERBOT_CONFIG=str(config)
        )
        run = measured(env, "run", "--once")
        deliveries = measured(env, "deliveries")
    assert run.returncode == 0, run.stderr
    assert token not in run.stderr + run.stdout
    assert "paused: 1" in deliveries.stdout  # the pause and its reason are stored …
    assert token not in deliveries.stdout + deliveries.stderr  # … without the token
    assert "***" in deliveries.stdout
