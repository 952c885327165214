"""The multi-workspace pieces on their own: slack_sdk's store interfaces over the Installations port,
and each workspace's token for posting, rotated through the stand-in's oauth.v2.access before it expires."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.inbound import SlackInbound
from adapters.slack.oauth import InstallationStore, StateStore, oauth_flow
from adapters.slack.outbound import SlackOutbound, web_client
from adapters.slack.tokens import TokenKeeper, WorkspaceTokens
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Destination
from bot.store.coordination import RedisCoordination
from bot.store.installations import RedisInstallations
from tests.fakes import make_paper
from tests.slack.conftest import SECRET, signed
from tests.slack.standin import SlackStandIn
from tests.world import World

CLIENT = ("1111.2222", "client-secret")


def installations() -> RedisInstallations:
    return RedisInstallations(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2), "t:")


def with_locks() -> tuple[RedisInstallations, RedisCoordination]:
    """Installations and the locks token renewals take, on one server (as in a deployment)."""
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), protocol=2)
    return RedisInstallations(client, "t:"), RedisCoordination(client, "t:")


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
        store, locks = with_locks()
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
        tokens = WorkspaceTokens(TokenKeeper(store, client, *CLIENT, locks=locks))
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


async def revoked(world: World, api: SlackStandIn, tokens: dict[str, list[str]]) -> None:
    """A signed tokens_revoked event for T1 through the real bolt app in multi-workspace mode."""
    client = web_client(None, api.api_url)
    flow = oauth_flow(
        RedisInstallations(world.client, "c:"), client, client_id=CLIENT[0], client_secret=CLIENT[1], command="/papers"
    )
    app = SlackInbound(client, signing_secret=SECRET, oauth=flow).build_app(world.core, process_before_response=True)
    body = {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": f"Ev{len(tokens)}{sorted(tokens)}"}
    body |= {"event_time": int(time.time()), "event": {"type": "tokens_revoked", "tokens": tokens}}
    answer = await app.async_dispatch(signed(json.dumps(body), "application/json"))
    assert answer.status == 200


async def test_a_revoked_bot_token_forgets_the_workspace_and_a_user_token_alone_does_not() -> None:
    world = World()
    with SlackStandIn(app_credentials=CLIENT) as api:
        api.workspaces["xoxb-T1"] = "T1"
        installations = RedisInstallations(world.client, "c:")
        await InstallationStore(installations).async_save(
            Installation(app_id="A1", team_id="T1", bot_token="xoxb-T1", bot_id="B1", bot_user_id="UB1", user_id="U1")
        )
        here, other = Destination("slack", "C1", "T1"), Destination("slack", "C1", "T2")
        for where in (here, other):
            await world.subscriptions.subscribe(where, "robots")
        await revoked(world, api, {"oauth": ["U1"]})  # a person's own token: paperbot uses none
        assert set(await world.subscriptions.everything()) == {here, other}
        await revoked(world, api, {"bot": ["UB1"]})
        assert set(await world.subscriptions.everything()) == {other}
        assert await installations.find("T1") is None
    await world.aclose()
