"""Block Kit rendering: escaped, within every Slack limit, whatever the paper."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from slack_sdk.models.blocks import Block

from adapters.slack.render import card_blocks, digest_blocks, escape, fallback, file_blocks, fit, home_view, reply_blocks
from bot.cards import to_card
from bot.chat.export import to_bibtex, to_markdown
from bot.model import Attachment, Card, Reply
from bot.store.library import Saved
from tests.fakes import make_paper
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
    }
    assert [a["text"]["text"] for a in actions[1:]] == ["arXiv", "PDF", "Code"]


def test_digest_and_replies_and_home_stay_within_limits() -> None:
    many = CARDS * 8
    assert block_problems(digest_blocks(many, 10)) == []
    assert digest_blocks(many, 10)[0]["text"]["text"] == "40 new papers · 30 more in the thread"
    assert_inert(digest_blocks(many, 10))
    saved = [Saved(p, datetime(2026, 3, 6, tzinfo=UTC)) for p in hostile_papers() * 60]
    view = home_view(saved)
    assert len(view["blocks"]) <= 100
    assert_inert(view["blocks"])


def test_escape_and_fit() -> None:
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    fitted = fit("<" * 100, 50)
    assert len(fitted) <= 50
    assert "<" not in fitted


def valid(blocks: list[dict]) -> list[dict]:
    """``blocks`` after slack_sdk's own validators (which raise on anything over a limit)."""
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    assert block_problems(blocks) == []
    return blocks


@pytest.mark.parametrize("page_size", [1, 5, 12, 13, 20])
def test_every_card_of_a_page_is_shown_within_one_message(page_size: int) -> None:
    cards = tuple((CARDS * 5)[:page_size])
    text = "\n".join(f"{n}. Q&A <for> *reasoning* :rotating_light: Verified" for n in range(30))
    blocks = valid(reply_blocks(Reply(text, cards=cards)))
    rows = [b for b in blocks if b.get("accessory", {}).get("action_id") == "paper_save"]
    assert [r["accessory"]["value"] for r in rows] == [c.paper_id for c in cards]  # none vanish after the 12th
    assert_inert(blocks)


def test_a_long_answer_is_escaped_first_then_split_between_lines_and_says_what_was_cut() -> None:
    text = "\n".join(f"{n:04d}. Q&A <for> everyone & more" for n in range(2000))  # 60,000+ characters escaped
    blocks = valid(reply_blocks(Reply(text)))
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in sections)
    assert all(line.endswith("everyone &amp; more") for t in sections for line in t.split("\n"))  # whole lines
    assert "more lines did not fit" in blocks[-1]["elements"][0]["text"]


def test_formatting_and_emoji_codes_from_a_title_are_inert() -> None:
    rendered = escape("*Bold* _it_ ~gone~ `code` :rotating_light: Verified at 12:30")
    for live in ("*Bold*", "_it_", "~gone~", "`code`", ":rotating_light:"):
        assert live not in rendered
    assert "12:30" in rendered.replace("∶", ":")  # shown as written, only inert


@pytest.mark.parametrize("count", [1, 40, 200])
@pytest.mark.parametrize("form", ["bibtex", "markdown"])
def test_an_export_shown_in_the_message_is_code_blocks_within_limits(count: int, form: str) -> None:
    papers = [make_paper(f"2611.{n:05d}", title=f"A title with_underscores & <brackets> {n}") for n in range(count)]
    content = to_bibtex(papers) if form == "bibtex" else to_markdown(papers)
    reply = Reply(f"Your {count} saved papers", file=Attachment("saved-papers.bib", content, count))
    blocks = valid(file_blocks(reply))
    code = [b["text"]["text"] for b in blocks[1:] if b["type"] == "section"]
    assert code
    assert all(t.startswith("```") and t.endswith("```") for t in code)
    assert "_underscores" in code[0]
    assert "ˍ" not in "".join(code)  # copyable as written: no look-alikes in code
    if blocks[-1]["type"] == "section":  # all of it shown: nothing to say
        assert all(p.id in "".join(code) for p in papers)
        assert count < 200
    else:
        note = blocks[-1]["elements"][0]["text"]
        shown = int(re.search(r"Showing (\d+) of", note).group(1))  # type: ignore[union-attr]
        assert f"of {count} entries" in note
        assert 0 < shown < count
        assert [p.id for p in papers if p.id in "".join(code)] == [p.id for p in papers[:shown]]


def test_the_home_tab_names_the_configured_save_emoji() -> None:
    assert ":star:" in json.dumps(home_view([], "star"))
    assert ":bookmark:" in json.dumps(home_view([], "🔖"))  # a setting that is no Slack emoji name is not shown
