"""The Slack stand-in checks every call against Slack's published spec (tests/specs/slack.py): what the
spec refuses fails the test, with the spec's reason, whichever code sent it."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.outbound import SlackOutbound, web_client
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination
from tests.fakes import make_paper
from tests.slack.standin import SlackStandIn
from tests.specs.slack import problems


async def test_conversations_history_sent_as_json_is_caught() -> None:
    with SlackStandIn(expect_violations=True) as api:
        api.accepted.append({"channel": "C1", "ts": "1.000100", "text": "a card"})
        client = AsyncWebClient(token="xoxb-1", base_url=api.api_url)
        with pytest.raises(SlackApiError) as refused:
            await client.api_call("conversations.history", json={"channel": "C1", "limit": 15})
        assert api.violations == [
            "conversations.history: takes application/x-www-form-urlencoded, not a JSON body (Slack ignores JSON for it)"
        ]
        assert refused.value.response["error"] == "channel_not_found"  # the JSON arguments were not read
        api.violations.clear()
        as_get = await client.api_call("conversations.history", http_verb="GET", params={"channel": "C1", "limit": 15})
        assert api.violations == []
        assert [m["ts"] for m in as_get.data["messages"]] == ["1.000100"]


def test_the_spec_check_refuses_what_slack_refuses() -> None:
    post = {"channel": "C1", "text": "hi"}
    assert problems("POST", "chat.postMessage", "application/json", post, bearer=True) == []
    assert problems("POST", "chat.postMessage", "application/json", {"text": "hi"}, bearer=True) == [
        "chat.postMessage: missing required argument 'channel'"
    ]
    assert problems("POST", "chat.postMessage", "application/json", post, bearer=False) == [
        "chat.postMessage: missing required argument 'token'"
    ]
    assert problems("POST", "chat.postMessage", "application/json", post | {"link_names2": 1}, bearer=True) == [
        "chat.postMessage: unknown argument 'link_names2'"
    ]
    assert problems("PUT", "chat.postMessage", "application/json", post, bearer=True)[0].startswith("chat.postMessage: the spec")
    assert problems("GET", "conversations.history", "", {"channel": "C1", "limit": "many"}, bearer=True) == [
        "conversations.history: argument 'limit' should be integer, got 'many'"
    ]
    assert problems("POST", "chat.postMesage", "application/json", post, bearer=True) == [
        "chat.postMesage: no such method in Slack's spec"
    ]


@pytest.mark.parametrize(
    ("method", "arguments"),
    [
        ("chat.postMessage", {"channel": "C1", "metadata": "{}"}),
        ("conversations.history", {"channel": "C1", "include_all_metadata": "true"}),
        ("auth.test", {"team_id": "T1"}),
    ],
)
def test_what_slack_documents_after_the_spec_is_taken_from_the_additions(method: str, arguments: dict[str, str]) -> None:
    assert problems("POST", method, "application/x-www-form-urlencoded", arguments, bearer=True) == []


async def test_a_missing_scope_a_revoked_token_and_a_distributed_apps_limits_are_slacks() -> None:
    card = to_card(make_paper("2612.00001"), (), 280)
    here = Destination("slack", "C1")
    with SlackStandIn(scopes=frozenset({"commands"})) as api:
        outbound = SlackOutbound(web_client("xoxb-1", api.api_url), channel_interval=0, sleep=no_sleep)
        with pytest.raises(DeliveryError, match="missing_scope") as refused:
            await outbound.post(here, card)
        assert refused.value.permanent
    with SlackStandIn(revoked={"xoxb-1"}) as api:
        outbound = SlackOutbound(web_client("xoxb-1", api.api_url), channel_interval=0, sleep=no_sleep)
        with pytest.raises(DeliveryError, match="token_revoked"):
            await outbound.post(here, card)
    with SlackStandIn(distributed=True) as api:
        client = AsyncWebClient(token="xoxb-1", base_url=api.api_url)
        for n in range(20):
            api.accepted.append({"channel": "C1", "ts": f"1.{n:06d}", "text": "a card"})
        first = await client.api_call("conversations.history", http_verb="GET", params={"channel": "C1", "limit": 100})
        assert len(first.data["messages"]) == 15
        with pytest.raises(SlackApiError) as limited:
            await client.api_call("conversations.history", http_verb="GET", params={"channel": "C1", "limit": 15})
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "60"


async def test_a_rate_limited_lookup_does_not_hold_the_channel() -> None:
    with SlackStandIn(distributed=True) as api:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        outbound = SlackOutbound(web_client("xoxb-1", api.api_url), channel_interval=0, sleep=sleep)
        here = Destination("slack", "C1")
        assert await outbound.find_posts(here, ["2612.00001"]) == {}
        assert await outbound.find_posts(here, ["2612.00001"]) == {}  # rate limited: "cannot tell", at once
        assert waits == []


async def no_sleep(seconds: float) -> None:
    """Retries without waiting (the tests' clock is not Slack's)."""
