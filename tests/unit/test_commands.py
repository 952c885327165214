"""The command core: every /papers subcommand and reaction, on RedisStore over fakeredis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import bibtexparser
import pytest

from bot.chat.grammar import NAMES, OPTIONS_USAGE, SUBCOMMANDS, USAGE, parse_command
from bot.model import Command, Delivery, Destination, PostRef, Reaction, UserRef
from tests.fakes import make_paper
from tests.world import World as BaseWorld

HERE = Destination("slack", "C1")
ADA, BOB = UserRef("slack", "UADA"), UserRef("slack", "UBOB")


class World(BaseWorld):
    async def ask(self, text: str, user: UserRef = ADA) -> str:  # type: ignore[override]
        return (await self.core.handle(text, user, HERE)).text


@pytest.fixture
async def world() -> AsyncIterator[World]:
    world = World()
    await world.store.commit(
        [
            make_paper("2603.00001", title="Reasoning with tokens", upvotes=9),
            make_paper("2603.00002", title="Reasoning robots", upvotes=1),
            make_paper("2603.00003", title="More reasoning", upvotes=0),
            make_paper("2603.00004", title="Protein folding"),
        ],
        [Delivery(HERE, "2603.00001")],
    )
    yield world
    await world.aclose()


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("", "help", ""),
        ("/papers", "help", ""),
        ("/papers help", "help", ""),
        ("/papers reasoning  OR cat:cs.CL", "search", "reasoning OR cat:cs.CL"),
        ("subscribe   reasoning", "subscribe", "reasoning"),
        ("/papers UNSUBSCRIBE 2", "unsubscribe", "2"),
        ("/papers export markdown", "export", "markdown"),
        ('/papers "topics"', "search", '"topics"'),
    ],
)
def test_parse_command(text: str, name: str, argument: str) -> None:
    command = parse_command(text)
    assert (command.name, command.argument) == (name, argument)


async def test_help_and_empty_commands_show_the_usage(world: World) -> None:
    assert await world.ask("/papers help") == USAGE
    assert await world.ask("/papers") == USAGE


async def test_search_pages_with_more_and_says_what_it_found(world: World) -> None:
    reply = await world.core.handle("/papers reasoning", ADA, HERE)
    assert reply.ephemeral
    assert reply.text == "3 papers match “reasoning” (showing 1–2 · /papers more for the next)"
    assert [c.paper_id for c in reply.cards] == ["2603.00001", "2603.00002"]
    more = await world.core.handle("/papers more", ADA, HERE)
    assert [c.paper_id for c in more.cards] == ["2603.00003"]
    assert more.text == "3 papers match “reasoning” (showing 3–3)"
    assert "No more papers match" in await world.ask("/papers more")
    assert "no recent search" in await world.ask("/papers more", BOB)
    assert "No paper of the last 4 cached matches “quantum”" in await world.ask("/papers quantum")


async def test_a_malformed_query_is_answered_with_what_is_wrong(world: World) -> None:
    text = await world.ask("/papers (reasoning")
    assert "a '(' is never closed at position 1" in text
    assert "/papers help" in text


async def test_subscribe_list_and_unsubscribe_by_text_or_number(world: World) -> None:
    assert "Subscribed this channel to “reasoning”. 3 recent papers match it" in await world.ask("/papers subscribe reasoning")
    assert "already subscribed" in await world.ask("/papers subscribe  reasoning ")
    await world.ask("/papers subscribe cat:cs.RO OR org:nvidia")
    assert await world.ask("/papers topics") == "This channel's topics:\n1. reasoning\n2. cat:cs.RO OR org:nvidia"
    assert await world.ask("/papers unsubscribe 1") == "Unsubscribed this channel from “reasoning”."
    assert "no subscription number 5" in await world.ask("/papers unsubscribe 5")
    assert "not subscribed to “protein”" in await world.ask("/papers unsubscribe protein")
    assert (
        await world.ask("/papers unsubscribe cat:cs.RO   OR org:nvidia")
        == "Unsubscribed this channel from “cat:cs.RO OR org:nvidia”."
    )
    assert await world.ask("/papers topics") == "This channel has no topics."
    assert "subscribe to what?" in await world.ask("/papers subscribe")


async def test_save_list_unsave_and_export_per_user(world: World) -> None:
    assert await world.ask("/papers save 2603.00002") == "Saved “Reasoning robots”."
    assert (
        await world.ask("/papers save https://arxiv.org/abs/2603.00002v3")
        == "“Reasoning robots” was already in your saved papers."
    )
    await world.ask("/papers save 2603.00004")
    saved = await world.ask("/papers saved")
    assert saved.splitlines()[1].startswith("1. Protein folding — 2603.00004")
    assert saved.splitlines()[2].startswith("2. Reasoning robots — 2603.00002")
    assert "no saved papers" in await world.ask("/papers saved", BOB)
    export = await world.core.handle("/papers export", ADA, HERE)
    assert export.text == "Your 2 saved papers as BibTeX: saved-papers.bib"
    assert export.file is not None
    assert (export.file.filename, export.file.entries) == ("saved-papers.bib", 2)
    entries = bibtexparser.parse_string(export.file.content).entries
    assert [e.fields_dict["eprint"].value for e in entries] == ["2603.00004", "2603.00002"]
    markdown = (await world.core.handle("/papers export markdown", ADA, HERE)).file
    assert markdown is not None
    assert markdown.filename == "saved-papers.md"
    assert markdown.content.startswith("- [Protein folding](https://arxiv.org/abs/2603.00004)")
    assert "export as bibtex or markdown" in await world.ask("/papers export pdf")
    assert await world.ask("/papers unsave 2603.00004") == "Removed 2603.00004 from your saved papers."
    assert "not in your saved papers" in await world.ask("/papers unsave 2603.00004")
    assert "is not an arXiv id" in await world.ask("/papers save <!channel>")
    assert "has not seen 2603.09999" in await world.ask("/papers save 2603.09999")


async def test_reactions_save_and_unsave_only_paperbot_posts_with_the_save_emoji(world: World) -> None:
    [entry] = await world.store.take("w", claim_idle=60)
    post = PostRef(HERE, "1700000000.000100")
    await world.store.done(entry, post)
    assert await world.core.react(Reaction(post, BOB, "thumbsup", added=True)) is None
    assert await world.core.react(Reaction(PostRef(HERE, "999.1"), BOB, "bookmark", added=True)) is None
    reply = await world.core.react(Reaction(post, BOB, "bookmark::skin-tone-2", added=True))
    assert reply is not None
    assert reply.text == "Saved “Reasoning with tokens”."
    again = await world.core.react(Reaction(post, BOB, ":bookmark:", added=True))
    assert again is not None
    assert "already" in again.text
    assert [s.paper.id for s in await world.library.saved(BOB)] == ["2603.00001"]
    removed = await world.core.react(Reaction(post, BOB, "bookmark", added=False))
    assert removed is not None
    assert await world.library.saved(BOB) == []


async def test_saved_papers_outlive_the_paper_cache(world: World) -> None:
    await world.ask("/papers save 2603.00001")
    await world.client.delete(world.store.key("paper", "2603.00001"))  # the cache entry expires
    assert await world.store.paper("2603.00001") is None
    assert [s.paper.id for s in await world.library.saved(ADA)] == ["2603.00001"]
    assert "already" in await world.ask("/papers save 2603.00001")


async def test_warm_up_loads_the_index_before_any_command(world: World) -> None:
    assert len(world.index) == 0
    await world.core.warm_up()
    assert len(world.index) == 4


@pytest.mark.parametrize(
    ("policy", "user", "allowed"),
    [
        ("anyone", UserRef("slack", "UANY"), True),
        ("managers", UserRef("slack", "UANY"), False),
        ("managers", UserRef("slack", "UADMIN", manager=True), True),
        ("managers", UserRef("console", "you"), True),  # the terminal is the operator
        (frozenset({"slack:UBOSS"}), UserRef("slack", "UBOSS"), True),
        (frozenset({"slack:UBOSS"}), UserRef("slack", "UANY", manager=True), False),  # the list decides
    ],
)
async def test_who_may_change_a_channels_subscriptions(policy: str | frozenset[str], user: UserRef, allowed: bool) -> None:
    world = BaseWorld(managers=policy)
    where = Destination(user.platform, "C1")
    subscribed = await world.ask("/papers subscribe robots", user, where)
    unsubscribed = await world.ask("/papers unsubscribe robots", user, where)
    await world.aclose()
    assert subscribed.startswith("Subscribed") is allowed, subscribed
    assert unsubscribed.startswith("Unsubscribed") is allowed, unsubscribed
    if not allowed:
        assert "can change this channel's subscriptions" in subscribed


async def test_top_lists_the_most_upvoted_recent_papers(world: World) -> None:
    now = datetime.now(UTC)
    await world.store.commit(
        [
            make_paper("2611.00011", title="Fresh and loved", published=now - timedelta(hours=3), upvotes=40),
            make_paper("2611.00012", title="Fresh", published=now - timedelta(hours=5), upvotes=2),
            make_paper("2611.00013", title="Last week's star", published=now - timedelta(days=5), upvotes=90),
        ],
        [],
    )
    week = await world.core.handle("/papers top", ADA, HERE)
    assert [c.paper_id for c in week.cards] == ["2611.00013", "2611.00011"]  # page size 2, most upvoted first
    assert week.text == "The most upvoted of 3 papers this week:"
    today = await world.core.handle("/papers top today", ADA, HERE)
    assert [c.paper_id for c in today.cards] == ["2611.00011", "2611.00012"]
    assert "today, week or month" in await world.ask("/papers top year")


async def test_the_command_table_and_the_handlers_are_one_set(world: World) -> None:
    """Every subcommand in the table (and so in both help texts) has a handler, and nothing else does."""
    assert set(world.core.handlers) == set(NAMES)
    assert len(NAMES) == len(set(NAMES))
    for subcommand in SUBCOMMANDS:
        assert subcommand.text in USAGE
        assert subcommand.options in OPTIONS_USAGE
    assert (await world.ask("/papers frobnicate now")).startswith("No paper")  # a bare word is a search
    reply = await world.core.run(Command("frobnicate"), ADA, HERE)
    assert reply.text.startswith("there is no /papers frobnicate")


async def test_control_and_bidi_characters_never_reach_a_stored_subscription(world: World) -> None:
    answer = await world.ask("/papers subscribe ro\u202ebots\u200b \x07agents\u2066")
    assert answer.startswith("Subscribed this channel to “robots agents”.")
    assert await world.subscriptions.topics(HERE) == ["robots agents"]
