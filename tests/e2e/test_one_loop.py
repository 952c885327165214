"""Slack and Discord served together by one paperbot in one asyncio loop, with the scheduler."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from adapters.discord.client import PaperbotClient, new_client
from adapters.discord.inbound import DiscordInbound
from adapters.discord.outbound import DiscordOutbound
from adapters.slack.inbound import SlackInbound
from adapters.slack.outbound import SlackOutbound, web_client
from adapters.web import WebServer
from bot.app import Platforms, open_app
from bot.model import UserRef
from bot.service.runner import serve
from bot.settings.schema import Settings, settings_from
from tests.conftest import fixture_text
from tests.discord.standin import CHANNEL, DiscordStandIn
from tests.e2e.test_run_once import DAYS, hf_item
from tests.redis_servers import RedisProcess, free_port
from tests.slack.standin import SlackStandIn
from tests.standins import HuggingFaceStandIn, StandIn

pytestmark = pytest.mark.e2e


def chat_platforms(settings: Settings, slack_api_url: str, port: int, name: str) -> tuple[Platforms, PaperbotClient]:
    """Slack (HTTP mode on 127.0.0.1:``port``) and Discord (``DISCORD_API_URL``), both ways, as the
    composition root builds them; and the Discord client, to watch its connection."""
    slack_client = web_client(f"xoxb-{name}", slack_api_url)
    discord_client = new_client(settings.discord.api_url)
    web = WebServer(port, host="127.0.0.1")
    web.mount(SlackInbound(slack_client, signing_secret=SECRET).routes)
    platforms = Platforms(
        {"slack": SlackOutbound(slack_client), "discord": DiscordOutbound(discord_client, f"discord-{name}")},
        {"slack": web, "discord": DiscordInbound(discord_client, f"discord-{name}")},
    )
    return platforms, discord_client


SECRET = "one-loop-secret"


async def test_slack_and_discord_run_together_in_one_loop(embedded_redis: RedisProcess, tmp_path: Path) -> None:
    hf = HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00041", "Reasoning Together")]})
    port = free_port()
    with StandIn(hf) as hf_server, SlackStandIn() as api, DiscordStandIn() as discord_api:
        document = {"channels": [{"platform": "slack", "id": "C1"}, {"platform": "discord", "id": str(CHANNEL)}]}
        env = {
            "REDIS_URL": embedded_redis.url,
            "HF_ENDPOINT": hf_server.url,
            "PAPERBOT_KEY_PREFIX": f"loop{port}:",
            "SLACK_BOT_TOKEN": "xoxb-loop",
            "SLACK_SIGNING_SECRET": SECRET,
            "DISCORD_TOKEN": "discord-loop",
            "DISCORD_API_URL": discord_api.api_url,
            "PORT": str(port),
        }
        settings = settings_from(document, env)
        platforms, discord_client = chat_platforms(settings, api.api_url, port, "loop")
        stop = asyncio.Event()
        async with open_app(settings, platforms=platforms) as app:
            service = asyncio.create_task(serve(app, stop))
            async with httpx.AsyncClient() as http:
                deadline = time.monotonic() + 20
                while not (api.accepted and discord_api.messages and discord_client.is_ready()) and time.monotonic() < deadline:  # noqa: ASYNC110 - stand-ins record from their own threads
                    await asyncio.sleep(0.05)
                assert [m["channel"] for m in api.accepted] == ["C1"]  # the first poll posted to both platforms
                assert [m["channel_id"] for m in discord_api.messages] == [str(CHANNEL)]
                assert discord_api.identified == 1  # one gateway session, in the same loop

                body = json.dumps(
                    {
                        "type": "event_callback",
                        "team_id": "T1",
                        "api_app_id": "A1",
                        "event_id": "EvLoop1",
                        "event": {
                            "type": "reaction_added",
                            "user": "USLACK",
                            "reaction": "bookmark",
                            "item": {"type": "message", "channel": "C1", "ts": api.accepted[0]["ts"]},
                        },
                    }
                )
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Slack-Request-Timestamp": stamp,
                    "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body),
                }
                response = await http.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
                assert response.status_code == 200

                raw = json.loads(fixture_text("discord/raw_reaction_add.json"))
                raw["message_id"] = discord_api.messages[0]["id"]
                discord_api.dispatch("MESSAGE_REACTION_ADD", raw)  # through the gateway, as Discord sends it

                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    slack_saved = await app.commands.saved(UserRef("slack", "USLACK"))
                    discord_saved = await app.commands.saved(UserRef("discord", "1249000000000000011"))
                    if slack_saved and discord_saved:
                        break
                    await asyncio.sleep(0.05)
                assert [s.paper.id for s in slack_saved] == ["2611.00041"]
                assert [s.paper.id for s in discord_saved] == ["2611.00041"]
            stop.set()
            await asyncio.wait_for(service, 10)


async def test_a_failing_chat_listener_is_retried_and_delivery_goes_on(
    embedded_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import bot.service.runner
    from adapters.console import ConsoleAdapter
    from bot.ports import Commands

    monkeypatch.setattr(bot.service.runner, "LISTENER_RETRY_FIRST", 0.01)  # shortened for the test (default 5 s, doubling)
    started: list[float] = []

    class Flaky:
        async def run(self, commands: Commands) -> None:  # a revoked token, then no network, then fine
            started.append(time.monotonic())
            if len(started) <= 2:
                raise RuntimeError(["invalid_auth", "Cannot connect to host"][len(started) - 1])
            await asyncio.Event().wait()

    hf = HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00051", "Delivered all the same")]})
    with StandIn(hf) as hf_server:
        env = {"REDIS_URL": embedded_redis.url, "HF_ENDPOINT": hf_server.url, "PAPERBOT_KEY_PREFIX": f"flaky{free_port()}:"}
        out = io.StringIO()
        platforms = Platforms({"console": ConsoleAdapter(out, json_lines=True)}, {"flaky": Flaky()})
        stop = asyncio.Event()
        async with open_app(settings_from({}, env), platforms=platforms) as app:
            service = asyncio.create_task(serve(app, stop))
            deadline = time.monotonic() + 10
            while (len(started) < 3 or "2611.00051" not in out.getvalue()) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(service, 10)
    assert len(started) == 3  # retried after each failure, still running at the end
    assert "2611.00051" in out.getvalue()  # delivery never stopped
    down = [r for r in caplog.records if r.getMessage() == "chat listener down; retrying"]
    assert [r.kv["problem"] for r in down] == ["RuntimeError: invalid_auth", "RuntimeError: Cannot connect to host"]  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in caplog.records)  # one line each, no traceback


async def test_discord_refusing_the_token_or_going_away_leaves_slack_running_and_recovers_on_its_own(
    embedded_redis: RedisProcess, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import bot.service.runner

    monkeypatch.setattr(bot.service.runner, "LISTENER_RETRY_FIRST", 0.2)  # shortened for the test (default 5 s, doubling)
    hf = HuggingFaceStandIn({DAYS[0]: [hf_item("2611.00071", "Slack goes on")]})
    port = free_port()
    with StandIn(hf) as hf_server, SlackStandIn() as api, DiscordStandIn() as discord_api:
        discord_api.unauthorized = True  # the Discord token was reset
        env = {
            "REDIS_URL": embedded_redis.url,
            "HF_ENDPOINT": hf_server.url,
            "PAPERBOT_KEY_PREFIX": f"down{port}:",
            "SLACK_BOT_TOKEN": "xoxb-down",
            "SLACK_SIGNING_SECRET": SECRET,
            "DISCORD_TOKEN": "discord-down",
            "DISCORD_API_URL": discord_api.api_url,
        }
        settings = settings_from({"channels": [{"platform": "slack", "id": "C1"}]}, env)
        platforms, discord_client = chat_platforms(settings, api.api_url, port, "down")
        stop = asyncio.Event()

        def down() -> list[logging.LogRecord]:
            return [
                r for r in caplog.records if r.getMessage() == "chat listener down; retrying" and r.kv["platform"] == "discord"
            ]  # type: ignore[attr-defined]

        async with open_app(settings, platforms=platforms) as app:
            service = asyncio.create_task(serve(app, stop))
            deadline = time.monotonic() + 20
            while not (api.accepted and len(down()) >= 2) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert [m["channel"] for m in api.accepted] == ["C1"]  # Slack delivered all the same
            discord_api.unauthorized = False  # someone put the new token in place
            while not discord_client.is_ready() and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert discord_client.is_ready()  # Discord came back on its own
            sessions = discord_api.identified + discord_api.resumed
            discord_api.go_away()  # then Discord is down altogether for a while
            await asyncio.sleep(2)
            discord_api.come_back()
            while discord_api.identified + discord_api.resumed == sessions and time.monotonic() < deadline + 20:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            assert discord_api.identified + discord_api.resumed > sessions  # and comes back again on its own
            stop.set()
            await asyncio.wait_for(service, 10)
    assert down()[0].kv["problem"].startswith("Discord refused DISCORD_TOKEN (401 Unauthorized)")  # type: ignore[attr-defined]
    # One line per attempt and no traceback from paperbot; discord.py's own reconnect errors carry one,
    # which the logging configuration cuts to one line (tests/unit/test_logs.py).
    assert not any(r.exc_info for r in caplog.records if r.name.startswith(("bot", "adapters")))
