"""Cards a screen reader and a phone read well, on both platforms: upvotes in words, alt text that does
not repeat the title, plain footers (no stray backslashes), the default button style, short digests."""

from __future__ import annotations

import dataclasses

from adapters.discord.render import batches, embed_for
from adapters.slack.render import THUMBNAIL_ALT, card_blocks
from bot.cards import to_card
from bot.model import Links
from tests.fakes import make_paper

PAPER = make_paper(
    "2611.00042",
    title="Seeing *All* the Things",
    upvotes=7,
    thumbnail="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2611.00042.png",
    links=Links(
        abstract="https://arxiv.org/abs/2611.00042",
        pdf="https://arxiv.org/pdf/2611.00042",
        project="https://seeing.example.org",
    ),
)
CARD = to_card(PAPER, (), 280)


def test_upvotes_are_said_in_words() -> None:
    assert "▲ 7 upvotes" in CARD.facts
    assert "▲ 1 upvote" in to_card(dataclasses.replace(PAPER, upvotes=1), (), 280).facts
    embed = embed_for(CARD)
    assert [f.value for f in embed.fields if f.name == "Hugging Face"] == ["▲ 7 upvotes"]


def test_a_discord_footer_is_plain_text() -> None:
    footer = embed_for(CARD).footer.text or ""
    assert "\\" not in footer
    assert footer.endswith("arXiv 2611.00042")
    assert footer.startswith(CARD.date)


def test_slack_cards_link_the_project_in_default_buttons_and_alt_text_adds_to_the_title() -> None:
    blocks = card_blocks(CARD)
    buttons = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Save", "arXiv", "PDF", "Project"]
    assert all("style" not in b for b in buttons)
    image = next(b["accessory"] for b in blocks if "accessory" in b)
    assert image["alt_text"] == THUMBNAIL_ALT
    assert PAPER.title not in image["alt_text"]


def test_a_discord_digest_sends_at_most_five_cards_a_message() -> None:
    embeds = [embed_for(to_card(make_paper(f"2611.{n:05d}"), (), 280)) for n in range(12)]
    assert [len(message) for message in batches(embeds)] == [5, 5, 2]
