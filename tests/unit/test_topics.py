"""The topic query language: what matches, what does not, and what a malformed query says."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from bot.errors import CommandError
from bot.model import Links
from bot.query.matcher import Doc, words
from bot.query.parser import parse_query
from tests.fakes import make_paper

PAPER = make_paper(
    "2603.00001",
    title="Scaling Test-Time Compute for Vision-Language Agents",
    abstract="We study how tokens are spent on reasoning. Our agents use $\\alpha$-search over plans.",
    authors=("Yann LeCun", "Tomás Lozano-Pérez", "Ada Lovelace"),
    categories=("cs.RO", "cs.AI"),
    keywords=("chain of thought", "test-time scaling"),
    organization="NVIDIA Research",
    upvotes=12,
    links=Links(code="https://github.com/x/y"),
)
DOC = Doc.of(PAPER)


def matches(text: str) -> bool:
    return parse_query(text).matches(DOC)


@pytest.mark.parametrize(
    "query",
    [
        "reasoning",
        "REASONING",
        "token",  # plural folding: the abstract says "tokens"
        "agent",
        "vision-language",
        '"vision language"',
        "vision language",
        '"chain of thought"',
        "scaling compute",  # implicit AND, words anywhere
        "reasoning OR protein",
        "protein OR (vision AND agents)",
        "-survey",
        "NOT survey reasoning",
        "cat:cs.RO",
        "cat:cs.ro",
        "cat:cs",
        'author:"Yann LeCun"',
        "author:lecun",
        "author:lozano-perez",  # accents folded, hyphen = space
        "org:nvidia",
        'org:"nvidia research"',
        "upvotes>=12",
        "upvotes>10",
        "upvotes:5",
        "upvotes<13",
        "code:yes",
        "reasoning AND cat:cs.AI",
    ],
)
def test_matches(query: str) -> None:
    assert matches(query)


@pytest.mark.parametrize(
    "query",
    [
        "protein",
        "reason",  # whole words only
        "tok",
        '"language vision"',  # phrase order matters
        '"vision agents"',  # phrase words must be adjacent
        "reasoning -agents",
        "NOT reasoning",
        "cat:cs.CL",
        "cat:c",
        'author:"Yann Lovelace"',
        "org:google",
        "upvotes>=13",
        "upvotes<12",
        "code:no",
        "reasoning protein",
        "(protein OR survey) reasoning",
    ],
)
def test_does_not_match(query: str) -> None:
    assert not matches(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "the query is empty"),
        ("   ", "the query is empty"),
        ("(reasoning", "a '(' is never closed at position 1"),
        ("reasoning)", "a ')' without its '(' at position 10"),
        ('"vision language', "a quote is never closed at position 1"),
        ("reasoning OR", "'OR' needs something after it at position 11"),
        ("OR reasoning", "'OR' needs something before it at position 1"),
        ("reasoning NOT", "'NOT' needs something after it at position 11"),
        ("a AND", "'AND' needs something on both sides at position 3"),
        ("()", "empty parentheses"),
        ("foo:bar", "unknown field 'foo:' (fields: cat, author, org, code, upvotes, like) at position 1"),
        ("upvotes>=many", "'upvotes' needs a whole number, got 'many' at position 1"),
        ("code:maybe", "'code:' takes yes or no"),
        ("cat>=cs", "'cat' takes ':'"),
        ("author:", "'author:' needs a value"),
        ('author:"Yann', "a quote is never closed"),
        ("!!!", "nothing to match in '!!!'"),
        ("x" * 501, "longer than 500 characters"),
    ],
)
def test_malformed_queries_say_what_and_where(query: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_query(query)
    assert message in str(caught.value)


def test_canonical_text_collapses_whitespace() -> None:
    assert parse_query("  reasoning   OR\n cat:cs.CL ").text == "reasoning OR cat:cs.CL"


def test_words_fold_case_accents_plurals_and_hyphens() -> None:
    assert words("Vision-Language Studies of Tomás's LLMs") == ("vision", "language", "study", "of", "toma", "s", "llm")


def test_quality_prefers_title_over_keywords_over_abstract() -> None:
    assert parse_query("scaling").quality(DOC) == 3.0
    assert parse_query('"chain of thought"').quality(DOC) == 2.0
    assert parse_query("plans").quality(DOC) == 1.0


VOCABULARY = ["reasoning", "vision", "language", "agent", "robot", "protein", "survey", "graph", "token", "diffusion"]


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.4:
        return rng.choice([*VOCABULARY, "cat:cs.RO", "cat:cs.CL", "author:lecun", "org:nvidia", "upvotes>=5", "code:yes"])
    if roll < 0.55:
        return "-" + random_query(rng, depth + 1)
    op = " OR " if roll < 0.8 else " "
    return "(" + op.join(random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"


def random_paper(rng: random.Random, n: int):  # type: ignore[no-untyped-def]
    return make_paper(
        f"2603.{n:05d}",
        title=" ".join(rng.sample(VOCABULARY, 3)),
        abstract=" ".join(rng.sample(VOCABULARY, 4)),
        authors=(rng.choice(["Yann LeCun", "Ada Lovelace"]),),
        categories=(rng.choice(["cs.RO", "cs.CL"]),),
        organization=rng.choice(["NVIDIA", ""]),
        upvotes=rng.randint(0, 10),
        links=Links(code=rng.choice(["", "https://github.com/a/b"])),
        published=datetime(2026, 3, 6, tzinfo=UTC),
    )


def test_anchors_never_miss_a_match() -> None:
    """Every paper a query matches carries at least one of the query's anchors (the index relies on it)."""
    rng = random.Random(7)
    docs = [Doc.of(random_paper(rng, n)) for n in range(200)]
    for _ in range(300):
        query = parse_query(random_query(rng))
        anchors = query.anchors()
        if anchors is None:
            continue
        for doc in docs:
            if query.matches(doc):
                assert anchors & doc.index_keys(), (query.text, doc.paper_id)


def test_matching_and_quality_always_agree_with_and_without_a_vocabulary() -> None:
    """``matches`` (routing's fast path) is exactly ``quality > 0`` (search's), on every kind of query."""
    rng = random.Random(11)
    papers = [random_paper(rng, n) for n in range(100)]
    for _ in range(200):
        query = parse_query(random_query(rng))
        for paper in papers:
            lean, full = Doc.of(paper), Doc.of(paper, vocabulary=True)
            assert query.matches(lean) == query.matches(full) == (query.quality(lean) > 0) == (query.quality(full) > 0), (
                query.text
            )
