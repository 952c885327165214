"""The Discord adapter through the loopback Discord (REST and gateway): embeds, app commands, autocomplete,
reactions, buttons, refusals; and the renderer's limits."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import time
from types import SimpleNamespace

import bibtexparser
import discord
import pytest

from adapters.discord.client import new_client
from adapters.discord.outbound import DiscordOutbound, delivery_error
from adapters.discord.render import MESSAGE_TOTAL, batches, embed_for
from bot.cards import to_card
from bot.errors import DeliveryError
from bot.model import Delivery, Destination, PostRef, UserRef
from tests.discord.conftest import ADA, MANAGE_CHANNELS, DiscordHarness
from tests.discord.standin import BOT_ID, CHANNEL, GUILD
from tests.fakes import make_paper
from tests.hostile.papers import hostile_papers
from tests.world import World

HERE = Destination("discord", str(CHANNEL))


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
    [message] = discord_bot.discord.messages
    assert message["channel_id"] == str(CHANNEL)
    assert message["embeds"][0]["title"] == "Reasoning with tokens"
    [[button]] = [row["components"] for row in message["components"]]
    assert button["custom_id"] == "paper:save:2611.00001"  # a dynamic item: it works after any restart


async def test_sending_the_same_card_again_within_minutes_makes_no_second_message(discord_bot: DiscordHarness) -> None:
    # discord.py sends the nonce with enforce_nonce, so Discord answers a repeat (a process that died
    # before recording its post, taken over by another) with the message it already made.
    paper, other = make_paper("2611.00001"), make_paper("2611.00002")
    elsewhere = Destination("discord", str(CHANNEL + 1))
    posts = [
        await discord_bot.adapter.post(d, to_card(c))
        for d, c in ((HERE, paper), (HERE, paper), (elsewhere, paper), (HERE, other))
    ]
    assert posts[0] == posts[1]
    assert len(discord_bot.discord.messages) == 3
    sent = [body for method, path, body in discord_bot.discord.requests if method == "POST" and path.endswith("/messages")]
    assert all(body["enforce_nonce"] and 0 < len(body["nonce"]) <= 25 for body in sent)


async def test_a_command_is_deferred_ephemerally_and_answered_without_pings(discord_bot: DiscordHarness) -> None:
    [answer] = await discord_bot.command("subscribe", query="reasoning OR @everyone")
    callback = next(f for f in discord_bot.discord.followups if f["kind"] == "callback")
    assert (callback["type"], callback["data"]["flags"]) == (5, 64)  # deferred, ephemeral
    assert answer["flags"] == 64
    assert answer["allowed_mentions"] == {"parse": []}
    assert "Subscribed this channel to “reasoning OR @\u200beveryone”" in answer["content"]
    assert await discord_bot.world.subscriptions.topics(HERE) == ["reasoning OR @everyone"]


async def test_search_results_come_back_as_embeds(discord_bot: DiscordHarness) -> None:
    await discord_bot.world.store.commit([make_paper("2611.00001", title="Reasoning with tokens")], [])
    [answer] = await discord_bot.command("search", query="reasoning")
    assert answer["content"] == "1 paper matches “reasoning” (showing 1–1)"
    assert answer["embeds"][0]["title"] == "Reasoning with tokens"


async def test_a_page_of_twenty_results_shows_all_twenty(discord_bot: DiscordHarness) -> None:
    world = World(page_size=20)
    discord_bot.inbound.attach(world.core)
    await world.store.commit([make_paper(f"2611.{n:05d}", title=f"Reasoning step {n}") for n in range(25)], [])
    answers = await discord_bot.command("search", query="reasoning")
    await world.aclose()
    assert answers[0]["content"].startswith("25 papers match")
    assert sum(len(a.get("embeds", [])) for a in answers) == 20  # more than one message's worth, none lost


async def test_export_arrives_as_a_file(discord_bot: DiscordHarness) -> None:
    papers = [make_paper(f"2611.{n:05d}", title=f"A fairly long paper title number {n}") for n in range(40)]
    await discord_bot.world.store.commit(papers, [])
    for paper in papers:
        await discord_bot.world.core.save(ADA, paper.id)
    [answer] = await discord_bot.command("export", form="bibtex")
    [file] = answer["files"]
    assert file["filename"] == "saved-papers.bib"
    assert len(bibtexparser.parse_string(file["content"].decode()).entries) == 40  # whole, never cut


async def test_topic_autocomplete_offers_this_channels_topics(discord_bot: DiscordHarness) -> None:
    for topic in ("reasoning", "robot", "protein"):
        await discord_bot.world.subscriptions.subscribe(HERE, topic)
    typed = {"type": 3, "name": "topic", "value": "ro", "focused": True}
    data = {
        "id": "1249000000000000009",
        "name": "papers",
        "type": 1,
        "options": [{"type": 1, "name": "unsubscribe", "options": [typed]}],
    }
    payload = discord_bot._interaction("interaction_command", type=4, data=data)
    [callback] = await discord_bot._answered(payload, "callback")
    assert callback["type"] == 8
    assert [c["name"] for c in callback["data"]["choices"]] == ["robot", "protein"]
    assert [c["value"] for c in callback["data"]["choices"]] == ["2", "3"]  # numbers: a long topic is never cut


async def test_a_long_topic_is_offered_shortened_and_unsubscribed_whole(discord_bot: DiscordHarness) -> None:
    long = "reasoning " + " OR ".join(f"robot{n}" for n in range(30))  # well over a choice's 100 characters
    await discord_bot.world.subscriptions.subscribe(HERE, long)
    [answer] = await discord_bot.command("unsubscribe", topic="1")  # what the autocomplete sends back
    assert answer["content"].startswith("Unsubscribed this channel")
    assert await discord_bot.world.subscriptions.topics(HERE) == []


async def test_a_digest_numbers_its_save_buttons_and_a_reaction_on_it_saves_nothing(discord_bot: DiscordHarness) -> None:
    papers = [make_paper(f"2611.0000{n}", title=f"Digest paper {n}") for n in range(3)]
    posts = await discord_bot.adapter.post_digest(HERE, [to_card(p) for p in papers], top=3)
    [message] = discord_bot.discord.messages
    labels = [b["label"] for row in message["components"] for b in row["components"]]
    assert labels == ["Save 1 · Digest paper 0", "Save 2 · Digest paper 1", "Save 3 · Digest paper 2"]
    assert [p.message_id for p in posts] == [f"{message['id']}#{n}" for n in range(3)]
    for post, paper in zip(posts, papers, strict=True):
        await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
        (entry,) = await discord_bot.world.store.take("w", claim_idle=60)
        await discord_bot.world.store.done(entry, post)
    await discord_bot.react(message_id=message["id"])  # a reaction on the digest names no single paper
    assert await discord_bot.world.library.saved(ADA) == []
    await discord_bot.press_save(papers[1].id)
    assert [s.paper.id for s in await discord_bot.world.library.saved(ADA)] == [papers[1].id]


async def test_reaction_saves_then_listed_and_removal_unsaves(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001", title="Reasoning with tokens")
    await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
    await discord_bot.deliverer().deliver()
    [message] = discord_bot.discord.messages
    await discord_bot.react(message_id=message["id"])
    assert [s.paper.id for s in await discord_bot.world.library.saved(ADA)] == ["2611.00001"]
    [answer] = await discord_bot.command("saved")
    assert "1. Reasoning with tokens — 2611.00001" in answer["content"]
    await discord_bot.react(added=False, message_id=message["id"])
    assert await discord_bot.world.library.saved(ADA) == []


async def test_other_emoji_other_messages_and_the_bots_own_reactions_do_nothing(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001")
    await discord_bot.world.store.commit([paper], [Delivery(HERE, paper.id)])
    await discord_bot.deliverer().deliver()
    [message] = discord_bot.discord.messages
    await discord_bot.react("👍", message_id=message["id"])
    await discord_bot.react(message_id="1249000000000000999")
    await discord_bot.react(message_id=message["id"], user_id=str(BOT_ID))
    assert await discord_bot.world.library.saved(ADA) == []
    assert await discord_bot.world.library.saved(UserRef("discord", str(BOT_ID))) == []


async def test_the_save_button_works_after_a_restart(discord_bot: DiscordHarness) -> None:
    # This client never posted the card: the button is found by its custom id alone, as after a restart.
    await discord_bot.world.store.commit([make_paper("2611.00001", title="Reasoning with tokens")], [])
    callback = await discord_bot.press_save("2611.00001")
    assert (callback["type"], callback["data"]["flags"]) == (4, 64)
    assert callback["data"]["content"] == "Saved “Reasoning with tokens”."
    assert [s.paper.id for s in await discord_bot.world.library.saved(ADA)] == ["2611.00001"]


async def test_403_stops_posting_to_that_channel_and_keeps_its_papers(
    discord_bot: DiscordHarness, caplog: pytest.LogCaptureFixture
) -> None:
    discord_bot.discord.forbidden.add(CHANNEL)
    papers = [make_paper(f"2611.0000{n}") for n in range(3)]
    await discord_bot.world.store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    deliverer = discord_bot.deliverer()
    for _ in range(3):
        report = await deliverer.deliver()
    attempts = [path for method, path, _ in discord_bot.discord.requests if method == "POST" and path.endswith("/messages")]
    assert len(attempts) == 1  # one attempt, then paused: no retry loop
    assert report.pending == 2  # the refused one is a dead letter, the others wait
    assert len(await discord_bot.world.store.dead_letters()) == 1
    paused = next(r for r in caplog.records if r.getMessage().startswith("destination paused"))
    assert paused.kv["problem"].endswith("Missing Permissions")  # type: ignore[attr-defined]


def test_errors_are_translated() -> None:
    response = SimpleNamespace(status=404, reason="Not Found")
    assert delivery_error(discord.NotFound(response, {"message": "Unknown Channel"}), "x").permanent
    assert not delivery_error(discord.HTTPException(SimpleNamespace(status=503, reason="x"), "down"), "x").permanent
    assert delivery_error(discord.RateLimited(42.0), "x").retry_after == 42.0


async def test_a_non_numeric_channel_is_a_permanent_error() -> None:
    adapter = DiscordOutbound(new_client(), "t")
    with pytest.raises(DeliveryError, match="a Discord channel or user id is a number") as refused:
        await adapter.post(Destination("discord", "general"), to_card(make_paper("2611.00001")))
    assert refused.value.permanent


async def test_help_speaks_discords_command_grammar(discord_bot: DiscordHarness) -> None:
    [answer] = await discord_bot.command("help")
    assert answer["content"].startswith("/papers search query:")


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
        [answer] = await discord_bot.command("search", query=words)
        assert "match" in answer["content"], (words, answer)  # a search answer ("No paper … matches …")
    assert await discord_bot.world.subscriptions.topics(HERE) == []  # nothing subscribed


async def test_subscribing_needs_manage_channels_when_managers_is_the_rule(discord_bot: DiscordHarness) -> None:
    world = World(managers="managers")
    discord_bot.inbound.attach(world.core)
    [refused] = await discord_bot.command("subscribe", query="robots")  # without Manage Channels
    [accepted] = await discord_bot.command("subscribe", permissions=MANAGE_CHANNELS, query="robots")
    topics = await world.subscriptions.topics(HERE)
    await world.aclose()
    assert "can change this channel" in refused["content"]
    assert accepted["content"].startswith("Subscribed")
    assert topics == ["robots"]


async def test_hostile_papers_post_with_no_link_but_ours_no_mention_and_every_limit_kept(discord_bot: DiscordHarness) -> None:
    papers = hostile_papers()
    await discord_bot.world.store.commit(papers, [Delivery(HERE, p.id, ("@everyone topic",)) for p in papers])
    report = await discord_bot.deliverer().deliver()
    assert report.delivered == len(papers)  # the stand-in refuses anything over a limit (400)
    for message in discord_bot.discord.messages:
        embed = message["embeds"][0]
        untrusted = [
            embed.get("title", ""),
            embed.get("description", ""),
            *(f["value"] for f in embed.get("fields", []) if f["name"] != "Links"),
        ]
        assert all(MASKED_LINK.findall(text) == [] for text in untrusted)
        links = [f["value"] for f in embed.get("fields", []) if f["name"] == "Links"]
        assert all(target == "<" for value in links for target in re.findall(r"\]\((.)", value))  # only our <…> links
        text = json.dumps(message, ensure_ascii=False)
        assert "@everyone" not in text.replace("@\u200beveryone", "")
        assert not re.search(r"<@[!&]?\d+>", text)


async def test_a_burst_beyond_discords_channel_limit_waits_out_the_429_and_loses_nothing(discord_bot: DiscordHarness) -> None:
    cards = [to_card(make_paper(f"2611.0000{n}", title=f"Burst {n}")) for n in range(7)]
    for card in cards:  # unpaced here: the 6th message within 5 s gets 429 with retry_after
        await discord_bot.adapter.post(HERE, card)
    assert discord_bot.discord.limited >= 1
    assert [m["embeds"][0]["title"] for m in discord_bot.discord.messages] == [f"Burst {n}" for n in range(7)]


@pytest.mark.parametrize(("kind", "name"), [(15, "forum"), (4, "category")])
async def test_a_forum_or_category_channel_is_a_clear_permanent_error_for_that_channel_only(
    discord_bot: DiscordHarness, kind: int, name: str
) -> None:
    forum = Destination("discord", str(CHANNEL + 7))
    discord_bot.discord.kinds[CHANNEL + 7] = kind
    papers = [make_paper("2611.00001"), make_paper("2611.00002")]
    await discord_bot.world.store.commit(papers, [Delivery(forum, papers[0].id), Delivery(HERE, papers[1].id)])
    report = await discord_bot.deliverer().deliver()
    assert report.delivered == 1  # the text channel got its paper
    assert "not a channel paperbot can post in" in report.failed[forum.key], name
    assert await discord_bot.world.coordination.paused(forum)  # paused, one line, not retried every pass


async def test_a_card_discord_refuses_is_buried_and_the_papers_behind_it_post_in_the_same_pass(
    discord_bot: DiscordHarness,
) -> None:
    papers = [make_paper(f"2611.0000{n}", title=f"Card {n}") for n in range(3)]
    discord_bot.discord.refuse_titles.add("Card 1")
    await discord_bot.world.store.commit(papers, [Delivery(HERE, p.id) for p in papers])
    report = await discord_bot.deliverer().deliver()
    assert (report.delivered, report.dead) == (2, 1)  # the channel went on past the poisoned card
    assert [m["embeds"][0]["title"] for m in discord_bot.discord.messages] == ["Card 0", "Card 2"]
    [letter] = await discord_bot.world.store.dead_letters()
    assert letter["paper"] == "2611.00001"
    assert "HTTP 400" in letter["reason"]
    assert not await discord_bot.world.coordination.paused(HERE)


async def test_an_edit_patches_the_same_message_and_an_unknown_one_is_gone(discord_bot: DiscordHarness) -> None:
    paper = make_paper("2611.00001", title="Reasoning with tokens")
    post = await discord_bot.adapter.post(HERE, to_card(paper))
    updated = dataclasses.replace(paper, links=dataclasses.replace(paper.links, code="https://github.com/a/b"))
    await discord_bot.adapter.edit(post, to_card(updated))
    [edited] = discord_bot.discord.edits
    assert edited["id"] == post.message_id
    assert "https://github.com/a/b" in json.dumps(edited["embeds"])
    assert len(discord_bot.discord.messages) == 1
    assert not discord_bot.discord.pinging
    with pytest.raises(DeliveryError) as gone:
        await discord_bot.adapter.edit(PostRef(HERE, "1249000000000999999"), to_card(updated))
    assert gone.value.gone


async def test_a_server_that_removes_the_bot_loses_its_subscriptions_and_queue_and_no_other(discord_bot: DiscordHarness) -> None:
    elsewhere = Destination("discord", "1249000000000000777")  # a channel of another server
    world = discord_bot.world
    for where in (HERE, elsewhere):
        await world.subscriptions.subscribe(where, "robots")
    paper = make_paper("2611.00001")
    await world.store.commit([paper], [Delivery(HERE, paper.id), Delivery(elsewhere, paper.id)])
    discord_bot.discord.dispatch("GUILD_DELETE", {"id": str(GUILD)})  # kicked: no "unavailable"
    await until_async(lambda: world.subscriptions.everything(), lambda found: HERE not in found)
    assert await world.subscriptions.everything() == {elsewhere: ["robots"]}
    assert [e.delivery.destination for e in await world.store.take("w", claim_idle=60)] == [elsewhere]


async def until_async(read, holds, seconds: float = 15) -> None:  # type: ignore[no-untyped-def]
    """Until what ``read`` returns ``holds`` (the event is handled on the client's own time)."""
    deadline = time.monotonic() + seconds
    while not holds(await read()):
        assert time.monotonic() < deadline, "waited in vain"
        await asyncio.sleep(0.02)
