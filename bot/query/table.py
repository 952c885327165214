"""The query index's storage: each cached paper as word numbers in flat arrays, postings as arrays of
paper numbers, and a snapshot of both that a new process reads back at C speed.

Tokenising a paper costs ~100 µs, so building the index from the cached papers holds a new process
up for ~10 s at 60,000 papers. The table keeps what tokenising produced as integers (4 bytes a word,
against 8 for a reference to a string in a tuple) and dumps itself as one compressed blob; loading
it is array copies, with no tokenising and no per-paper Python objects.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from array import array
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import NamedTuple

from bot.query.matcher import Doc, upvote_boost

# The snapshot's layout and the tokenizer it captured: a snapshot of another format is ignored (and the
# index rebuilt from the cached papers), so bump this whenever either changes.
FORMAT = 1
_MAGIC = b"paperbot-index"


class Needle(NamedTuple):
    """A phrase's word numbers as a compiled byte pattern, and how many words it has."""

    pattern: re.Pattern[bytes]
    length: int


class Capture(NamedTuple):
    """A table's state at one moment, for ``DocTable.dump``."""

    vocab: list[str]
    ids: list[str]
    postings: list[tuple[str, array[int], int]]  # key, posting, its length then
    dead: list[int]
    size: int
    table: DocTable


class DocTable:
    """Papers by number (0, 1, …, in the order they were added), their words and the postings.

    Entries are only ever appended or marked dead, never changed in place, so a search reading the
    table in a worker thread sees a consistent table while the event loop appends to it.
    """

    def __init__(self) -> None:
        self.vocab: list[str] = []  # word number → word (also categories)
        self.word_numbers: dict[str, int] = {}
        self.ids: list[str] = []  # paper number → paper id
        self.numbers: dict[str, int] = {}  # paper id → its live number
        self.starts = array("Q", [0])  # paper number → where its words start in ``tokens``
        self.tokens = array("I")  # per paper: title, keywords, abstract, organization, categories, authors
        self.added = array("d")  # when the index took the paper (its expiry clock)
        self.published = array("d")  # the paper's date (timestamp)
        self.boost = array("d")  # 0.5 × log(1 + upvotes): its share of the rank
        self.upvotes = array("q")
        self.code = bytearray()  # 1 when the paper has a code link
        self.postings: dict[str, array[int]] = {}
        self.version = 0  # changes whenever a paper is added or forgotten

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, doc: Doc, added: float) -> int:
        """Add ``doc`` as the next number (forgetting an earlier copy of the same paper)."""
        if (earlier := self.numbers.get(doc.paper_id)) is not None:
            self.forget(earlier)
        number = len(self.ids)
        seq = self.tokens
        for part in (doc.title, doc.keywords, doc.abstract, doc.organization, doc.categories):
            seq.append(len(part))
            seq.extend(self._numbered(part))
        seq.append(len(doc.authors))
        for name in doc.authors:
            seq.append(len(name))
            seq.extend(self._numbered(name))
        self.starts.append(len(seq))
        self.ids.append(doc.paper_id)
        self.numbers[doc.paper_id] = number
        self.added.append(added)
        self.published.append(doc.published.timestamp())
        self.boost.append(upvote_boost(doc.upvotes))
        self.upvotes.append(doc.upvotes)
        self.code.append(doc.has_code)
        postings = self.postings
        for key in doc.index_keys():
            posting = postings.get(key)
            if posting is None:
                posting = postings[key] = array("I")
            posting.append(number)
        self.version += 1
        return number

    def _numbered(self, words: tuple[str, ...]) -> list[int]:
        numbers, vocab = self.word_numbers, self.vocab
        out = []
        for word in words:
            n = numbers.get(word)
            if n is None:
                n = numbers[word] = len(vocab)
                vocab.append(word)
            out.append(n)
        return out

    def forget(self, number: int) -> None:
        """Mark a paper number dead (postings keep it until ``compacted``); a dead number stays dead."""
        paper_id = self.ids[number]
        if self.numbers.get(paper_id) == number:
            del self.numbers[paper_id]
            self.version += 1

    @property
    def live(self) -> int:
        """How many papers the table holds (not counting dead numbers)."""
        return len(self.numbers)

    @property
    def dead(self) -> int:
        """How many numbers belong to forgotten papers."""
        return len(self.ids) - len(self.numbers)

    def doc(self, number: int) -> Doc:
        """The paper's ``Doc``, rebuilt from its word numbers (~5 µs: only for the few papers a
        phrase or a name test must look at)."""
        seq = self.tokens[self.starts[number] : self.starts[number + 1]]
        word = self.vocab.__getitem__
        parts: list[tuple[str, ...]] = []
        at = 0
        for _ in range(5):
            n = seq[at]
            parts.append(tuple(map(word, seq[at + 1 : at + 1 + n])))
            at += 1 + n
        authors = []
        for _ in range(seq[at]):
            n = seq[at + 1]
            authors.append(tuple(map(word, seq[at + 2 : at + 2 + n])))
            at += 1 + n
        title, keywords, abstract, organization, categories = parts
        return Doc(
            paper_id=self.ids[number],
            title=title,
            keywords=keywords,
            abstract=abstract,
            authors=tuple(authors),
            organization=organization,
            categories=categories,
            published=datetime.fromtimestamp(self.published[number], UTC),
            upvotes=self.upvotes[number],
            has_code=bool(self.code[number]),
        )

    def needle(self, words: tuple[str, ...]) -> Needle | None:
        """A phrase as ``phrase_quality`` looks for it; None when a word is in no paper at all."""
        try:
            numbers = array("I", [self.word_numbers[word] for word in words])
        except KeyError:
            return None
        return Needle(re.compile(re.escape(numbers.tobytes())), len(words))

    def phrase_quality(self, number: int, needle: Needle) -> float:
        """Where the phrase stands in the paper: 3 in the title, 2 in keywords, 1 in the abstract, 0 not
        at all (``Words.quality``, on word numbers: one search of the paper's bytes, nothing decoded)."""
        tokens, start = self.tokens, self.starts[number]
        title = start + 1  # after its length; keywords and the abstract likewise follow theirs
        keywords = title + tokens[start] + 1
        abstract = keywords + tokens[keywords - 1] + 1
        end = abstract + tokens[abstract - 1]
        at = title * 4
        while found := needle.pattern.search(tokens, at, end * 4):
            position = found.start()
            if position & 3 == 0:  # on a word boundary, not across two word numbers' bytes
                first, last = position >> 2, (position >> 2) + needle.length
                for quality, low, high in ((3.0, title, keywords - 1), (2.0, keywords, abstract - 1), (1.0, abstract, end)):
                    if low <= first and last <= high:
                        return quality
            at = position + 1  # across a part's end, or misaligned: look further
        return 0.0

    def compacted(self) -> DocTable:
        """A new table of the live papers only, renumbered in order (this one is left untouched, so
        searches running on it finish undisturbed)."""
        kept = sorted(self.numbers.values())
        renumber = array("q", [-1]) * len(self.ids)
        table = DocTable()
        table.vocab, table.word_numbers = list(self.vocab), dict(self.word_numbers)
        for new, old in enumerate(kept):
            renumber[old] = new
            table.tokens.extend(self.tokens[self.starts[old] : self.starts[old + 1]])
            table.starts.append(len(table.tokens))
        table.ids = [self.ids[n] for n in kept]
        table.numbers = {paper_id: n for n, paper_id in enumerate(table.ids)}
        for name in ("added", "published", "boost", "upvotes"):
            column = getattr(self, name)
            setattr(table, name, array(column.typecode, (column[n] for n in kept)))
        table.code = bytearray(self.code[n] for n in kept)
        # Renumbering every posting is most of the work (tens of millions of numbers at 200,000 papers):
        # numpy does each in one step, so this thread holds the GIL briefly, not for seconds.
        import numpy as np

        mapping = np.frombuffer(renumber.tobytes(), dtype=np.int64)
        for key, posting in list(self.postings.items()):
            moved = mapping[np.frombuffer(posting.tobytes(), dtype=np.uint32)]
            moved = moved[moved >= 0]
            if len(moved):
                table.postings[key] = array("I", moved.astype(np.uint32).tobytes())
        return table

    def capture(self) -> Capture:
        """What ``dump`` needs, taken on the event loop in milliseconds (references and lengths: the
        table only ever grows at its ends, so a thread can then read up to these lengths at leisure)."""
        size = len(self.ids)
        return Capture(
            list(self.vocab),
            self.ids[:size],
            [(key, posting, len(posting)) for key, posting in self.postings.items()],
            sorted(set(range(size)).difference(self.numbers.values())),
            size,
            self,
        )

    @staticmethod
    def dump(capture: Capture, cursor: int) -> bytes:
        """A captured table as one blob, with the store cursor it is current to (run it in a thread).

        Compact for Redis: postings as gaps between numbers, word numbers as their low and high 16
        bits apart (the high half is nearly all zeros); each part compressed on its own, so loading
        decompresses them on every core at once.
        """
        import numpy as np  # here: only a process that searches writes or reads a snapshot

        table, size = capture.table, capture.size
        lengths = np.array([length for _, _, length in capture.postings], dtype=np.int64)
        postings = np.frombuffer(b"".join(p[:n].tobytes() for _, p, n in capture.postings), dtype=np.uint32)
        gaps = np.diff(postings.astype(np.int64), prepend=0)
        firsts = (np.cumsum(lengths) - lengths)[lengths > 0]
        gaps[firsts] = postings[firsts]  # each posting starts from its first number
        tokens = np.frombuffer(table.tokens[: table.starts[size]].tobytes(), dtype=np.uint32)
        sections = [
            "\n".join(capture.vocab).encode(),
            "\n".join(capture.ids).encode(),
            "\n".join(key for key, _, _ in capture.postings).encode(),
            table.starts[: size + 1].tobytes(),
            (tokens & 0xFFFF).astype(np.uint16).tobytes(),
            (tokens >> 16).astype(np.uint16).tobytes(),
            table.added[:size].tobytes(),
            table.published[:size].tobytes(),
            table.boost[:size].tobytes(),
            table.upvotes[:size].tobytes(),
            bytes(table.code[:size]),
            lengths.astype(np.uint32).tobytes(),
            gaps.astype(np.uint32).tobytes(),
            array("I", capture.dead).tobytes(),
        ]
        packed = [zlib.compress(section, 1) for section in sections]
        header = {
            "format": FORMAT,
            "byteorder": sys.byteorder,
            "cursor": cursor,
            "packed": [len(part) for part in packed],
            "counts": [len(capture.vocab), size, len(capture.postings)],
        }
        return _MAGIC + b"\n" + json.dumps(header).encode() + b"\n" + b"".join(packed)

    @classmethod
    def load(cls, blob: bytes) -> tuple[DocTable, int] | None:
        """The table and cursor a ``dump`` holds; None for a blob of another format or a damaged one."""
        try:
            magic, header_line, body = blob.split(b"\n", 2)
            header = json.loads(header_line)
            if magic != _MAGIC or header.get("format") != FORMAT or header.get("byteorder") != sys.byteorder:
                return None
            parts, at = [], 0
            for size in header["packed"]:
                parts.append(memoryview(body)[at : at + size])
                at += size
            if at != len(body) or len(parts) != 14:
                return None
            with ThreadPoolExecutor(max_workers=2) as pool:  # zlib lets go of the GIL while it works
                sections = list(pool.map(zlib.decompress, parts))
            return cls._from_sections([memoryview(s) for s in sections], header["counts"]), int(header["cursor"])
        except (ValueError, KeyError, TypeError, zlib.error, IndexError):
            return None

    @classmethod
    def _from_sections(cls, sections: list[memoryview], counts: list[int]) -> DocTable:
        import numpy as np

        vocab, ids, keys = (bytes(s).decode().split("\n") if n else [] for s, n in zip(sections[:3], counts, strict=True))
        table = cls()
        table.vocab = [sys.intern(word) for word in vocab]  # queries compare words: interned, like fresh ones
        table.word_numbers = {word: n for n, word in enumerate(table.vocab)}
        table.ids = ids
        low, high = (np.frombuffer(section, dtype=np.uint16).astype(np.uint32) for section in sections[4:6])
        table.tokens = array("I", ((high << 16) | low).tobytes())
        columns = zip(("starts", "added", "published", "boost", "upvotes"), (sections[3], *sections[6:10]), strict=True)
        for name, section in columns:
            column = array(getattr(table, name).typecode)
            column.frombytes(section)
            setattr(table, name, column)
        table.code = bytearray(sections[10])
        lengths = np.frombuffer(sections[11], dtype=np.uint32).astype(np.int64)
        sums = np.cumsum(np.frombuffer(sections[12], dtype=np.uint32), dtype=np.int64)
        # Each posting's numbers are the running sum of its gaps: subtract what came before it.
        before = np.concatenate(([0], sums))[np.cumsum(lengths) - lengths]
        everything = array("I", (sums - np.repeat(before, lengths)).astype(np.uint32).tobytes())
        dead = array("I")
        dead.frombytes(sections[13])
        at = 0
        for key, length in zip(keys, lengths.tolist(), strict=True):
            table.postings[key] = everything[at : at + length]
            at += length
        if len(table.starts) != len(ids) + 1 or len(table.upvotes) != len(ids) or at != len(everything):
            raise ValueError("inconsistent index snapshot")
        table.numbers = {ids[n]: n for n in sorted(set(range(len(ids))).difference(dead))}
        return table
