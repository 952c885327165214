"""Topic matching: words, prepared papers (``Doc``), query nodes and ranking. ``bot.query.parser`` parses."""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.model import Paper

_TOKEN = re.compile(r"[^\W_]+")
_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_TITLE, _KEYWORDS, _ABSTRACT = 3.0, 2.0, 1.0


def fold(word: str) -> str:
    """A word's matching form: ``tokens`` → ``token``, ``studies`` → ``study``."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> tuple[str, ...]:
    """Folded words of ``text``: lower case, accents removed, split on anything but letters and digits."""
    plain = text.lower()
    if plain.isascii():  # most text is: a plain ASCII pattern, and no accents to strip
        return tuple(map(_folded, _ASCII_TOKEN.findall(plain)))
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", plain) if not unicodedata.combining(ch))
    return tuple(map(_folded, _TOKEN.findall(plain)))


@functools.lru_cache(maxsize=200_000)
def _folded(word: str) -> str:
    # Interned: the search index holds millions of words, mostly the same few thousand; the cache
    # makes folding a repeated word a dictionary hit.
    return sys.intern(fold(word))


@dataclass(frozen=True, slots=True)
class Doc:
    """A paper prepared for matching: its words and the few facts queries test, nothing more.

    Compact on purpose (tuples of interned words, no sets, not the paper itself): the search
    index keeps one per cached paper, 60,000 of them on a busy deployment.
    """

    paper_id: str
    title: tuple[str, ...]
    keywords: tuple[str, ...]
    abstract: tuple[str, ...]
    authors: tuple[tuple[str, ...], ...]
    organization: tuple[str, ...]
    categories: tuple[str, ...]
    published: datetime
    upvotes: int
    has_code: bool
    vocabulary: frozenset[str] | None = None  # every word, for O(1) misses; routing only (memory)

    @classmethod
    def of(cls, paper: Paper, vocabulary: bool = False) -> Doc:
        """Tokenize ``paper``; ``vocabulary`` also keeps a set of its words (fast, but ~4 KB a paper)."""
        doc = cls(
            paper_id=paper.id,
            title=words(paper.title),
            keywords=words(" ; ".join(paper.keywords)),
            abstract=words(paper.abstract),
            authors=tuple(words(a) for a in paper.authors),
            organization=words(paper.organization),
            categories=tuple(c.lower() for c in paper.categories),
            published=paper.published,
            upvotes=paper.upvotes or 0,
            has_code=bool(paper.links.code),
        )
        if vocabulary:
            object.__setattr__(doc, "vocabulary", frozenset((*doc.title, *doc.keywords, *doc.abstract)))
        return doc

    def index_keys(self) -> set[str]:
        """Everything an index may look this paper up by (see ``Query.anchors``): its words as they
        are (they never contain ':'), plus ``t:`` (title) and ``k:`` (keyword) words and ``cat:``,
        ``au:`` and ``org:`` keys."""
        keys = set(self.vocabulary) if self.vocabulary is not None else {*self.title, *self.keywords, *self.abstract}
        keys.update(f"t:{w}" for w in self.title)  # where a word stands decides its quality (title 3, keywords 2)
        keys.update(f"k:{w}" for w in self.keywords)
        keys.update(f"cat:{c}" for c in self.categories)
        keys.update(f"cat:{c.split('.')[0]}" for c in self.categories)
        keys.update(f"au:{w}" for name in self.authors for w in name)
        keys.update(f"org:{w}" for w in self.organization)
        return keys


_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def unspaced(tokens: tuple[str, ...]) -> bool:
    """True for Chinese, Japanese or Korean text, whose names are not split into words by spaces."""
    return any(_CJK.search(token) for token in tokens)


def _name_contains(name: tuple[str, ...], tokens: tuple[str, ...]) -> bool:
    # CJK names come as one token ("李小龍"): a query token matches inside it ("李"). Others: whole words.
    if unspaced(tokens):
        return " ".join(tokens) in " ".join(name)
    return _contains(name, tokens)


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    # tuple.index finds each occurrence of the first word at C speed; only those are compared.
    first, n = needle[0], len(needle)
    try:
        i = haystack.index(first)
        while haystack[i : i + n] != needle:
            i = haystack.index(first, i + 1)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------ nodes


@dataclass(frozen=True, slots=True)
class Words:
    """A word (one element) or a phrase (several, adjacent and in order)."""

    words: tuple[str, ...]

    def quality(self, doc: Doc) -> float:
        """How well it matches: 3 in the title, 2 in keywords, 1 in the abstract, 0 not at all."""
        vocabulary = doc.vocabulary
        if vocabulary is not None and not vocabulary.issuperset(self.words):
            return 0.0
        if len(self.words) == 1:
            word = self.words[0]
            if word in doc.title:
                return _TITLE
            if word in doc.keywords:
                return _KEYWORDS
            # With a vocabulary the word is known to be present, so it is in the abstract: no scan.
            return _ABSTRACT if vocabulary is not None or word in doc.abstract else 0.0
        for weight, text in ((_TITLE, doc.title), (_KEYWORDS, doc.keywords), (_ABSTRACT, doc.abstract)):
            if _contains(text, self.words):
                return weight
        return 0.0

    def hit(self, doc: Doc) -> bool:
        """Whether it matches at all; with a vocabulary, a single word costs one set lookup."""
        if doc.vocabulary is not None and len(self.words) == 1:
            return self.words[0] in doc.vocabulary
        return self.quality(doc) > 0

    def anchors(self) -> frozenset[str] | None:
        # Every word of a phrase must be present; the longest is usually the rarest.
        return frozenset({max(self.words, key=len)})


@dataclass(frozen=True, slots=True)
class Field:
    """``cat:``, ``author:``, ``org:``, ``code:``, ``like:`` or ``upvotes`` with a comparison.

    ``like:<arXiv id>~<threshold>`` matches papers whose vector is that close to the paper's (cosine);
    it is decided outside the query (``bot.chat.feed``), which fills ``members`` with the ids it matches.
    """

    name: str
    op: str
    value: str
    tokens: tuple[str, ...] = ()
    members: frozenset[str] | None = None  # like: only, once resolved

    @property
    def target(self) -> tuple[str, float]:
        """A ``like:`` term's paper id and threshold."""
        paper_id, _, threshold = self.value.partition("~")
        return paper_id, float(threshold)

    def quality(self, doc: Doc) -> float:
        if self.name == "like":
            hit = self.members is not None and doc.paper_id in self.members
        elif self.name == "cat":
            hit = self.value in doc.categories or any(c.startswith(self.value + ".") for c in doc.categories)
        elif self.name == "author":
            hit = any(_name_contains(name, self.tokens) for name in doc.authors)
        elif self.name == "org":
            hit = _name_contains(doc.organization, self.tokens)
        elif self.name == "code":
            hit = doc.has_code == (self.value == "yes")
        else:
            hit = compare(doc.upvotes, self.op, int(self.value))
        return 1.0 if hit else 0.0

    def hit(self, doc: Doc) -> bool:
        return self.quality(doc) > 0

    def anchors(self) -> frozenset[str] | None:
        if self.name == "cat":
            return frozenset({f"cat:{self.value}"})
        if self.name in ("author", "org") and not unspaced(self.tokens):
            return frozenset({f"{'au' if self.name == 'author' else 'org'}:{self.tokens[0]}"})
        return None  # code:, upvotes, like: and CJK names (matched inside a word, so no whole-word key)


def fields_of(node: Node) -> Iterator[Field]:
    """Every field term in ``node``, however deep."""
    if isinstance(node, Field):
        yield node
    elif isinstance(node, Not):
        yield from fields_of(node.node)
    elif isinstance(node, AllOf | AnyOf):
        for part in node.nodes:
            yield from fields_of(part)


def with_likes(node: Node, members: Mapping[str, frozenset[str]]) -> Node:
    """``node`` with each ``like:`` term's matching ids filled in (by its value)."""
    if isinstance(node, Field):
        return dataclasses.replace(node, members=members.get(node.value, frozenset())) if node.name == "like" else node
    if isinstance(node, Not):
        return Not(with_likes(node.node, members))
    if isinstance(node, AllOf | AnyOf):
        return type(node)(tuple(with_likes(part, members) for part in node.nodes))
    return node


def _breadth(anchors: frozenset[str]) -> float:
    """A guess at how many papers carry any of ``anchors``: categories are broad, long words rare."""
    cost = {"cat": 100.0, "org": 20.0, "au": 5.0}
    return sum(cost[key.split(":", 1)[0]] if ":" in key else 60.0 / len(key) for key in anchors)


_COMPARE: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "=": operator.eq,
}


def compare(left: int, op: str, right: int) -> bool:
    """``left op right`` for the comparisons ``upvotes`` accepts."""
    return _COMPARE[op](left, right)


@dataclass(frozen=True, slots=True)
class Not:
    """Matches when its part does not."""

    node: Node

    def quality(self, doc: Doc) -> float:
        return 0.0 if self.node.hit(doc) else 1.0

    def hit(self, doc: Doc) -> bool:
        return not self.node.hit(doc)

    def anchors(self) -> frozenset[str] | None:
        return None


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every part matches (implicit AND); quality is the parts' average."""

    nodes: tuple[Node, ...]

    def quality(self, doc: Doc) -> float:
        total = 0.0
        for node in self.nodes:
            q = node.quality(doc)
            if not q:
                return 0.0
            total += q
        return total / len(self.nodes)

    def hit(self, doc: Doc) -> bool:
        return all(node.hit(doc) for node in self.nodes)

    def anchors(self) -> frozenset[str] | None:
        # Every part must match, so any one part's anchors suffice: take the most selective.
        options = [a for a in (n.anchors() for n in self.nodes) if a is not None]
        return min(options, key=_breadth) if options else None


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one part matches (OR); quality is the best part's."""

    nodes: tuple[Node, ...]

    def quality(self, doc: Doc) -> float:
        return max(node.quality(doc) for node in self.nodes)

    def hit(self, doc: Doc) -> bool:
        return any(node.hit(doc) for node in self.nodes)

    def anchors(self) -> frozenset[str] | None:
        keys: set[str] = set()
        for node in self.nodes:
            part = node.anchors()
            if part is None:
                return None  # one branch can match anything, so the whole OR can
            keys |= part
        return frozenset(keys)


Node = Words | Field | Not | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed topic query; ``text`` is its canonical spelling (what subscriptions store)."""

    text: str
    root: Node

    def matches(self, doc: Doc) -> bool:
        """True when the paper satisfies the query (exactly when ``quality`` is positive)."""
        return self.root.hit(doc)

    def quality(self, doc: Doc) -> float:
        """Match quality in [0, 3]: higher when the words are in the title rather than the abstract."""
        return self.root.quality(doc)

    def anchors(self) -> frozenset[str] | None:
        """Index keys at least one of which every matching paper has (``Doc.index_keys``); None if no such set."""
        return self.root.anchors()


def rank(quality: float, doc: Doc, now: datetime) -> float:
    """Search order: match quality plus the paper's standing (recency and upvotes)."""
    return quality + standing(doc.published.timestamp(), upvote_boost(doc.upvotes), now.timestamp())


def standing(published: float, boost: float, now: float) -> float:
    """Recency (a 3-day half-life, from POSIX timestamps) plus the upvote boost: what ranks papers of
    equal quality. The search index computes it from stored numbers, so both must use this."""
    age_days = max(0.0, now - published) / 86400
    return 2.0 * math.pow(0.5, age_days / 3) + boost


def upvote_boost(upvotes: int) -> float:
    """Upvotes' share of the rank: logarithmic, so the tenth upvote counts more than the hundredth."""
    return 0.5 * math.log1p(upvotes)
