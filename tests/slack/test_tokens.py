"""Token rotation under load: renewals are single-flight across channels and processes, and a failed
renewal delays only its own workspace (Slack's refresh tokens are single-use)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.oauth import InstallationStore
from adapters.slack.outbound import SlackOutbound, web_client
from adapters.slack.tokens import TokenKeeper, WorkspaceTokens
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination
from tests.fakes import make_paper
from tests.slack.standin import SlackStandIn
from tests.slack.test_oauth import CLIENT, with_locks

CARD = to_card(make_paper("2611.00001"), (), 280)


async def install(api: SlackStandIn, store: object, team: str, expires_in: int) -> str:
    grant = api.grant(team, f"Lab {team}")
    await InstallationStore(store).async_save(  # type: ignore[arg-type]
        Installation(
            app_id="A1",
            team_id=team,
            bot_token=grant["access_token"],
            bot_id=f"B{team}",
            bot_user_id=f"UB{team}",
            bot_refresh_token=grant["refresh_token"],
            bot_token_expires_in=expires_in,
            user_id="U1",
        )
    )
    return str(grant["access_token"])


async def test_three_channels_and_two_processes_renew_an_expiring_token_once() -> None:
    with SlackStandIn(app_credentials=CLIENT, rotating=True) as api:
        store, locks = with_locks()
        await install(api, store, "T1", expires_in=600)  # within the rotation window
        client = web_client(None, api.api_url)
        processes = [
            SlackOutbound(client, tokens=WorkspaceTokens(TokenKeeper(store, client, *CLIENT, locks=locks)), channel_interval=0)
            for _ in range(2)
        ]
        posts = [processes[n % 2].post(Destination("slack", f"C{n}", "T1"), CARD) for n in range(6)]
        await asyncio.gather(*posts)
        assert len(api.methods("oauth.v2.access")) == 1
        assert sorted(channel for method, _, channel in api.teams if method == "chat.postMessage") == [f"C{n}" for n in range(6)]
        renewed = (await store.find("T1") or {})["bot_token"]
        assert {payload.get("channel"): renewed for payload in api.accepted} == {f"C{n}": renewed for n in range(6)}


async def test_a_failing_renewal_delays_only_its_workspace(caplog: pytest.LogCaptureFixture) -> None:
    with SlackStandIn(app_credentials=CLIENT, rotating=True) as api:
        store, locks = with_locks()
        await install(api, store, "T1", expires_in=-10)  # expired: it cannot be used any more
        await install(api, store, "T2", expires_in=43200)
        still_good = await install(api, store, "T3", expires_in=600)  # expiring, still valid
        client = web_client(None, api.api_url)
        outbound = SlackOutbound(
            client, tokens=WorkspaceTokens(TokenKeeper(store, client, *CLIENT, locks=locks)), channel_interval=0
        )
        api.fail("oauth.v2.access", *[(500, {}, {"ok": False, "error": "fatal_error"})] * 2)
        with pytest.raises(DeliveryError, match="T1: its token expired and could not be renewed") as failed:
            await outbound.post(Destination("slack", "C1", "T1"), CARD)
        assert not failed.value.permanent  # retried later, with backoff, like any transient failure
        await outbound.post(Destination("slack", "C2", "T2"), CARD)  # the other workspace never noticed
        with caplog.at_level(logging.WARNING, logger="adapters.slack.tokens"):
            await outbound.post(Destination("slack", "C3", "T3"), CARD)  # posts with the token it has
        assert api.accepted[-1]["channel"] == "C3"
        assert (await store.find("T3") or {})["bot_token"] == still_good
        assert [r.getMessage() for r in caplog.records] == ["could not renew a workspace's token; using it while it lasts"]
        await outbound.post(Destination("slack", "C1", "T1"), CARD)  # oauth.v2.access is back: renewed, posted
        assert api.accepted[-1]["channel"] == "C1"


async def test_bolt_is_never_handed_a_refresh_token() -> None:
    with SlackStandIn(app_credentials=CLIENT, rotating=True) as api:
        store, locks = with_locks()
        await install(api, store, "T1", expires_in=600)
        keeper = TokenKeeper(store, web_client(None, api.api_url), *CLIENT, locks=locks)
        found = await InstallationStore(store, keeper).async_find_installation(enterprise_id=None, team_id="T1")
        assert found is not None
        assert found.bot_refresh_token is None
        assert found.bot_token == (await store.find("T1") or {})["bot_token"]  # already renewed, by the keeper
        assert len(api.methods("oauth.v2.access")) == 1
