"""arXiv ids in every spelling the sources use become one bare id."""

import pytest

from bot.ids import bare_arxiv_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2602.23229", "2602.23229"),
        ("2602.23229v3", "2602.23229"),
        ("http://arxiv.org/abs/2609.30233v1", "2609.30233"),
        ("https://arxiv.org/pdf/2609.30233v12", "2609.30233"),
        ("https://arxiv.org/pdf/2609.30233.pdf", "2609.30233"),
        ("oai:arXiv.org:2203.01250v3", "2203.01250"),
        ("arXiv:2509.13332", "2509.13332"),
        ("0704.0001", "0704.0001"),
        ("http://arxiv.org/abs/hep-ex/0307015", "hep-ex/0307015"),
        ("oai:arXiv.org:hep-ex/0307015v1", "hep-ex/0307015"),
        ("math.GT/0309136v2", "math.GT/0309136"),
        ("cs/9901002", "cs/9901002"),
    ],
)
def test_every_spelling_becomes_the_bare_id(raw: str, expected: str) -> None:
    assert bare_arxiv_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "hello", "1234.123", "2602.23229v", "https://evil.example/abs/2602.23229", "2602.23229<script>"]
)
def test_non_ids_are_rejected(raw: str) -> None:
    assert bare_arxiv_id(raw) is None
