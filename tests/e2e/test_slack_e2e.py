"""Slack end to end: paperbot as a subprocess, the stand-in Web API, a real Redis."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from tests.e2e.conftest import Run, env_with_slack, serving
from tests.e2e.test_run_once import DAYS, hf_item
from tests.redis_servers import free_port
from tests.slack.conftest import new_trigger
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e
SECRET = "e2e-signing-secret"
CONFIG = """
[[channels]]
platform = "slack"
id = "CREASON"
topics = ["reasoning"]

[[channels]]
platform = "slack"
id = "CALL"
"""


@pytest.fixture
def slack_env(real_redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from slack_world(real_redis_url, tmp_path)


@pytest.fixture
def cluster_env(redis_cluster_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from slack_world(redis_cluster_url, tmp_path)


def slack_world(real_redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Stand-in HF (two papers) and Slack, and the environment for paperbot in HTTP mode on them."""
    config = tmp_path / "paperbot.toml"
    config.write_text(CONFIG)
    hf = HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00031", "Reasoning at Scale"), hf_item("2611.00032", "Protein Design")]})
    with StandIn(hf) as hf_server, SlackStandIn() as api:
        env = env_with_slack(
            tmp_path,
            real_redis_url,
            hf_server.url,
            api.api_url,
            config,
            SLACK_SIGNING_SECRET=SECRET,
            PORT=str(free_port()),
        )
        yield env, api


def test_run_once_posts_every_new_paper_once_to_each_matching_slack_channel(slack_env, paperbot: Run) -> None:  # type: ignore[no-untyped-def]
    one_cycle_posts_each_paper_once(slack_env, paperbot)


@pytest.mark.redis
def test_the_same_cycle_runs_unchanged_on_a_three_master_redis_cluster(
    cluster_env, redis_cluster_url: str, paperbot: Run
) -> None:  # type: ignore[no-untyped-def]
    env, _ = cluster_env
    one_cycle_posts_each_paper_once(cluster_env, paperbot)
    tag = "{" + env["PAPERBOT_KEY_PREFIX"].rstrip(":") + "}:"
    port = urlsplit(redis_cluster_url).port
    nodes = subprocess.run(["redis-cli", "-p", str(port), "cluster", "nodes"], capture_output=True, text=True).stdout
    masters = [line.split()[1].split("@")[0] for line in nodes.splitlines() if "master" in line]
    keys = []
    for node in masters:
        scan = ["redis-cli", "-h", node.split(":")[0], "-p", node.split(":")[1], "--scan", "--pattern", tag + "*"]
        keys += subprocess.run(scan, capture_output=True, text=True).stdout.split()
    assert len(masters) == 3
    assert any(k.endswith(":outbox") for k in keys), keys  # the cycle's keys are there
    assert any(":paper:" in k for k in keys), keys
    keyslot = ["redis-cli", "-p", str(port), "cluster", "keyslot"]
    slots = {subprocess.run([*keyslot, k], capture_output=True, text=True).stdout for k in keys}
    assert len(slots) == 1  # one hash tag: every script and transaction may touch any of them together


def one_cycle_posts_each_paper_once(slack_env, paperbot: Run) -> None:  # type: ignore[no-untyped-def]
    """Two ``run --once`` cycles: each new paper posted once to each matching channel, the token never logged."""
    env, api = slack_env
    for _ in range(2):
        result = paperbot(env, "run", "--once")
        assert result.returncode == 0, result.stderr
    shown = Counter((m["channel"], m["blocks"][-1]["elements"][0]["value"]) for m in api.accepted)
    assert shown == Counter({("CREASON", "2611.00031"): 1, ("CALL", "2611.00031"): 1, ("CALL", "2611.00032"): 1})
    reason = next(m for m in api.accepted if m["channel"] == "CREASON")
    assert "matched: reasoning" in json.dumps(reason["blocks"])
    assert "xoxb-e2e-token" not in result.stderr


def signed_post(port: str, body: str, content_type: str, age: float = 0, secret: str = SECRET) -> httpx.Response:
    """``body`` to paperbot's /slack/events, signed as Slack signs it (``age`` seconds ago)."""
    timestamp = str(int(time.time() - age))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body),
    }
    return httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers, timeout=10)


def slash(text: str, user: str = "UADA", channel: str = "CALL", team: str = "T1") -> str:
    """A ``/papers`` slash command's form body."""
    return urlencode(
        {
            "command": "/papers",
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": team,
            "response_url": "http://127.0.0.1:9/hooks/unused",
            "trigger_id": new_trigger(),  # every real request has its own; a replay repeats one
            "api_app_id": "A1",
        }
    )


def test_http_mode_answers_signed_commands_and_reactions(slack_env, paperbot: Run) -> None:  # type: ignore[no-untyped-def]
    env, api = slack_env
    assert paperbot(env, "run", "--once").returncode == 0  # the papers are posted, so reactions can find them
    ts = next(m["ts"] for m in api.accepted if m["channel"] == "CALL")
    port = env["PORT"]
    with serving(env, secrets=(SECRET,)):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = signed_post(port, slash("reasoning"), "application/x-www-form-urlencoded")
        assert answer.status_code == 200
        assert answer.json()["response_type"] == "ephemeral"
        assert answer.json()["text"] == "1 paper matches “reasoning” (showing 1–1)"
        assert signed_post(port, slash("help"), "application/x-www-form-urlencoded", age=400).status_code == 401
        event = {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event_id": "EvE2E1",
            "event_time": 1,
            "event": {
                "type": "reaction_added",
                "user": "UADA",
                "reaction": "bookmark",
                "item": {"type": "message", "channel": "CALL", "ts": ts},
                "event_ts": "1.2",
            },
        }
        assert signed_post(port, json.dumps(event), "application/json").status_code == 200
        deadline = time.monotonic() + 10
        saved = ""
        while "Reasoning at Scale" not in saved and time.monotonic() < deadline:
            saved = signed_post(port, slash("saved"), "application/x-www-form-urlencoded").json()["text"]
            time.sleep(0.1)
        assert "1. Reasoning at Scale — 2611.00031" in saved
