"""``paperbot doctor`` against the stand-ins, as a person runs it: every check, a fix for each failure, and
exit 1 when anything failed. The stand-ins are spec-checked, so the doctor's own calls are too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.discord.standin import APP_ID, CHANNEL, DiscordStandIn
from tests.e2e.conftest import Run, base_env
from tests.e2e.test_run_once import DAYS, hf_item
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e
SLACK_TOKEN = "xoxb-doctor-token"


def configured(tmp_path: Path, *channels: tuple[str, str]) -> Path:
    config = tmp_path / "paperbot.toml"
    config.write_text("".join(f'[[channels]]\nplatform = "{p}"\nid = "{c}"\n\n' for p, c in channels))
    return config


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_a_healthy_slack_setup_is_all_ticks_and_a_test_post_is_taken_back(
    real_redis_url: str, tmp_path: Path, paperbot: Run
) -> None:
    config = configured(tmp_path, ("slack", "C1"))
    with StandIn(HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00001", "A paper")]})) as hf, SlackStandIn() as api:
        env = base_env(tmp_path, REDIS_URL=real_redis_url, HF_ENDPOINT=hf.url, SLACK_API_URL=api.api_url)
        env |= {"PAPERBOT_CONFIG": str(config), "SLACK_BOT_TOKEN": SLACK_TOKEN}
        done = paperbot(env, "doctor", "--post", "slack:C1")
        assert (len(api.accepted), len(api.deleted)) == (0, 1)  # posted, then deleted
    out = lines(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line for line in out if line.startswith("✗")] == []
    assert "! Slack events: posting only: /papers, reactions and Save are not received" in out  # a warning: exit 0
    assert any(line.startswith("✓ Redis: version") for line in out)
    assert "✓ source huggingface: 1 paper now" in out
    assert "✓ Slack token: valid: bot UBOT in workspace T1" in out
    assert any(line.startswith("✓ Slack scopes:") for line in out)
    assert "✓ Slack channel C1: reachable, and paperbot is in it" in out
    assert "✓ post to slack:C1: a test card was posted and deleted" in out
    assert SLACK_TOKEN not in done.stdout + done.stderr


def test_a_missing_scope_a_channel_without_the_bot_and_a_revoked_token_each_say_what_to_do(
    real_redis_url: str, tmp_path: Path, paperbot: Run
) -> None:
    config = configured(tmp_path, ("slack", "C1"), ("slack", "CNOTIN"))
    scopes = frozenset({"chat:write", "commands", "reactions:read", "channels:history", "groups:history", "users:read"})
    with StandIn(HuggingFaceStandIn({DAYS[0]: []})) as hf, SlackStandIn(scopes=scopes, forbidden={"CNOTIN"}) as api:
        env = base_env(tmp_path, REDIS_URL=real_redis_url, HF_ENDPOINT=hf.url, SLACK_API_URL=api.api_url)
        env |= {"PAPERBOT_CONFIG": str(config), "SLACK_BOT_TOKEN": SLACK_TOKEN}
        done = paperbot(env, "doctor")
        api.revoked.add(SLACK_TOKEN)
        revoked = paperbot(env, "doctor")
    out = lines(done.stdout)
    assert done.returncode == 1
    assert "✗ Slack scopes: missing im:write, files:write" in out
    assert out[out.index("✗ Slack scopes: missing im:write, files:write") + 1].strip().startswith("fix: add them under OAuth")
    assert "✗ Slack channel CNOTIN: not_in_channel" in out
    assert "    fix: invite the bot: /invite @paperbot in that channel" in out
    assert "✓ Slack channel C1: reachable, and paperbot is in it" in out
    assert revoked.returncode == 1
    assert "✗ Slack token: token_revoked" in lines(revoked.stdout)


def test_discord_token_channels_and_commands_and_an_unreachable_redis(tmp_path: Path, paperbot: Run) -> None:
    config = configured(tmp_path, ("discord", str(CHANNEL)), ("discord", "1249000000000000099"))
    with StandIn(HuggingFaceStandIn({DAYS[0]: []})) as hf, DiscordStandIn() as api:
        api.deleted.add(1249000000000000099)
        env = base_env(tmp_path, REDIS_URL="redis://127.0.0.1:9/0", HF_ENDPOINT=hf.url, DISCORD_API_URL=api.api_url)
        env |= {"PAPERBOT_CONFIG": str(config), "DISCORD_TOKEN": "discord-doctor-token"}
        unsynced = paperbot(env, "doctor")
        api.synced.append((f"/applications/{APP_ID}/commands", [{"name": "papers", "description": "papers", "type": 1}]))
        synced = paperbot(env, "doctor")
        api.unauthorized = True
        refused = paperbot(env, "doctor")
    out = lines(unsynced.stdout)
    assert unsynced.returncode == 1
    assert any(line.startswith("✗ Redis: Redis at 127.0.0.1:9 is unreachable") for line in out)  # and the rest still checked
    assert "✓ Discord token: valid: paperbot" in out
    assert f"✓ Discord channel {CHANNEL}: #papers, one paperbot can post in" in out
    assert any(line.startswith("✗ Discord channel 1249000000000000099: ") and "Unknown Channel" in line for line in out)
    assert "✗ Discord commands: /papers is not registered" in out
    assert "✓ Discord commands: /papers is registered" in lines(synced.stdout)
    assert any(line.startswith("✗ Discord token: ") and "refused DISCORD_TOKEN" in line for line in lines(refused.stdout))
