"""Card → Block Kit. Pure functions: every untrusted string escaped, every Slack limit enforced.

Slack decodes only ``&amp; &lt; &gt;``, and every mention or link syntax starts with ``<``, so
escaping those three characters makes a title like ``<!channel>`` plain text that pings nobody.
``mrkdwn`` objects carry ``verbatim: true`` so Slack does not linkify names on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.model import Card, Reply, Saved
from bot.text import fit_escaped, shorten

SECTION_LIMIT = 3000  # section text
BUTTON_TEXT_LIMIT = 75
CONTEXT_LIMIT = 2000  # per context element, kept well under the message total
MESSAGE_BLOCKS = 50
HOME_BLOCKS = 100
SAVE, UNSAVE = "paper_save", "paper_unsave"

Block = dict[str, Any]


def escape(text: str) -> str:
    """Escape Slack's three control characters; nothing else is decoded, so nothing else is touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    """``text`` shortened at a word boundary so that, escaped, it fits in ``limit`` characters."""
    return fit_escaped(text, limit, escape)


def link(url: str, label: str, limit: int = 300) -> str:
    """``<url|label>`` for a safe https URL (the card only carries those); the label escaped."""
    label = fit(label, limit).replace("|", "¦")  # '|' would end the label early
    return f"<{url}|{label}>" if url else label


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object that Slack shows as written (no automatic linking of names or channels)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object within ``limit`` characters, emoji codes left as text."""
    return {"type": "plain_text", "text": shorten(text, limit), "emoji": False}


def fallback(card: Card) -> str:
    """The notification / screen-reader text of a card's message."""
    return fit(f"{card.title} — {card.byline}" if card.byline else card.title, 300)


def save_button(paper_id: str) -> Block:
    """The Save button; its value is the paper id."""
    return {"type": "button", "action_id": SAVE, "text": plain("Save", BUTTON_TEXT_LIMIT), "value": paper_id, "style": "primary"}


def card_blocks(card: Card) -> list[Block]:
    """One paper: linked title and byline, TL;DR (with the thumbnail), facts, buttons."""
    head = f"*{link(card.url, card.title)}*"
    if card.byline:
        head += "\n" + fit(card.credit, 500)
    tldr: Block = {"type": "section", "text": mrkdwn(fit(card.tldr, SECTION_LIMIT - 200) or " ")}
    if card.thumbnail:
        tldr["accessory"] = {"type": "image", "image_url": card.thumbnail, "alt_text": shorten(f"Thumbnail of {card.title}", 200)}
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(head)}, tldr]
    facts = " · ".join(card.facts)
    if facts:
        blocks.append({"type": "context", "elements": [mrkdwn(fit(facts, CONTEXT_LIMIT))]})
    buttons = [save_button(card.paper_id)]
    for label, url in card.links:
        if label in ("arXiv", "PDF", "Code"):
            text = plain(label, BUTTON_TEXT_LIMIT)
            buttons.append({"type": "button", "action_id": f"open_{label.lower()}", "text": text, "url": url})
    blocks.append({"type": "actions", "elements": buttons})
    return blocks


def digest_blocks(cards: Sequence[Card], top: int) -> list[Block]:
    """The digest's parent message: a header and the first ``top`` papers, one line each, with Save."""
    shown = cards[:top]
    rest = len(cards) - len(shown)
    header = f"{len(cards)} new papers" + (f" · {rest} more in the thread" if rest else "")
    blocks: list[Block] = [{"type": "header", "text": plain(header, 150)}]
    for card in shown:
        line = f"*{link(card.url, card.title, 250)}*\n{fit(card.tldr, 600)}"
        blocks.append({"type": "section", "text": mrkdwn(line), "accessory": save_button(card.paper_id)})
    return blocks[:MESSAGE_BLOCKS]


def reply_blocks(reply: Reply) -> list[Block]:
    """A command's answer: its text (split into sections if long), then its cards."""
    blocks: list[Block] = []
    text = reply.text
    while text and len(blocks) < 10:
        chunk, text = text[:2800], text[2800:]
        blocks.append({"type": "section", "text": mrkdwn(escape(chunk))})
    for card in reply.cards:
        if len(blocks) + 4 > MESSAGE_BLOCKS:
            break
        blocks.extend(card_blocks(card))
    return blocks


def home_view(saved: Sequence[Saved]) -> dict[str, Any]:
    """The App Home tab: the user's saved papers, newest first, each with Unsave."""
    blocks: list[Block] = [{"type": "header", "text": plain("Your saved papers", 150)}]
    if not saved:
        empty = "Nothing saved yet. React with :bookmark: on a paper, or press its Save button."
        blocks.append({"type": "section", "text": mrkdwn(empty)})
    for item in saved[: HOME_BLOCKS - 2]:
        paper = item.paper
        url = paper.links.hf or paper.links.abstract
        line = f"*{link(url, paper.title, 250)}*\n{escape(paper.id)} · saved {item.saved_at:%Y-%m-%d}"
        button = {"type": "button", "action_id": UNSAVE, "text": plain("Unsave", BUTTON_TEXT_LIMIT), "value": paper.id}
        blocks.append({"type": "section", "text": mrkdwn(line), "accessory": button})
    if len(saved) > HOME_BLOCKS - 2:
        older = len(saved) - HOME_BLOCKS + 2
        blocks.append({"type": "context", "elements": [mrkdwn(f"…and {older} older ones: /papers export")]})
    return {"type": "home", "blocks": blocks}
