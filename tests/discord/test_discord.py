"""The Discord adapter with real discord.py objects: embeds, app commands, reactions, buttons, refusals."""

from __future__ import annotations

import dataclasses
import json
import re
from types import SimpleNamespace

import discord
import pytest

from adapters.discord.outbound import delivery_error
from adapters.discord.render import MESSAGE_TOTAL, batches, embed_for
from adapters.discord.translate import SaveButton
from bot.cards import to_card
from bot.model import Delivery, Destination, UserRef
from tests.conftest import fixture_json, fixture_text
from tests.discord.conftest import BOT_ID, CHANNEL, DiscordHarness, Outbox, discord_pair, logged_in
from tests.fakes import make_paper
from tests.hostile.papers import hostile_papers
from tests.world import World

HERE = Destination("discord", str(CHANNEL))
ADA = UserRef("discord", "1249000000000000011")


@pytest.mark.parametrize("paper", hostile_papers(), ids=["mentions", "20k-abstract", "600-title", "250-authors", "unicode"])
def test_embeds_are_within_every_limit_and_inert(paper) -> None:  # type: ignore[no-untyped-def]
    embed = embed_for(to_card(paper, why=("@everyone topic",), tldr_limit=2000))
    data = embed.to_dict()
    assert len(embed) <= MESSAGE_TOTAL
    assert len(data.get("title", "")) <= 256
    assert len(data.get("description", "")) <= 4096
    assert len(data.get("fields", [])) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in data.get("fields", []))
    assert len(data["footer"]["text"]) <= 2048
    text = json.dumps(data, ensure_ascii=False)
    assert "@everyone" not in text.replace("@\u200beveryone", "")
    for mention in ("<@123456789012345678>", "<@&876543210987654321>", "<@!123456789012345678>"):
        assert mention not in text


def test_injected_markdown_and_mentions_are_escaped() -> None:
    data = embed_for(to_card(hostile_papers()[0])).to_dict()
    assert "\\*\\*bold\\*\\*" in data["title"]
    assert "@\u200beveryone" in data["title"]
    assert data["url"] == "https://arxiv.org/abs/2611.00101"


def test_digest_batches_respect_ten_embeds_and_6000_characters() -> None:
    embeds = [embed_for(to_card(p), budget=600) for p in hostile_papers() * 5]
    grouped = batches(embeds)
    assert sum(len(b) for b in grouped) == 25
    assert all(len(b) <= 10 and sum(len(e) for e in b) <= MESSAGE_TOTAL for b in grouped)


async def test_a_paper_posts_as_an_embed_with_a_persistent_save_button(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001", title="Reasoning with tokens")
    await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
    report = await discord_bot.deliverer().deliver()
    assert report.delivered == 1
    [(channel, message)] = discord_bot.outbox.sent
    assert channel == CHANNEL
    assert message["embeds"][0].title == "Reasoning with tokens"
    [button] = message["view"].children
    assert button.custom_id == "paper:save:2611.00001"
    assert message["view"].timeout is None


async def test_sending_the_same_card_again_carries_the_same_nonce(discord_bot: DiscordHarness) -> None:
    # discord.py sends a nonce with enforce_nonce, so Discord answers a repeat within minutes (a process
    # that died before recording its post, taken over) with the message it already made.
    paper, other = make_paper("2611.00001"), make_paper("2611.00002")
    elsewhere = Destination("discord", str(CHANNEL + 1))
    for destination, card in ((HERE, paper), (HERE, paper), (elsewhere, paper), (HERE, other)):
        await discord_bot.adapter.post(destination, to_card(card))
    nonces = [message["nonce"] for _, message in discord_bot.outbox.sent]
    assert nonces[0] == nonces[1]
    assert len(set(nonces)) == 3
    assert all(isinstance(n, str) and 0 < len(n) <= 25 for n in nonces)


async def test_a_command_is_deferred_ephemerally_and_answered_without_pings(discord_bot: DiscordHarness) -> None:
    await discord_bot.inbound.tree._call(discord_bot.command("subscribe", query="reasoning OR @everyone"))
    defer, followup = discord_bot.responses
    assert defer[2]["payload"] == {"type": 5, "data": {"flags": 64}}
    payload = followup[2]["payload"]
    assert payload["flags"] == 64
    assert payload["allowed_mentions"] == {"parse": []}
    assert "Subscribed this channel to “reasoning OR @\u200beveryone”" in payload["content"]
    assert await discord_bot.world.subscriptions.topics(HERE) == ["reasoning OR @everyone"]


async def test_search_results_come_back_as_embeds(discord_bot: DiscordHarness) -> None:
    await discord_bot.world.store.commit([make_paper("2611.00001", title="Reasoning with tokens")], [])
    await discord_bot.inbound.tree._call(discord_bot.command("search", query="reasoning"))
    payload = discord_bot.responses[-1][2]["payload"]
    assert payload["content"] == "1 paper matches “reasoning” (showing 1–1)"
    assert payload["embeds"][0]["title"] == "Reasoning with tokens"


async def test_a_page_of_twenty_results_shows_all_twenty(discord_bot: DiscordHarness) -> None:
    world = World(page_size=20)
    discord_bot.inbound.attach(world.core)
    await world.store.commit([make_paper(f"2611.{n:05d}", title=f"Reasoning step {n}") for n in range(25)], [])
    await discord_bot.inbound.tree._call(discord_bot.command("search", query="reasoning"))
    followups = [r[2]["payload"] for r in discord_bot.responses[1:]]
    assert followups[0]["content"].startswith("25 papers match")
    assert sum(len(p.get("embeds", [])) for p in followups) == 20  # more than one message's worth, none lost
    assert all(len(p.get("embeds", [])) <= 10 for p in followups)
    await world.aclose()


async def test_export_arrives_as_a_file(discord_bot: DiscordHarness) -> None:
    papers = [make_paper(f"2611.{n:05d}", title=f"A fairly long paper title number {n}") for n in range(40)]
    await discord_bot.world.store.commit(papers, [])
    for paper in papers:
        await discord_bot.world.core.save(ADA, paper.id)
    await discord_bot.inbound.tree._call(discord_bot.command("export", form="bibtex"))
    assert discord_bot.responses[-1][2]["files"] == ["saved-papers.bib"]


async def test_topic_autocomplete_offers_this_channels_topics(discord_bot: DiscordHarness) -> None:
    for topic in ("reasoning", "robot", "protein"):
        await discord_bot.world.subscriptions.subscribe(HERE, topic)
    choices = await discord_bot.inbound.translator.topic_choices(discord_bot.command("topics"), "ro")
    assert [c.value for c in choices] == ["robot", "protein"]


async def test_reaction_saves_then_listed_and_removal_unsaves(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001", title="Reasoning with tokens")
    await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
    await discord_bot.deliverer().deliver()
    await discord_bot.inbound.translator.on_raw_reaction_add(discord_bot.reaction())
    assert [s.paper.id for s in await discord_bot.world.library.saved(ADA)] == ["2611.00001"]
    await discord_bot.inbound.tree._call(discord_bot.command("saved"))
    assert "1. Reasoning with tokens — 2611.00001" in discord_bot.responses[-1][2]["payload"]["content"]
    await discord_bot.inbound.translator.on_raw_reaction_remove(discord_bot.reaction(event="REACTION_REMOVE"))
    assert await discord_bot.world.library.saved(ADA) == []


async def test_other_emoji_other_messages_and_the_bots_own_reactions_do_nothing(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001")
    await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
    await discord_bot.deliverer().deliver()
    await discord_bot.inbound.translator.on_raw_reaction_add(discord_bot.reaction(emoji="👍"))
    await discord_bot.inbound.translator.on_raw_reaction_add(discord_bot.reaction(message_id="1249000000000000999"))
    await discord_bot.inbound.translator.on_raw_reaction_add(discord_bot.reaction(user_id=str(BOT_ID)))
    assert await discord_bot.world.library.saved(ADA) == []
    assert await discord_bot.world.library.saved(UserRef("discord", str(BOT_ID))) == []


async def test_the_save_button_works_after_a_restart(discord_bot: DiscordHarness) -> None:
    await discord_bot.world.store.commit([make_paper("2611.00001", title="Reasoning with tokens")], [])
    _, restarted = discord_pair("discord-test-token", Outbox().send)  # a new process: no view in memory
    logged_in(restarted.client)
    restarted.attach(discord_bot.world.core)
    interaction = discord.Interaction(data=fixture_json("discord/interaction_button.json"), state=restarted.client._connection)
    match = SaveButton.__discord_ui_compiled_template__.fullmatch(interaction.data["custom_id"])  # type: ignore[index]
    button = await SaveButton.from_custom_id(interaction, discord.ui.Button(custom_id=interaction.data["custom_id"]), match)
    await button.callback(interaction)
    payload = discord_bot.responses[-1][2]["payload"]
    assert payload["type"] == 4
    assert payload["data"]["flags"] == 64
    assert payload["data"]["content"] == "Saved “Reasoning with tokens”."
    assert [s.paper.id for s in await discord_bot.world.library.saved(ADA)] == ["2611.00001"]


async def test_403_stops_posting_to_that_channel_and_keeps_its_papers(
    discord_bot: DiscordHarness, caplog: pytest.LogCaptureFixture
) -> None:
    forbidden = discord.Forbidden(
        SimpleNamespace(status=403, reason="Forbidden"), {"code": 50013, "message": "Missing Permissions"}
    )
    discord_bot.outbox.refuse = forbidden
    papers = [make_paper(f"2611.0000{n}") for n in range(3)]
    await discord_bot.world.store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    deliverer = discord_bot.deliverer()
    calls = 0
    original = discord_bot.outbox.send

    async def counting(channel_id: int, message: dict) -> int:
        nonlocal calls
        calls += 1
        return await original(channel_id, message)

    discord_bot.adapter._send = counting  # count attempts at the boundary
    for _ in range(3):
        report = await deliverer.deliver()
    assert calls == 1  # one attempt, then paused: no retry loop
    assert report.pending == 2  # the refused one is a dead letter, the others wait
    assert len(await discord_bot.world.store.dead_letters()) == 1
    assert (
        next(r for r in caplog.records if r.getMessage().startswith("destination paused"))
        .kv["problem"]
        .endswith("Missing Permissions")
    )  # type: ignore[attr-defined]


def test_errors_are_translated() -> None:
    response = SimpleNamespace(status=404, reason="Not Found")
    assert delivery_error(discord.NotFound(response, {"message": "Unknown Channel"}), "x").permanent
    assert not delivery_error(discord.HTTPException(SimpleNamespace(status=503, reason="x"), "down"), "x").permanent
    assert delivery_error(discord.RateLimited(42.0), "x").retry_after == 42.0


async def test_a_non_numeric_channel_is_a_permanent_error() -> None:
    world = World()
    adapter, _ = discord_pair("t", Outbox().send)
    with pytest.raises(Exception, match="a Discord channel id is a number"):
        await adapter.post(Destination("discord", "general"), to_card(make_paper("2611.00001")))
    await world.aclose()


async def test_help_speaks_discords_command_grammar(discord_bot: DiscordHarness) -> None:
    await discord_bot.inbound.tree._call(discord_bot.command("help"))
    assert discord_bot.responses[-1][2]["payload"]["content"].startswith("/papers search query:")


MASKED_LINK = re.compile(r"(?<!\\)\[([^\]]*)\]\(")  # an unescaped "[label](" starts a live masked link


def test_a_crafted_project_url_cannot_add_a_link_of_its_own() -> None:
    phish = "https://example.com/)**[FREE NITRO](https://phish.example/)**"
    card = dataclasses.replace(
        to_card(make_paper("2611.00001")), links=(("Code", phish), ("PDF", "https://arxiv.org/pdf/2611.00001"))
    )
    [links] = [f.value for f in embed_for(card).fields if f.name == "Links"]
    assert MASKED_LINK.findall(links) == ["Code", "PDF"]  # our two links, nothing the URL smuggled in
    assert "%5BFREE%20NITRO%5D" in links  # the whole URL stays inside our link, percent-encoded
    assert all(target.startswith("<") for target in re.findall(r"\]\((.)", links))  # <…>-wrapped


def test_untrusted_text_with_two_masked_links_and_a_bare_url_has_no_live_link() -> None:
    abstract = "See [one](https://a.example) and [two](https://b.example), or https://c.example ."
    paper = make_paper("2611.00002", title="[Click](https://t.example) me", abstract=abstract)
    embed = embed_for(to_card(paper))
    texts = [embed.title or "", embed.description or "", *(f.value for f in embed.fields if f.name != "Links")]
    assert [MASKED_LINK.findall(text) for text in texts] == [[] for _ in texts]
    assert "https://" not in (embed.description or "")  # bare URLs broken, so never autolinked


async def test_a_typed_search_is_never_read_as_another_subcommand(discord_bot: DiscordHarness) -> None:
    for words in ("subscribe everything", "export controls", "more is different", "topics in robotics"):
        await discord_bot.inbound.tree._call(discord_bot.command("search", query=words))
        reply = discord_bot.responses[-1][2]["payload"]["content"]
        assert "match" in reply, (words, reply)  # a search answer ("No paper … matches …"), whatever the words
    assert await discord_bot.world.subscriptions.topics(Destination("discord", str(CHANNEL))) == []  # nothing subscribed


async def test_subscribing_needs_manage_channels_when_managers_is_the_rule(discord_bot: DiscordHarness) -> None:
    world = World(managers="managers")
    discord_bot.inbound.attach(world.core)
    await discord_bot.inbound.tree._call(discord_bot.command("subscribe", query="robots"))  # the fixture member lacks it
    refused = discord_bot.responses[-1][2]["payload"]["content"]
    member = json.loads(fixture_text("discord/interaction_command.json"))["member"]
    manager = discord_bot.interaction(
        "interaction_command", data=discord_bot.command("subscribe", query="robots").data, member={**member, "permissions": "16"}
    )
    await discord_bot.inbound.tree._call(manager)
    accepted = discord_bot.responses[-1][2]["payload"]["content"]
    topics = await world.subscriptions.topics(Destination("discord", str(CHANNEL)))
    await world.aclose()
    assert "can change this channel" in refused
    assert accepted.startswith("Subscribed")
    assert topics == ["robots"]
