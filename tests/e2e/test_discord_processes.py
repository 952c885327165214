"""Several ``paperbot run`` processes of one Discord bot (poller, worker, worker) against the loopback
Discord: exactly one holds the gateway session, so each interaction is answered once; the paper is posted
once, with no 429; and another process takes the session over when its holder stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.conftest import fixture_text
from tests.discord.standin import APP_ID, GUILD, DiscordStandIn
from tests.e2e.conftest import ROOT, base_env
from tests.e2e.test_run_once import DAYS, hf_item
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e


def wait_for(condition: Callable[[], object], seconds: float) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_one_gateway_session_among_three_processes_and_a_takeover_when_it_dies(real_redis_url: str, tmp_path: Path) -> None:
    config = tmp_path / "paperbot.toml"
    config.write_text('[[channels]]\nplatform = "discord"\nid = "1249000000000000005"\n')
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00061", "Posted once")]})) as hf, DiscordStandIn() as discord_api:
        env = base_env(
            tmp_path,
            REDIS_URL=real_redis_url,
            HF_ENDPOINT=hf.url,
            DISCORD_TOKEN="discord-processes-token",
            DISCORD_API_URL=discord_api.api_url,
            PAPERBOT_CONFIG=str(config),
        )
        roles = (["--role", "poller"], ["--role", "worker"], ["--role", "worker"])
        processes = [
            subprocess.Popen([sys.executable, "-m", "bot", "run", *role], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for role in roles
        ]
        try:
            wait_for(lambda: discord_api.identified >= 1 and discord_api.messages, 30)
            time.sleep(3)  # time enough for any other process to open a second session
            assert discord_api.identified == 1  # one session for the bot, whatever the processes
            assert len(discord_api.messages) == 1  # the paper posted once (over REST, by a delivering process)
            interaction = json.loads(fixture_text("discord/interaction_command.json"))  # /papers help
            interaction.update(guild_id=str(GUILD), application_id=str(APP_ID))
            discord_api.dispatch("INTERACTION_CREATE", interaction)
            wait_for(lambda: any(f["kind"] == "followup" for f in discord_api.followups), 15)
            time.sleep(1)
            assert [f["kind"] for f in discord_api.followups] == ["callback", "followup"]  # answered once
            # The lock in Redis names the process holding the session ("host-pid"): stop that one.
            with redis.Redis.from_url(real_redis_url) as client:
                lock = client.get(env["PAPERBOT_KEY_PREFIX"] + "lock:listener:discord")
            holder_pid = int(lock.split(b"-")[-1])
            holder = next(p for p in processes if p.pid == holder_pid)
            holder.send_signal(signal.SIGTERM)
            holder.wait(10)
            started = time.monotonic()
            # The stand-in may see the old socket close a moment after the process exits, so wait
            # for the survivor's own IDENTIFY rather than for "a socket is open".
            wait_for(lambda: discord_api.identified >= 2 and discord_api.connected, 30)
            takeover = time.monotonic() - started
            sessions = discord_api.identified
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            logs = [process.communicate(timeout=10)[1] for process in processes]
    assert discord_api.most_at_once == 1  # never two sessions at the same time
    assert discord_api.limited == 0  # no 429
    assert sessions == 2  # the first holder's, then a survivor's
    assert [p.returncode for p in processes] == [0, 0, 0]
    assert not any("Traceback" in log for log in logs)
    print(f"\ngateway sessions: 1 of 3 processes; taken over {takeover:.1f} s after its holder stopped")
