"""BibTeX that a BibTeX parser reads back, Markdown that renders literally."""

from __future__ import annotations

from datetime import UTC, datetime

import bibtexparser

from bot.chat.export import to_bibtex, to_markdown
from tests.fakes import make_paper

HOSTILE = make_paper(
    "2603.00001",
    title=r"50% of {unbalanced} braces & $\alpha$_tricks # ~ ^ \evil}",
    authors=("Tomás Lozano-Pérez", "O'Brien, Jr.", "Ada Lovelace"),
    categories=("cs.RO",),
    published=datetime(2026, 3, 6, tzinfo=UTC),
)


def test_bibtex_round_trips_through_a_parser_even_with_hostile_titles() -> None:
    papers = [
        HOSTILE,
        make_paper("2603.00002", title="Plain title here", authors=("Ada Lovelace",)),
        make_paper("hep-ex/0307015"),
    ]
    library = bibtexparser.parse_string(to_bibtex(papers))
    assert library.failed_blocks == []
    entries = library.entries
    assert [e.fields_dict["eprint"].value for e in entries] == ["2603.00001", "2603.00002", "hep-ex/0307015"]
    first = entries[0]
    assert first.entry_type == "misc"
    assert first.key == "lozanoperez2026unbalanced"
    assert first.fields_dict["archivePrefix"].value == "arXiv"
    assert first.fields_dict["primaryClass"].value == "cs.RO"
    assert first.fields_dict["author"].value.split(" and ")[0] == "Tomás Lozano-Pérez"
    assert r"50\% of \{unbalanced\} braces \& α\_tricks \# \textasciitilde{}" in first.fields_dict["title"].value
    assert len({e.key for e in entries}) == 3


def test_citation_keys_stay_unique() -> None:
    twins = [make_paper(f"2603.0000{i}", title="Same Title Twice", authors=("Ada Lovelace",)) for i in range(3)]
    keys = [e.key for e in bibtexparser.parse_string(to_bibtex(twins)).entries]
    assert keys == ["lovelace2026same", "lovelace2026samea", "lovelace2026sameb"]


def test_citation_keys_stay_valid_past_twenty_six_clashes() -> None:
    many = [make_paper(f"2603.{i:05d}", title="Same Title", authors=("Ada Lovelace",)) for i in range(60)]
    entries = bibtexparser.parse_string(to_bibtex(many)).entries
    assert len(entries) == 60  # none lost to a key like "lovelace2026same{"
    assert len({e.key for e in entries}) == 60
    assert all(e.key.isalnum() for e in entries)


def test_markdown_escapes_link_syntax_in_titles() -> None:
    line = to_markdown([make_paper("2603.00001", title="[Click](https://evil) *bold*")])
    assert line.startswith(r"- [\[Click\]\(https://evil\) \*bold\*](https://arxiv.org/abs/2603.00001)")
    assert to_markdown([]) == ""
