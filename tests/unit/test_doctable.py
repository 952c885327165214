"""The index's table keeps each paper's words exactly, through forgetting, compaction and a snapshot."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime

from bot.query.matcher import Doc
from bot.query.table import DocTable
from tests.fakes import make_paper
from tests.unit.test_topics import random_paper


def test_a_table_gives_back_each_doc_through_compaction_and_a_snapshot() -> None:
    rng = random.Random(5)
    papers = [random_paper(rng, n) for n in range(120)]
    papers.append(make_paper("2603.09999", title="李小龍 and Zoë", authors=("李小龍", "Zoë Ünal"), keywords=("a; b",)))
    table = DocTable()
    for n, paper in enumerate(papers):
        table.append(Doc.of(paper), float(n))
    table.append(Doc.of(dataclasses.replace(papers[3], title="A newer copy")), 999.0)  # replaces number 3
    for number in range(10, 20):
        table.forget(number)
    expected = {p.id: Doc.of(p) for n, p in enumerate(papers) if not 10 <= n < 20}
    expected[papers[3].id] = Doc.of(dataclasses.replace(papers[3], title="A newer copy"))
    blob = DocTable.dump(table.capture(), cursor=1234)
    loaded = DocTable.load(blob)
    assert loaded is not None
    assert loaded[1] == 1234
    for candidate in (table, loaded[0], table.compacted(), loaded[0].compacted()):
        docs = {candidate.doc(n).paper_id: candidate.doc(n) for n in candidate.numbers.values()}
        assert docs.keys() == expected.keys()
        for pid, doc in docs.items():
            want = expected[pid]
            assert dataclasses.replace(doc, published=want.published) == want
            assert doc.published.timestamp() == want.published.timestamp()
            assert doc.published.tzinfo == UTC
        # Every live paper is in the posting of each of its keys.
        for n in candidate.numbers.values():
            for key in candidate.doc(n).index_keys():
                assert n in candidate.postings[key]
    assert len(table.compacted()) == len(expected)


def test_a_snapshot_of_another_format_or_a_damaged_one_is_refused() -> None:
    table = DocTable()
    table.append(Doc.of(make_paper("2603.00001", published=datetime(2026, 3, 1, tzinfo=UTC))), 1.0)
    blob = DocTable.dump(table.capture(), cursor=1)
    assert DocTable.load(blob) is not None
    assert DocTable.load(blob.replace(b'"format": 1', b'"format": 99')) is None
    assert DocTable.load(blob[:-10]) is None
    assert DocTable.load(b"") is None
    assert DocTable.load(blob.replace(b'"packed": [', b'"packed": [1, ')) is None
