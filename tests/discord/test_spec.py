"""The Discord stand-in checks every request against Discord's published OpenAPI (tests/specs/discord.py)."""

from __future__ import annotations

import aiohttp

from tests.discord.standin import CHANNEL, DiscordStandIn
from tests.specs.discord import problems, route

MESSAGES = "/channels/1249000000000000005/messages"


async def test_a_request_the_spec_refuses_is_recorded_with_its_reason() -> None:
    with DiscordStandIn() as discord:
        discord.expect_violations = True
        async with aiohttp.ClientSession(headers={"Authorization": "Bot t0ken"}) as http:
            card = {"embeds": [{"title": "T" * 257}], "allowed_mentions": {"parse": []}}
            async with http.post(f"{discord.api_url}/channels/{CHANNEL}/messages", json=card) as answer:
                assert answer.status == 200  # the stand-in answers; the check is what fails the test
            async with http.post(f"{discord.api_url}/channels/{CHANNEL}/messages", json={"contnet": "hi"}):
                pass
    assert len(discord.violations) == 2
    assert discord.violations[1] == "POST /channels/{channel_id}/messages: unknown field 'contnet'"
    assert discord.violations[0] == "POST /channels/{channel_id}/messages: embeds/0/title: breaks maxLength 256"


def test_routes_verbs_queries_and_bodies_are_checked() -> None:
    assert route(MESSAGES) == "/channels/{channel_id}/messages"
    assert route("/users/@me") == "/users/@me"  # the literal route, not /users/{user_id}
    assert problems("GET", "/nowhere", {}, "", None) == ["GET /nowhere: no such route in Discord's spec"]
    assert problems("PUT", MESSAGES, {}, "application/json", {}) == [
        "PUT /channels/{channel_id}/messages: the spec lists GET/POST"
    ]
    assert problems("GET", MESSAGES, {"limit": "15"}, "", None) == []
    assert problems("GET", MESSAGES, {"limit": "101"}, "", None) == [
        "GET /channels/{channel_id}/messages: query limit: breaks maximum 100"
    ]
    assert problems("GET", MESSAGES, {"count": "5"}, "", None) == [
        "GET /channels/{channel_id}/messages: unknown query parameter 'count'"
    ]
    assert problems("POST", MESSAGES, {}, "text/plain", "hi")[0].endswith("not text/plain")


def test_what_discord_takes_beyond_its_spec_passes() -> None:
    assert problems("POST", "/users/@me/channels", {}, "application/json", {"recipient_id": 1249000000000000011}) == []
    callback = "/interactions/1/tok/callback"
    assert problems("POST", callback, {"with_response": "1"}, "application/json", {"type": 1}) == []
    edit = {"content": "x", "tts": False}
    assert problems("PATCH", f"{MESSAGES}/1249000000000001001", {}, "application/json", edit) == []
