"""The multi-workspace pieces on their own: slack_sdk's store interfaces over the Installations port,
and each workspace's token for posting, rotated through the stand-in's oauth.v2.access before it expires."""

from __future__ import annotations

import time

import fakeredis
import pytest
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.oauth import InstallationStore, StateStore, WorkspaceTokens
from adapters.slack.outbound import SlackOutbound, web_client
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination
from bot.store.installations import RedisInstallations
from tests.fakes import make_paper
from tests.slack.standin import SlackStandIn

CLIENT = ("1111.2222", "client-secret")


def installations() -> RedisInstallations:
    return RedisInstallations(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2), "t:")


async def test_an_installation_round_trips_through_slack_sdk_s_interface() -> None:
    store = InstallationStore(installations())
    installation = Installation(
        app_id="A1",
        team_id="T1",
        team_name="Lab One",
        bot_token="xoxb-1",
        bot_id="B1",
        bot_user_id="UB1",
        bot_scopes=["chat:write", "commands"],
        user_id="U1",
        installed_at=time.time(),
    )
    await store.async_save(installation)
    found = await store.async_find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert (found.team_name, found.bot_token, found.bot_scopes) == ("Lab One", "xoxb-1", ["chat:write", "commands"])
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert bot.bot_user_id == "UB1"
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None
    await store.async_delete_all(enterprise_id=None, team_id="T1")
    assert await store.async_find_installation(enterprise_id=None, team_id="T1") is None


async def test_a_state_is_good_once() -> None:
    states = StateStore(installations())
    state = await states.async_issue()
    assert len(state) >= 32
    assert await states.async_consume(state)
    assert not await states.async_consume(state)
    assert not await states.async_consume("")


async def test_a_token_about_to_expire_is_rotated_and_kept_and_posts_use_it() -> None:
    with SlackStandIn(app_credentials=CLIENT, rotating=True) as api:
        grant = api.grant("T1", "Lab One")  # what an install got: a token and its refresh token
        store = installations()
        client = web_client(None, api.api_url)
        await InstallationStore(store).async_save(
            Installation(
                app_id="A1",
                team_id="T1",
                bot_token=grant["access_token"],
                bot_id="B1",
                bot_user_id="UB1",
                bot_refresh_token=grant["refresh_token"],
                bot_token_expires_in=600,
                user_id="U1",
            )
        )
        tokens = WorkspaceTokens(store, client, *CLIENT)
        fresh = await tokens("T1")  # expires within the rotation window: renewed
        assert fresh not in (None, grant["access_token"])
        assert await tokens("T1") == fresh  # kept: good for 12 hours now
        assert (await store.find("T1") or {})["bot_token"] == fresh
        assert await tokens("T9") is None
        outbound = SlackOutbound(client, tokens=tokens, channel_interval=0)
        card = to_card(make_paper("2611.00001"), (), 280)
        await outbound.post(Destination("slack", "C1", "T1"), card)
        assert api.teams[-1] == ("chat.postMessage", "T1", "C1")
        with pytest.raises(DeliveryError, match="not installed") as refused:
            await outbound.post(Destination("slack", "C1", "T9"), card)
        assert refused.value.permanent
