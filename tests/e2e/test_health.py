"""The web port's operator routes on a running ``paperbot run``: ``/metrics`` counters move as it works,
``/readyz`` turns 503 while Redis is stopped and 200 when it is back, ``/healthz`` answers throughout."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import serving
from tests.e2e.test_slack_e2e import SECRET, signed_post, slack_world, slash
from tests.redis_servers import RedisProcess, embedded_binary, system_binary

pytestmark = pytest.mark.e2e
DELIVERIES = "paperbot_deliveries_total"


def sample(metrics: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def wait_for(check, seconds: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {check}")


def test_metrics_move_during_a_run_and_readyz_follows_redis(tmp_path: Path) -> None:
    redis = RedisProcess(system_binary() or embedded_binary(), tmp_path / "redis").start()
    try:
        world = slack_world(redis.url, tmp_path)
        env, api = next(world)
        base = f"http://127.0.0.1:{env['PORT']}"
        with serving(env, secrets=(SECRET,)):
            wait_for(lambda: len(api.accepted) == 3)  # the first poll posted both papers (3 deliveries)
            posted = {"platform": "slack", "outcome": "posted"}
            first = wait_for(lambda: (m := httpx.get(f"{base}/metrics").text) and sample(m, DELIVERIES, **posted) == 3 and m)
            assert sample(first, "paperbot_papers_fetched_total", source="huggingface") == 2
            assert sample(first, "paperbot_papers_new_total", source="huggingface") == 2
            assert sample(first, "paperbot_poll_duration_seconds_count") == 1
            assert sample(first, "paperbot_outbox_depth") == 0
            assert sample(first, "paperbot_store_up") == 1
            assert sample(first, "paperbot_source_last_success_timestamp_seconds", source="huggingface") > time.time() - 60
            assert sample(first, "paperbot_command_duration_seconds_count", platform="slack", command="search") == 0
            assert signed_post(env["PORT"], slash("reasoning"), "application/x-www-form-urlencoded").status_code == 200
            second = httpx.get(f"{base}/metrics").text
            assert sample(second, "paperbot_command_duration_seconds_count", platform="slack", command="search") == 1
            assert httpx.get(f"{base}/readyz").json() == {"ready": True, "problems": []}

            redis.stop()
            stopped = wait_for(lambda: (r := httpx.get(f"{base}/readyz", timeout=5)).status_code == 503 and r)
            assert stopped.json()["problems"][0].startswith("store: Redis at 127.0.0.1")
            assert httpx.get(f"{base}/healthz").text == "ok"  # alive all the same: no restart needed
            assert sample(httpx.get(f"{base}/metrics", timeout=10).text, "paperbot_store_up") == 0

            redis.start()
            wait_for(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200)
        world.close()
    finally:
        redis.stop()
