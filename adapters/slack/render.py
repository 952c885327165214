"""Card → Block Kit. Pure functions: every untrusted string escaped, every Slack limit enforced.

Slack decodes only ``&amp; &lt; &gt;``, and every mention or link syntax starts with ``<``, so
escaping those three characters makes a title like ``<!channel>`` plain text that pings nobody.
``mrkdwn`` objects carry ``verbatim: true`` so Slack does not linkify names on its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.model import Card, Reply, Saved
from bot.text import fit_escaped, shorten

SECTION_LIMIT = 3000  # section text
BUTTON_TEXT_LIMIT = 75
CONTEXT_LIMIT = 2000  # per context element, kept well under the message total
MESSAGE_BLOCKS = 50
# Slack refuses a message whose blocks hold more than ~12,000 characters of text (msg_blocks_too_long,
# undocumented; platforms.md): a reply keeps under 10,000.
MESSAGE_TEXT = 10_000
REPLY_TEXT_BUDGET = 9_000  # an answer's own text, when it shows no papers
ROW_BUDGET = 700  # one paper's row in an answer, at most
FILE_TEXT_BUDGET = 9_000  # an export shown in code blocks when it cannot be sent as a file
HOME_BLOCKS = 100
SAVE, UNSAVE = "paper_save", "paper_unsave"
THUMBNAIL_ALT = "Figure from the paper"  # a screen reader has just read the title; the alt text need not repeat it

Block = dict[str, Any]


# mrkdwn has no escape for its formatting characters, so in text from outside they become look-alikes
# that Slack does not read: *bold*, _italic_, ~strike~ and `code` stay as typed, only inert.
_INERT = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_EMOJI_CODE = re.compile(r":(?=[a-z0-9_+'-]+:)", re.IGNORECASE)  # ":name:" would become an emoji


def escape(text: str) -> str:
    """Text from outside, shown as written: Slack's three control characters escaped (so nothing links
    or mentions), formatting characters and emoji codes made inert."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").translate(_INERT)
    return _EMOJI_CODE.sub("∶", text)  # U+2236, a colon Slack does not read as an emoji's start


def escape_code(text: str) -> str:
    """Text for a code block, where formatting does not apply: control characters escaped, and a run of
    three backticks broken so that it cannot end the block."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("```", "`\u200b``")


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
    # The default style: a green button on every card of a busy channel is noise, and reads the same.
    return {"type": "button", "action_id": SAVE, "text": plain("Save", BUTTON_TEXT_LIMIT), "value": paper_id}


def card_blocks(card: Card) -> list[Block]:
    """One paper: linked title and byline, TL;DR (with the thumbnail), facts, buttons."""
    head = f"*{link(card.url, card.title)}*"
    if card.byline:
        head += "\n" + fit(card.credit, 500)
    tldr: Block = {"type": "section", "text": mrkdwn(fit(card.tldr, SECTION_LIMIT - 200) or " ")}
    if card.thumbnail:
        tldr["accessory"] = {"type": "image", "image_url": card.thumbnail, "alt_text": THUMBNAIL_ALT}
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(head)}, tldr]
    facts = " · ".join(card.facts)
    if facts:
        blocks.append({"type": "context", "elements": [mrkdwn(fit(facts, CONTEXT_LIMIT))]})
    buttons = [save_button(card.paper_id)]
    for label, url in card.links:
        if label in ("arXiv", "PDF", "Code", "Project"):
            text = plain(label, BUTTON_TEXT_LIMIT)
            buttons.append({"type": "button", "action_id": f"open_{label.lower()}", "text": text, "url": url})
    blocks.append({"type": "actions", "elements": buttons})
    return blocks


def digest_blocks(cards: Sequence[Card], top: int, title: str = "") -> list[Block]:
    """The digest's parent message: a header (``title``, or how many new papers) and the first ``top``
    papers, one line each, with Save."""
    shown = cards[:top]
    rest = len(cards) - len(shown)
    header = (title or f"{len(cards)} new papers") + (f" · {rest} more in the thread" if rest else "")
    blocks: list[Block] = [{"type": "header", "text": plain(header, 150)}]
    varied = len({card.why for card in shown}) > 1  # a reader's digest says why each paper is there
    for card in shown:
        why = f"\n_{fit(' · '.join(card.why), 200)}_" if varied and card.why else ""
        line = f"*{link(card.url, card.title, 250)}*{why}\n{fit(card.tldr, 600)}"
        blocks.append({"type": "section", "text": mrkdwn(line), "accessory": save_button(card.paper_id)})
    return blocks[:MESSAGE_BLOCKS]


def sections(lines: Sequence[str], limit: int, budget: int, wrap: tuple[str, str] = ("", "")) -> tuple[list[str], int]:
    """Already-escaped ``lines`` packed into section texts of at most ``limit`` characters (``wrap``
    included), at most ``budget`` characters in all, cut only between lines (a line longer than a
    section is cut at ``limit``, never inside an escape like ``&amp;``). Returns the texts and how many
    lines did not fit."""
    room = limit - len(wrap[0]) - len(wrap[1])
    texts: list[str] = []
    current: list[str] = []
    size = total = 0
    for shown, line in enumerate(lines):
        line = _cut_escaped(line, room)
        if total + len(line) + 1 > budget:
            if current:
                texts.append(wrap[0] + "\n".join(current) + wrap[1])
            return texts, len(lines) - shown
        if current and size + len(line) + 1 > room:
            texts.append(wrap[0] + "\n".join(current) + wrap[1])
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        total += len(line) + 1
    if current:
        texts.append(wrap[0] + "\n".join(current) + wrap[1])
    return texts, 0


def _cut_escaped(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:  # an escape cut in half would show as junk
        cut = cut[:amp]
    return cut + "…"


def result_row(card: Card, budget: int) -> Block:
    """One paper in a command's answer, in one block within ``budget`` characters: linked title, byline
    and TL;DR, with its Save button."""
    head = f"*{link(card.url, card.title, min(250, budget // 3))}*"
    rest = budget - len(head) - 2
    lines = [head, fit(card.credit, max(0, rest // 3)) if card.byline else "", fit(card.tldr, max(0, rest * 2 // 3))]
    return {"type": "section", "text": mrkdwn("\n".join(line for line in lines if line)), "accessory": save_button(card.paper_id)}


def reply_blocks(reply: Reply) -> list[Block]:
    """A command's answer within one Slack message: its text (escaped first, then split between lines
    into sections), then one compact row per card. Every card of the page is shown (rows shrink to fit
    the ~10,000 characters Slack takes in one message); text that does not fit is said to be cut."""
    rows = len(reply.cards)
    text_budget = REPLY_TEXT_BUDGET if not rows else max(1000, REPLY_TEXT_BUDGET - rows * ROW_BUDGET)
    texts, cut = sections([escape(line) for line in reply.text.splitlines()], SECTION_LIMIT, text_budget)
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(t)} for t in texts]
    if cut:
        blocks.append({"type": "context", "elements": [mrkdwn(f"…{cut} more lines did not fit in one Slack message.")]})
    room = MESSAGE_TEXT - sum(len(t) for t in texts) - 200
    row_budget = min(ROW_BUDGET, room // rows) if rows else 0
    blocks += [result_row(card, row_budget) for card in reply.cards[: MESSAGE_BLOCKS - len(blocks)]]
    return blocks


def file_blocks(reply: Reply) -> list[Block]:
    """An export shown in the message itself (when it cannot be sent as a file): code blocks within
    Slack's limits, cut between entries, with a line saying how many entries are shown."""
    file = reply.file
    if file is None:
        return reply_blocks(reply)
    # BibTeX entries are separated by blank lines (kept between them); Markdown has one entry a line.
    entries = [e + "\n" for e in file.content.strip().split("\n\n")] if "\n\n" in file.content else file.content.splitlines()
    escaped = [escape_code(e) for e in entries]
    texts, cut = sections(escaped, SECTION_LIMIT, FILE_TEXT_BUDGET, wrap=("```", "```"))
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(escape(reply.text))}]
    blocks += [{"type": "section", "text": mrkdwn(t)} for t in texts]
    if cut:
        note = (
            f"Showing {len(entries) - cut} of {len(entries)} entries: the rest did not fit in a message. "
            "For the whole file, add the files:write and im:write scopes to paperbot (see the README)."
        )
        blocks.append({"type": "context", "elements": [mrkdwn(note)]})
    return blocks


def home_view(saved: Sequence[Saved], save_emoji: str = "bookmark") -> dict[str, Any]:
    """The App Home tab: the user's saved papers, newest first, each with Unsave."""
    blocks: list[Block] = [{"type": "header", "text": plain("Your saved papers", 150)}]
    if not saved:
        emoji = re.sub(r"[^a-z0-9_+'-]", "", save_emoji.lower()) or "bookmark"  # our own setting, still checked
        empty = f"Nothing saved yet. React with :{emoji}: on a paper, or press its Save button."
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
