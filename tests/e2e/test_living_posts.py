"""Living posts end to end: a posted card gains code and upvotes and is updated in place on Slack and
Discord; a paper that rises past a channel's threshold is delivered there, once; nothing else moves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.discord.standin import DiscordStandIn
from tests.e2e.conftest import Run, env_with_slack
from tests.e2e.test_run_once import DAYS, hf_item
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e
DISCORD_CHANNEL = "1249000000000000077"
CONFIG = f"""
[[channels]]
platform = "slack"
id = "CALL"

[[channels]]
platform = "slack"
id = "CPOPULAR"
min_upvotes = 25

[[channels]]
platform = "discord"
id = "{DISCORD_CHANNEL}"
"""
CODE = "https://github.com/example/alpha-code"


def item(pid: str, title: str, upvotes: int, code: str = "") -> dict:
    paper = hf_item(pid, title)
    paper["paper"].update(upvotes=upvotes, githubRepo=code, projectPage="")
    return paper


def test_cards_follow_their_paper_and_rising_papers_reach_the_channels_waiting_for_them(
    real_redis_url: str, tmp_path: Path, paperbot: Run
) -> None:
    config = tmp_path / "paperbot.toml"
    config.write_text(CONFIG)
    hf = HuggingFaceStandIn({DAYS[0]: [item("2611.00071", "Alpha", 3), item("2611.00072", "Beta", 3)]})
    with StandIn(hf) as hf_server, SlackStandIn() as slack, DiscordStandIn() as discord_api:
        env = env_with_slack(
            tmp_path, real_redis_url, hf_server.url, slack.api_url, config,
            DISCORD_TOKEN="living-posts-token", DISCORD_API_URL=discord_api.api_url,
        )  # fmt: skip
        first = paperbot(env, "run", "--once")
        assert first.returncode == 0, first.stderr
        assert sorted((m["channel"], m["metadata"]["event_payload"]["paper"]) for m in slack.accepted) == [
            ("CALL", "2611.00071"),
            ("CALL", "2611.00072"),
        ]  # nothing in the min_upvotes channel yet
        assert len(discord_api.messages) == 2
        alpha_slack = next(m for m in slack.accepted if m["metadata"]["event_payload"]["paper"] == "2611.00071")
        alpha_discord = next(m for m in discord_api.messages if "Alpha" in json.dumps(m["embeds"]))
        assert CODE not in json.dumps(alpha_slack["blocks"])

        # A day later: Alpha has code and 150 upvotes, Beta 30 upvotes.
        hf.days[DAYS[0]] = [item("2611.00071", "Alpha", 150, CODE), item("2611.00072", "Beta", 30)]
        second = paperbot(env, "run", "--once")
        assert second.returncode == 0, second.stderr

        # Alpha's cards are updated in place (same ts, same message id), with the code link; not reposted.
        [slack_edit] = [u for u in slack.updated if u["metadata"]["event_payload"]["paper"] == "2611.00071"]
        assert (slack_edit["channel"], slack_edit["ts"]) == ("CALL", alpha_slack["ts"])
        assert CODE in json.dumps(slack_edit["blocks"])
        assert "▲ 150" in json.dumps(slack_edit["blocks"], ensure_ascii=False)
        [discord_edit] = [e for e in discord_api.edits if e["id"] == alpha_discord["id"]]
        assert CODE in json.dumps(discord_edit["embeds"])
        # Beta went from 3 to 30 upvotes (past the 10 and 25 milestones): its cards are updated too.
        assert len(slack.updated) == len(discord_api.edits) == 2
        # Both now pass CPOPULAR's 25 upvotes: each is posted there once, saying why it comes late.
        popular = [m for m in slack.accepted if m["channel"] == "CPOPULAR"]
        assert sorted(m["metadata"]["event_payload"]["paper"] for m in popular) == ["2611.00071", "2611.00072"]
        beta = next(m for m in popular if m["metadata"]["event_payload"]["paper"] == "2611.00072")
        assert "rising: ▲ 30 (was ▲ 3 when first seen)" in json.dumps(beta["blocks"], ensure_ascii=False)
        assert len([m for m in slack.accepted if m["channel"] == "CALL"]) == 2  # no new post in CALL
        assert len(discord_api.messages) == 2  # no new post on Discord

        # A third run with nothing new makes no call that posts or edits.
        posts, edits, patches = len(slack.accepted), len(slack.updated), len(discord_api.edits)
        third = paperbot(env, "run", "--once")
        assert third.returncode == 0, third.stderr
        assert (len(slack.accepted), len(slack.updated), len(discord_api.edits), len(discord_api.messages)) == (
            posts,
            edits,
            patches,
            2,
        )
