"""Topic queries: parsed once, matched against a paper's title, abstract and keywords."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import CommandError
from bot.model import Paper

_WORD = re.compile(r"[\w.+#]+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-case words; hyphens separate words, so ``vision-language`` is ``vision language``."""
    return _WORD.findall(text.lower().replace("-", " "))


@dataclass(frozen=True, slots=True)
class Query:
    """Every term must appear as a whole word in the paper's title, abstract or keywords."""

    terms: tuple[str, ...]

    def matches(self, paper: Paper) -> bool:
        """True when the paper contains every term."""
        haystack = set(words(" ".join((paper.title, paper.abstract, *paper.keywords))))
        return all(term in haystack for term in self.terms)


def parse_query(text: str) -> Query:
    """Parse a topic query; ``CommandError`` for an empty one."""
    terms = tuple(words(text))
    if not terms:
        raise CommandError(f"the topic {text!r} has no words to match")
    return Query(terms)
