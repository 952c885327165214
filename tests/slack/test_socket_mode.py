"""Socket Mode end to end (commands, reactions, the Save button, the App Home, reconnects, a wrong token):
the real bolt ``AsyncSocketModeHandler`` (slack_sdk's aiohttp client) through
``SlackInbound.run``, against the stand-in Web API and a loopback Socket Mode websocket."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

import pytest

from adapters.slack.inbound import SlackInbound
from adapters.slack.outbound import web_client
from bot.errors import ListenerError
from bot.model import UserRef
from bot.service.runner import supervise
from tests.conftest import fixture_text
from tests.slack.conftest import SlackHarness, slash_body
from tests.slack.socket_standin import SocketModeStandIn
from tests.slack.test_app import post_paper

APP_TOKEN = "xapp-1-A1-socket-test"


async def until(condition: Callable[[], bool], seconds: float = 15) -> None:
    """Until ``condition`` holds (the stand-ins record from their own threads)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def socket_mode(slack: SlackHarness) -> AsyncIterator[tuple[SocketModeStandIn, SlackInbound]]:
    """paperbot's Slack listener connected to a Socket Mode stand-in (one connection made), then stopped."""
    with SocketModeStandIn() as socket:
        slack.api.app_tokens.add(APP_TOKEN)
        slack.api.socket_url = socket.url
        inbound = SlackInbound(web_client("xoxb-test-token", slack.api.api_url), app_token=APP_TOKEN)
        running = asyncio.create_task(inbound.run(slack.world.core))
        try:
            await until(lambda: socket.connections == 1)
            yield socket, inbound
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def command(text: str) -> dict[str, str]:
    """A slash command's payload as Socket Mode carries it: the form fields, as JSON."""
    return dict(parse_qsl(slash_body(text)))


def event(name: str, event_id: str, **fields: object) -> dict[str, object]:
    body = json.loads(fixture_text(f"slack/{name}.json"))
    body["event_id"] = event_id
    body["event"].update(fields)
    return body


async def test_commands_reactions_buttons_and_home_over_socket_mode_and_reconnects(slack: SlackHarness) -> None:
    ts = await post_paper(slack)
    async with socket_mode(slack) as (socket, _):
        # A slash command is answered in the acknowledgement itself.
        sent = socket.send("slash_commands", command("reasoning"), accepts_response_payload=True)
        await until(lambda: sent in socket.acks)
        assert socket.acks[sent]["payload"]["text"] == "1 paper matches “reasoning” (showing 1–1)"

        # A reaction saves the paper it is on.
        reaction = {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": ts}}
        sent = socket.send("events_api", event("reaction_added", "EvSock1", **reaction))
        await until(lambda: sent in socket.acks)
        ada = UserRef("slack", "UADA")
        await until(lambda: bool(slack.api.methods("chat.postEphemeral")))
        assert [s.paper.id for s in await slack.world.library.saved(ada)] == ["2611.00001"]

        # The Save button saves for whoever pressed it, and says so.
        press = json.loads(fixture_text("slack/block_actions.json"))
        press["user"]["id"] = "UBOB"
        press["actions"][0].update(action_id="paper_save", value="2611.00001")
        press["response_url"] = f"{slack.api.url}/hooks/sock-save"
        sent = socket.send("interactive", press)
        await until(lambda: bool(slack.api.methods("sock-save")))
        assert slack.api.methods("sock-save")[0]["text"] == "Saved “Reasoning with tokens”."
        assert [s.paper.id for s in await slack.world.library.saved(UserRef("slack", "UBOB"))] == ["2611.00001"]

        # The App Home shows it.
        sent = socket.send("events_api", event("app_home_opened", "EvSock2", user="UADA"))
        await until(lambda: bool(slack.api.methods("views.publish")))
        assert "Reasoning with tokens" in json.dumps(slack.api.methods("views.publish")[-1])

        # Slack asks for a new connection, then the network drops one: both times it comes back.
        socket.disconnect("refresh_requested")
        await until(lambda: socket.connections == 2)
        socket.drop()
        await until(lambda: socket.connections == 3)
        sent = socket.send("slash_commands", command("help"), accepts_response_payload=True)
        await until(lambda: sent in socket.acks)
        assert socket.acks[sent]["payload"]["text"].startswith("/papers &lt;query&gt;")
        assert len(slack.api.methods("apps.connections.open")) >= 3  # a fresh URL for each connection
        await asyncio.sleep(socket.ack_seconds)
        assert (socket.late, socket.resent) == (0, [])  # every envelope acknowledged within Slack's 3 s


@pytest.mark.parametrize("token", ["xapp-1-A1-revoked", "xoxb-a-bot-token-by-mistake"])
async def test_a_wrong_app_token_is_one_clear_line_and_a_retry_with_backoff(
    slack: SlackHarness, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    inbound = SlackInbound(web_client("xoxb-test-token", slack.api.api_url), app_token=token)
    with pytest.raises(ListenerError, match=r"Slack refused SLACK_APP_TOKEN \((invalid_auth|not_allowed_token_type)\)"):
        await inbound.run(slack.world.core)

    caplog.set_level(logging.INFO)
    supervised = asyncio.create_task(supervise("slack", inbound, slack.world.core))
    await until(lambda: any("chat listener down" in r.getMessage() for r in caplog.records))
    await asyncio.sleep(0.5)
    supervised.cancel()
    await asyncio.gather(supervised, return_exceptions=True)
    down = [r for r in caplog.records if "chat listener down" in r.getMessage()]
    assert len(down) == 1  # then silence while it backs off (5 s, doubling)
    assert "connections:write" in down[0].kv["problem"]  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in caplog.records)  # no traceback anywhere
    assert token not in caplog.text


async def test_an_event_slack_sends_again_is_handled_once_and_readiness_follows_the_socket(slack: SlackHarness) -> None:
    """Slack retries an envelope it thinks was not acknowledged: the same event, a new envelope; the
    reaction saves once and is confirmed once."""
    ts = await post_paper(slack)
    async with socket_mode(slack) as (socket, inbound):
        reaction = {"user": "UADA", "reaction": "bookmark", "item": {"type": "message", "channel": "C1", "ts": ts}}
        body = event("reaction_added", "EvRetry1", **reaction)
        first = socket.send("events_api", body)
        again = socket.send("events_api", body, attempt=1)
        await until(lambda: first in socket.acks and again in socket.acks)
        await asyncio.sleep(0.3)
        assert len(slack.api.methods("chat.postEphemeral")) == 1
        assert [s.paper.id for s in await slack.world.library.saved(UserRef("slack", "UADA"))] == ["2611.00001"]
        # What /readyz reports is the connection as it is now: down while Slack is away, up once back.
        assert await inbound.is_connected()
        socket.go_away()
        for _ in range(200):
            if not await inbound.is_connected():
                break
            await asyncio.sleep(0.05)
        assert not await inbound.is_connected()
        socket.come_back()
        for _ in range(300):
            if await inbound.is_connected():
                break
            await asyncio.sleep(0.05)
        assert await inbound.is_connected()
