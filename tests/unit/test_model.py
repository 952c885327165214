"""Paper.merge: one paper from any number of sources' reports, each field from a named precedence."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from bot.model import PRECEDENCE, Links, Paper
from tests.fakes import make_paper


def report(source: str, **fields: object) -> Paper:
    return make_paper("2501.00001", sources=frozenset({source}), **fields)


HF = report(
    "huggingface",
    title="HF title",
    abstract="",
    categories=("hf-cat",),
    upvotes=12,
    ai_summary="HF summary",
    links=Links(hf="https://huggingface.co/papers/2501.00001", code="https://github.com/a/b"),
    published=datetime(2025, 1, 3, tzinfo=UTC),
)
ARXIV = report(
    "arxiv",
    title="arXiv title",
    abstract="The arXiv abstract.",
    categories=("cs.CL", "cs.LG"),
    upvotes=None,
    links=Links(abstract="https://arxiv.org/abs/2501.00001", pdf="https://arxiv.org/pdf/2501.00001"),
    published=datetime(2025, 1, 1, tzinfo=UTC),
)
OTHER = report(
    "openreview",
    title="OpenReview title",
    abstract="The venue abstract.",
    categories=("ICLR",),
    upvotes=40,
    organization="A lab",
    links=Links(project="https://example.org/project", code="https://example.org/code"),
    published=datetime(2025, 1, 2, tzinfo=UTC),
)


@pytest.mark.parametrize("order", list(itertools.permutations([HF, ARXIV, OTHER])))
def test_each_field_comes_from_its_precedence_whatever_the_order(order: tuple[Paper, ...]) -> None:
    paper = Paper.merge(order)
    assert paper.title == "HF title"  # "*": Hugging Face first
    assert paper.abstract == "The arXiv abstract."  # HF had none: the next in precedence
    assert paper.categories == ("cs.CL", "cs.LG")  # categories: arXiv first
    assert paper.ai_summary == "HF summary"
    assert paper.organization == "A lab"  # only the unnamed source has it: it still fills the gap
    assert paper.links == Links(
        hf="https://huggingface.co/papers/2501.00001",
        abstract="https://arxiv.org/abs/2501.00001",
        pdf="https://arxiv.org/pdf/2501.00001",
        code="https://github.com/a/b",  # HF's code link beats the unnamed source's
        project="https://example.org/project",
    )
    assert paper.sources == frozenset({"huggingface", "arxiv", "openreview"})
    assert paper.published == datetime(2025, 1, 1, tzinfo=UTC)  # the earliest
    assert paper.upvotes == 40  # the most


def test_a_named_precedence_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PRECEDENCE, "title", ("openreview", "arxiv", "huggingface"))
    assert Paper.merge([HF, ARXIV, OTHER]).title == "OpenReview title"
    assert Paper.merge([HF, ARXIV]).title == "arXiv title"


def test_two_reports_of_one_source_keep_the_earlier_and_one_report_is_itself() -> None:
    later = report("huggingface", title="Renamed", upvotes=30)
    merged = Paper.merge([HF, later])
    assert (merged.title, merged.upvotes) == ("HF title", 30)
    assert Paper.merge([HF]) is HF


def test_different_papers_or_none_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        Paper.merge([HF, make_paper("2501.00002")])
    with pytest.raises(ValueError, match="nothing"):
        Paper.merge([])
