"""The console adapter: readable, literal, pipe-friendly."""

from __future__ import annotations

import io
import json

from adapters.console import ConsoleAdapter
from bot.cards import to_card
from bot.model import Destination, Reply
from tests.fakes import make_paper

HERE = Destination("console", "terminal")


async def test_long_lines_reach_a_pipe_unwrapped() -> None:
    out = io.StringIO()
    await ConsoleAdapter(out).show_reply(Reply("title = {" + "word " * 40 + "}"))
    assert out.getvalue().count("\n") == 1


async def test_feed_text_is_printed_literally() -> None:
    out = io.StringIO()
    card = to_card(make_paper("2603.00001", title="[bold red]x[/] :smile: <!channel>"))
    await ConsoleAdapter(out).post(HERE, card)
    assert "[bold red]x[/] :smile: <!channel>" in out.getvalue()


async def test_json_lines_carry_the_documented_fields_and_ids_are_unique() -> None:
    out = io.StringIO()
    adapter = ConsoleAdapter(out, json_lines=True)
    first = await adapter.post(HERE, to_card(make_paper("2603.00001"), why=("reasoning",)))
    second = await adapter.post(HERE, to_card(make_paper("2603.00002")))
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {"id", "title", "url", "tldr", "authors", "sources", "destination", "why"} <= set(rows[0])
    assert rows[0]["why"] == ["reasoning"]
    assert rows[0]["destination"] == "console:terminal"
    assert first.message_id != second.message_id


async def test_a_digest_prints_a_header_and_every_card() -> None:
    out = io.StringIO()
    posts = await ConsoleAdapter(out).post_digest(HERE, [to_card(make_paper(f"2603.0000{i}")) for i in range(3)], top=2)
    assert len(posts) == 3
    assert "3 new papers" in out.getvalue()
