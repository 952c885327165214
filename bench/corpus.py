"""Synthetic but realistically shaped papers and topic queries for the benchmarks.

Words follow a Zipf distribution over a 6,000-word vocabulary (a few very common words, a long
tail), abstracts are ~150 words, titles ~9; subscriptions mix words, phrases, OR, NOT and fields.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate

from bot.model import Links, Paper

CATEGORIES = ["cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.RO", "stat.ML", "cs.IR", "cs.NE", "eess.AS", "q-bio.QM"]
ORGS = ["NVIDIA", "Google DeepMind", "Meta AI", "Tsinghua University", "MIT", "", "", ""]
SYLLABLES = ["ra", "to", "ken", "vi", "sion", "mo", "del", "gra", "ph", "dif", "fu", "lan", "gua", "ge", "ro", "bot", "re", "son"]


class Corpus:
    """Deterministic generator of papers and queries (same seed, same corpus)."""

    def __init__(self, seed: int = 42, vocabulary: int = 6000) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < vocabulary:
            words.add("".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(2, 4))))
        self.words = sorted(words)  # sorted first: a set's order changes with hash randomisation
        self.rng.shuffle(self.words)
        self._weights = list(accumulate(1 / (rank + 1) for rank in range(vocabulary)))
        self.surnames = [w.capitalize() for w in self.words[-800:]]

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self._weights, k=n))

    def paper(self, number: int, now: datetime) -> Paper:
        pid = f"26{number // 100000:02d}.{number % 100000:05d}"
        return Paper(
            id=pid,
            title=self.text(9).capitalize(),
            abstract=self.text(150),
            authors=tuple(
                f"{self.rng.choice(self.surnames)} {self.rng.choice(self.surnames)}" for _ in range(self.rng.randint(1, 8))
            ),
            published=now - timedelta(minutes=self.rng.randint(0, 30 * 24 * 60)),
            links=Links(abstract=f"https://arxiv.org/abs/{pid}", code=self.rng.choice(["", "", "https://github.com/a/b"])),
            sources=frozenset({"arxiv"}),
            categories=tuple(self.rng.sample(CATEGORIES, self.rng.randint(1, 3))),
            keywords=tuple(self.text(2) for _ in range(self.rng.randint(0, 5))),
            organization=self.rng.choice(ORGS),
            upvotes=int(self.rng.paretovariate(1.5)) - 1,
        )

    def papers(self, count: int, start: int = 0) -> list[Paper]:
        now = datetime.now(UTC)
        return [self.paper(start + n, now) for n in range(count)]

    def topic_word(self) -> str:
        """Log-uniform over ranks 300..6000: a topic word is in roughly 0.3% to 6% of papers."""
        return self.words[int(math.exp(self.rng.uniform(math.log(300), math.log(len(self.words) - 1))))]

    def common_word(self) -> str:
        """One of the 50 commonest words, each in a third to all of the papers."""
        return self.words[self.rng.randrange(50)]

    def query(self) -> str:
        """A topic as people write them: mostly mid-frequency words, some structure."""
        return self._shaped(self.topic_word, with_fields=True)

    def common_query(self) -> str:
        """A broad topic: the commonest words alone, ANDed, ORed or negated, or a phrase of one with a
        topic word: the worst case for a search that ranks every match."""
        if self.rng.random() < 0.15:
            pair = (self.common_word(), self.topic_word())
            return f'"{pair[0]} {pair[1]}"' if self.rng.random() < 0.5 else f'"{pair[1]} {pair[0]}"'
        return self._shaped(self.common_word, with_fields=False)

    def _shaped(self, word: Callable[[], str], with_fields: bool) -> str:
        shape = self.rng.random()
        if shape < 0.35:
            return word()
        if shape < 0.55:
            return f'"{word()} {word()}"' if with_fields else f"{word()} {word()}"
        if shape < 0.70:
            return f"{word()} OR {word()}"
        if shape < 0.80 or not with_fields:
            return f"{word()} -{word()}"
        if shape < 0.88:
            return f"cat:{self.rng.choice(CATEGORIES)} {word()}"
        if shape < 0.94:
            return f"author:{self.rng.choice(self.surnames)}"
        return f"{word()} upvotes>=5"

    def common_phrase(self) -> str:
        """A phrase of two of the commonest words: every paper has both, few have them side by side,
        so each candidate must be checked (the index's known worst case)."""
        return f'"{self.common_word()} {self.common_word()}"'
