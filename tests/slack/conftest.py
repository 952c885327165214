"""Slack test harness: the real bolt app and Slack adapter against the stand-in Web API."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from adapters.slack.inbound import SlackInbound
from adapters.slack.outbound import SlackOutbound, web_client
from tests.conftest import fixture_text
from tests.slack.standin import SlackStandIn
from tests.world import World

SECRET = "test-signing-secret-0123456789"


async def no_sleep(_: float) -> None:
    return None


def signed(body: str, content_type: str, *, age: float = 0, secret: str = SECRET) -> AsyncBoltRequest:
    """A request exactly as Slack would send it: the raw body signed with the signing secret."""
    timestamp = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    headers = {"content-type": [content_type], "x-slack-signature": [signature], "x-slack-request-timestamp": [timestamp]}
    return AsyncBoltRequest(body=body, headers=headers)


def slash_body(text: str, user: str = "UADA", channel: str = "C1", response_url: str = "") -> str:
    fields = dict(parse_qsl(fixture_text("slack/slash_command.txt").strip()))
    fields.update(text=text, user_id=user, channel_id=channel, response_url=response_url or fields["response_url"])
    fields["trigger_id"] = new_trigger()  # Slack gives every request its own; replays repeat one
    return urlencode(fields)


def new_trigger() -> str:
    """A fresh trigger_id, shaped like Slack's."""
    return f"{int(time.time())}.{uuid.uuid4().int % 10**9}.{uuid.uuid4().hex[:32]}"


def event_body(name: str, event_id: str, **event: Any) -> str:
    body = json.loads(fixture_text(f"slack/{name}.json"))
    body["event_id"] = event_id
    body["event"].update(event)
    return json.dumps(body)


def action_body(action_id: str, value: str, user: str, response_url: str, view: dict | None = None) -> str:
    body = json.loads(fixture_text("slack/block_actions.json"))
    body["user"]["id"] = user
    body["actions"][0].update(action_id=action_id, value=value)
    body["response_url"] = response_url
    body["trigger_id"] = new_trigger()
    if view is not None:
        body["view"] = view
        body["container"] = {"type": "view", "view_id": "V1"}
    return urlencode({"payload": json.dumps(body)})


@dataclass
class SlackHarness:
    api: SlackStandIn
    adapter: SlackOutbound
    app: AsyncApp
    world: World

    async def dispatch(self, request: AsyncBoltRequest) -> tuple[int, str]:
        response = await self.app.async_dispatch(request)
        return response.status, response.body


@pytest.fixture
def slack_api() -> Iterator[SlackStandIn]:
    with SlackStandIn() as api:
        yield api


@pytest.fixture
async def slack(slack_api: SlackStandIn, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackHarness]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)  # bolt reads these by itself; the tests give everything explicitly
    world = World()
    client = web_client("xoxb-test-token", slack_api.api_url)
    adapter = SlackOutbound(client, channel_interval=0, sleep=no_sleep)
    inbound = SlackInbound(client, signing_secret=SECRET)
    app = inbound.build_app(world.core, process_before_response=True)  # tests only: dispatch returns when done
    yield SlackHarness(slack_api, adapter, app, world)
    await world.aclose()
