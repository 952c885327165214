"""Text cleaning, the extractive TL;DR, bylines and cards."""

from datetime import UTC, datetime

import pytest

from bot.cards import byline, extractive_summary, sentences, to_card
from bot.model import Links, Paper
from bot.text import clean, delatex, https_url, shorten


def paper(**overrides: object) -> Paper:
    fields: dict = {
        "id": "2602.23229",
        "title": "A Title",
        "abstract": "First sentence here. Second sentence there.",
        "authors": ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"),
        "published": datetime(2026, 2, 26, 17, 8, tzinfo=UTC),
        "links": Links(hf="https://huggingface.co/papers/2602.23229", abstract="https://arxiv.org/abs/2602.23229"),
        "sources": frozenset({"huggingface"}),
    }
    fields.update(overrides)
    return Paper(**fields)


def test_clean_collapses_whitespace_and_strips_controls_and_bidi_overrides() -> None:
    assert clean("  Multi-Electron\n  Production\t at HERA \x1b[2J\u202e!") == "Multi-Electron Production at HERA [2J !"


def test_delatex_makes_math_readable() -> None:
    assert delatex(r"accuracy by $37.5\%$ within $\pm 0.2$ for $\alpha \leq 0.5$") == "accuracy by 37.5% within ± 0.2 for α ≤ 0.5"
    assert delatex(r"A $\mathbf{10}\times$ Harder Suite") == "A 10× Harder Suite"
    assert delatex(r"of 0.30 \pm 0.04") == "of 0.30 ± 0.04"


def test_sentences_keep_abbreviations_decimals_and_et_al_together() -> None:
    text = "We use e.g. Pythia and Qwen. Results improve by 3.5 points over Smith et al. in Fig. 2. Code is public."
    assert sentences(text) == [
        "We use e.g. Pythia and Qwen.",
        "Results improve by 3.5 points over Smith et al. in Fig. 2.",
        "Code is public.",
    ]


def test_extractive_summary_takes_whole_sentences_within_the_limit() -> None:
    abstract = "One short sentence. " + "Another sentence that is rather longer than the first one. " * 3
    summary = extractive_summary(abstract, limit=80)
    assert summary == "One short sentence. Another sentence that is rather longer than the first one."
    assert len(summary) <= 80


def test_extractive_summary_cuts_a_single_long_sentence_at_a_word_boundary() -> None:
    abstract = "word " * 200
    summary = extractive_summary(abstract, limit=50)
    assert len(summary) <= 50
    assert summary.endswith("…")
    assert summary[:-1].split(" ") == ["word"] * len(summary[:-1].split(" "))


def test_shorten_never_cuts_mid_word() -> None:
    assert shorten("supercalifragilistic expialidocious", 25) == "supercalifragilistic…"
    assert shorten("fits", 10) == "fits"


@pytest.mark.parametrize(
    ("authors", "expected"),
    [
        ((), ""),
        (("A",), "A"),
        (("A", "B"), "A and B"),
        (("A", "B", "C"), "A, B and C"),
        (("A", "B", "C", "D"), "A, B, C et al."),
    ],
)
def test_byline(authors: tuple[str, ...], expected: str) -> None:
    assert byline(authors) == expected


def test_card_prefers_the_sources_one_line_summary() -> None:
    card = to_card(paper(ai_summary="  The model is good.\n"), why=("reasoning",))
    assert card.tldr == "The model is good."
    assert card.why == ("reasoning",)
    assert card.url == "https://huggingface.co/papers/2602.23229"
    assert card.byline == "Ada Lovelace, Alan Turing, Grace Hopper et al."
    assert [label for label, _ in card.links] == ["Hugging Face", "arXiv"]


def test_card_falls_back_to_the_abstract_and_respects_the_length() -> None:
    card = to_card(paper(abstract="Alpha beta gamma. " * 40), tldr_limit=60)
    assert card.tldr == "Alpha beta gamma. Alpha beta gamma. Alpha beta gamma."
    assert to_card(paper()).date == "2026-02-26"


def test_card_is_deterministic() -> None:
    assert to_card(paper()) == to_card(paper())


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("https://github.com/marco-garosi/CIRCLE", True),
        ("http://github.com/x/y", False),
        ("javascript:alert(1)", False),
        ("https://evil.example/<!channel>", False),
        ("https://a.example/x|click", False),
        ("https://", False),
        (None, False),
        (42, False),
    ],
)
def test_only_plain_https_urls_survive(raw: object, ok: bool) -> None:
    assert (https_url(raw) != "") is ok
