"""Block Kit rendering: escaped, within every Slack limit, whatever the paper."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from adapters.slack.render import card_blocks, digest_blocks, escape, fallback, fit, home_view, reply_blocks
from bot.cards import to_card
from bot.model import Card, Reply
from bot.store.library import Saved
from tests.hostile.papers import hostile_papers
from tests.slack.standin import block_problems

CARDS = [to_card(p, why=("<!channel> topic",), tldr_limit=2000) for p in hostile_papers()]
# Slack link syntax we produce ourselves: <https://…|label>; anything else starting with "<" is an injection.
OUR_LINK = re.compile(r"<https://[^\s<>|]+\|[^<>|]*>")


def texts(blocks: list[dict]) -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found


def assert_inert(blocks: list[dict]) -> None:
    for text in texts(blocks):
        residue = OUR_LINK.sub("", text)
        assert "<" not in residue, text
        assert ">" not in residue, text


@pytest.mark.parametrize("card", CARDS, ids=["mentions", "20k-abstract", "600-title", "250-authors", "unicode"])
def test_cards_are_within_limits_and_inert(card: Card) -> None:
    blocks = card_blocks(card)
    assert block_problems(blocks) == []
    assert_inert(blocks)
    assert len(json.dumps(blocks)) < 10_000
    assert 0 < len(fallback(card)) <= 300
    assert "<" not in fallback(card).replace("&lt;", "")
    for block in blocks:
        if block["type"] in ("section", "context"):
            for obj in [block.get("text"), *block.get("elements", [])]:
                if obj and obj["type"] == "mrkdwn":
                    assert obj["verbatim"] is True


def test_injected_mentions_render_as_text() -> None:
    head = card_blocks(CARDS[0])[0]["text"]["text"]
    assert "&lt;!channel&gt;" in head
    assert "&lt;https://evil.example¦click me&gt;" in head  # "|" would end our own link label early
    assert head.startswith("*<https://arxiv.org/abs/2611.00101|Mentions &lt;!channel&gt;")


def test_a_huge_card_is_cut_with_an_ellipsis() -> None:
    card = Card(
        paper_id="2611.1", title="x " * 5000, url="https://arxiv.org/abs/2611.1", authors=(), byline="", tldr="y " * 20000
    )
    blocks = card_blocks(card)
    assert block_problems(blocks) == []
    assert blocks[1]["text"]["text"].endswith("…")


def test_buttons_save_and_link_out() -> None:
    actions = card_blocks(CARDS[4])[-1]["elements"]
    assert actions[0] == {
        "type": "button",
        "action_id": "paper_save",
        "text": {"type": "plain_text", "text": "Save", "emoji": False},
        "value": "2611.00105",
        "style": "primary",
    }
    assert [a["text"]["text"] for a in actions[1:]] == ["arXiv", "PDF", "Code"]


def test_digest_and_replies_and_home_stay_within_limits() -> None:
    many = CARDS * 8
    assert block_problems(digest_blocks(many, 10)) == []
    assert digest_blocks(many, 10)[0]["text"]["text"] == "40 new papers · 30 more in the thread"
    assert_inert(digest_blocks(many, 10))
    export = Reply("@misc{" + "x" * 50_000 + "}", cards=tuple(CARDS))
    assert block_problems(reply_blocks(export)[:50]) == [] or len(reply_blocks(export)) <= 50
    assert len(reply_blocks(export)) <= 50
    saved = [Saved(p, datetime(2026, 3, 6, tzinfo=UTC)) for p in hostile_papers() * 60]
    view = home_view(saved)
    assert len(view["blocks"]) <= 100
    assert_inert(view["blocks"])


def test_escape_and_fit() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    fitted = fit("<" * 100, 50)
    assert len(fitted) <= 50
    assert "<" not in fitted
