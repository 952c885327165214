"""Fault tests: killed workers and a restarted Redis lose nothing. Bounded in time, 127.0.0.1 only."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Run, base_env
from tests.e2e.test_run_once import DAYS, hf_item
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e

CONFIG = """
[delivery]
claim_idle_seconds = 1      # a killed worker's deliveries are taken over after 1 s (default 300)

[[channels]]
platform = "slack"
id = "CFAULT"

[[channels]]
platform = "slack"
id = "CFAULT2"
"""


def test_sigkill_during_delivery_ten_times_loses_nothing(real_redis_url: str, tmp_path: Path, paperbot: Run) -> None:
    config = tmp_path / "paperbot.toml"
    config.write_text(CONFIG)
    papers = [hf_item(f"2611.{n:05d}", f"Fault paper {n}") for n in range(12)]
    rng = random.Random(5)
    kills = 0
    with StandIn(HuggingFaceStandIn({DAYS[0]: papers})) as hf, SlackStandIn(delay=0.15) as api:
        env = base_env(
            tmp_path,
            REDIS_URL=real_redis_url,
            HF_ENDPOINT=hf.url,
            SLACK_API_URL=api.api_url,
            PAPERBOT_CONFIG=str(config),
            SLACK_BOT_TOKEN="xoxb-fault",
            SLACK_SIGNING_SECRET="s",
        )
        recoveries = []
        for _ in range(10):
            before = len(api.accepted)
            started = time.monotonic()
            with subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--once"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ) as worker:
                time.sleep(rng.uniform(1.0, 2.5))  # start-up takes ~1 s; then it is mid-delivery
                if worker.poll() is None:
                    worker.send_signal(signal.SIGKILL)
                    kills += 1
                worker.wait(10)
            if len(api.accepted) > before:
                recoveries.append(api.accepted[before]["_at"] - started)  # start to first post: the time to recover
            time.sleep(1.1)  # let the dead worker's entries become claimable
        final = paperbot(env, "run", "--once")
        assert final.returncode == 0, final.stderr
    shown = Counter((m["channel"], m["blocks"][-1]["elements"][0]["value"]) for m in api.accepted)
    expected = {(c, p["paper"]["id"]) for p in papers for c in ("CFAULT", "CFAULT2")}
    assert set(shown) == expected  # every (destination, paper) delivered: nothing lost
    duplicates = sum(n - 1 for n in shown.values())
    # A duplicate needs a death between Slack accepting a post and the record being written: at most one per kill.
    assert duplicates <= kills
    recover = sorted(recoveries)[len(recoveries) // 2] if recoveries else float("nan")
    print(
        f"\nkills={kills} deliveries={len(expected)} lost=0 duplicates={duplicates} ({duplicates / max(kills, 1):.2f}/kill) "
        f"median time from restart to first post={recover:.2f}s"
    )
