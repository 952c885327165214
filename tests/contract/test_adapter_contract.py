"""The adapter contract: recording fake, console, Slack and Discord behave alike where it matters."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from adapters.console import ConsoleAdapter
from adapters.discord.client import DISCORD_API, new_client
from adapters.discord.outbound import DiscordOutbound
from adapters.slack.outbound import SlackOutbound, web_client
from bot.cards import to_card
from bot.model import Card, Destination, PostRef
from bot.ports import Adapter
from tests.discord.standin import CHANNEL, DiscordStandIn
from tests.fakes import RecordingAdapter, make_paper
from tests.slack.conftest import no_sleep
from tests.slack.standin import SlackStandIn


@dataclass
class Harness:
    adapter: Adapter
    where: Destination
    posted: Callable[[], str]  # everything that reached the (fake) platform, as text
    limit: int | None = None  # the longest summary the platform takes; None: no limit (terminal, fake)


@pytest.fixture(params=["recording", "console", "slack", "discord"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "recording":
        recording = RecordingAdapter()
        yield Harness(recording, Destination("console", "r"), lambda: json.dumps([c.__repr__() for _, c in recording.posts]))
    elif request.param == "console":
        out = io.StringIO()
        yield Harness(ConsoleAdapter(out), Destination("console", "terminal"), out.getvalue)
    elif request.param == "slack":
        with SlackStandIn() as api:
            adapter = SlackOutbound(web_client("xoxb-contract", api.api_url), channel_interval=0, sleep=no_sleep)
            yield Harness(adapter, Destination("slack", "C1"), lambda: json.dumps(api.accepted, ensure_ascii=False), 3000)
    else:
        with DiscordStandIn() as discord_api:
            client = new_client(discord_api.api_url)
            posted = lambda: json.dumps([m["embeds"] for m in discord_api.messages], ensure_ascii=False)  # noqa: E731
            try:
                adapter = DiscordOutbound(client, "discord-contract", channel_interval=0)
                yield Harness(adapter, Destination("discord", str(CHANNEL)), posted, 4096)
            finally:
                await client.close()
                new_client(DISCORD_API)


def card(title: str = "Contract paper", tldr_length: int = 280, **extra: object) -> Card:
    return to_card(make_paper("2611.00001", title=title, **extra), tldr_limit=tldr_length)


async def test_post_returns_a_reference_to_the_destination_and_shows_title_and_url(harness: Harness) -> None:
    post = await harness.adapter.post(harness.where, card())
    assert isinstance(post, PostRef)
    assert post.destination == harness.where
    assert post.message_id
    assert "Contract paper" in harness.posted()
    assert "https://arxiv.org/abs/2611.00001" in harness.posted()


async def test_a_10000_character_summary_posts_cut_to_the_limit_with_a_visible_ellipsis(harness: Harness) -> None:
    summary = "word " * 1999 + "end"
    await harness.adapter.post(harness.where, dataclasses.replace(card(), tldr=summary))
    if harness.limit is None:
        assert summary in harness.posted()
    else:
        assert "word word…" in harness.posted()
        assert "word " * (harness.limit // 5 + 1) not in harness.posted()


async def test_a_digest_returns_one_distinct_reference_per_card_in_order(harness: Harness) -> None:
    cards = [to_card(make_paper(f"2611.0000{n}", title=f"Digest paper {n}")) for n in range(7)]
    posts = await harness.adapter.post_digest(harness.where, cards, top=3)
    assert len(posts) == 7
    assert len({p.message_id for p in posts}) == 7
    assert all(p.destination == harness.where for p in posts)
    for n in range(7):
        assert f"Digest paper {n}" in harness.posted()


async def test_two_papers_get_two_references(harness: Harness) -> None:
    # (The same paper posted again to the same channel may get its first message back: Discord's nonce.)
    first = await harness.adapter.post(harness.where, card())
    second = await harness.adapter.post(harness.where, to_card(make_paper("2611.00002", title="Another paper")))
    assert first.message_id != second.message_id
