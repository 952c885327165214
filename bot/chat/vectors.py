"""Paper vectors and a reader's taste.

A paper's vector is wordllama's 256-d embedding of its title and abstract, kept as 2-bit integers
(64 bytes in Redis, one byte a component in memory):
the weights ship inside the wheel, so nothing is downloaded and nothing leaves the machine.
``bench/similar_quality.py`` chose it over tf-idf and keyword overlap on a real arXiv listing
(``bench/README.md``). A reader's taste is a logistic regression on the vectors of what they saved
against recent papers they did not save, as arxiv-sanity-lite trains one linear model per tag.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.model import Paper

if TYPE_CHECKING:
    import numpy as np

DIMENSIONS = 256
STORED = DIMENSIONS // 4  # bytes of a stored vector: four 2-bit components a byte
BATCH = 256  # texts embedded at once: bounded memory, and the tokenizer works on both cores


TEXT_CHARS = 2000  # a vector is made from the title and this much of the abstract (~400 tokens; real ones are shorter)


def text_of(paper: Paper) -> str:
    """What a paper's vector is made from: its title and the start of its abstract (bounded, so a feed of
    20 KB abstracts costs no more memory than a real one)."""
    return f"{paper.title}. {paper.abstract[:TEXT_CHARS]}"


def quantized(rows: np.ndarray) -> np.ndarray:
    """Rows as 2-bit levels (-3, -1, 1, 3, held in int8): each component's place among four bands of
    its row's mean magnitude. A sixteenth of float32's size; the quality set ranks the same within its
    noise (nDCG@10 0.249 against 0.254 for float32, precision@5 0.228 against 0.220; bench/README.md)."""
    import numpy as np

    scale = np.abs(rows).mean(axis=1, keepdims=True).clip(1e-9)
    codes = np.clip(np.floor(rows / scale), -2, 1) + 2  # 0…3
    out: np.ndarray = (2 * codes - 3).astype(np.int8)
    return out


def packed(row: np.ndarray) -> bytes:
    """A quantized row as stored: four components a byte (64 bytes)."""
    import numpy as np

    codes = ((row.astype(np.int16) + 3) // 2).astype(np.uint8)
    return bytes(codes[0::4] << 6 | codes[1::4] << 4 | codes[2::4] << 2 | codes[3::4])


def unpacked(blob: bytes) -> np.ndarray | None:
    """A stored vector as its int8 row; None for a blob of another size (another format)."""
    import numpy as np

    if len(blob) != STORED:
        return None
    raw = np.frombuffer(blob, dtype=np.uint8)
    row = np.empty(DIMENSIONS, dtype=np.int8)
    for k, shift in enumerate((6, 4, 2, 0)):
        row[k::4] = 2 * ((raw >> shift) & 3).astype(np.int8) - 3
    return row


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows (of any type) as float32 unit vectors, ready for cosine by dot product."""
    import numpy as np

    out = rows.astype(np.float32)
    out /= np.linalg.norm(out, axis=-1, keepdims=True).clip(1e-9)
    return out


class Embedder:
    """Embeds paper texts; the model loads on first use (~0.6 s), once per process, in any thread."""

    def __init__(self) -> None:
        self._model: Any = None
        self._loading = threading.Lock()

    def _loaded(self) -> Any:
        with self._loading:
            if self._model is None:
                import wordllama
                from wordllama import WordLlama

                # The wheel's own folder serves as the cache: its loader looks for the tokenizer under a
                # folder name the wheel does not use and would otherwise try to download it.
                package = Path(wordllama.__file__).parent
                self._model = WordLlama.load(cache_dir=package, disable_download=True)
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """int8 rows (len(texts) × 256), one per text (run it in a thread: ~1 ms a paper)."""
        import numpy as np

        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.int8)
        model = self._loaded()
        parts = [np.asarray(model.embed(list(texts[i : i + BATCH])), dtype=np.float32) for i in range(0, len(texts), BATCH)]
        return quantized(np.vstack(parts))


def train_taste(positives: np.ndarray, negatives: np.ndarray, steps: int = 200, l2: float = 0.01) -> np.ndarray:
    """Weights of a logistic regression: saved (positives) against not saved (negatives), the two
    classes weighted equally whatever their sizes; rows are unit vectors (float32)."""
    import numpy as np

    x = np.vstack([positives, negatives]).astype(np.float32)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))]).astype(np.float32)
    balance = np.where(y == 1, 0.5 / max(len(positives), 1), 0.5 / max(len(negatives), 1)).astype(np.float32)
    w = np.zeros(x.shape[1], dtype=np.float32)
    bias = 0.0
    for _ in range(steps):  # plain gradient descent: 200 steps over a few hundred rows is ~10 ms
        p = 1 / (1 + np.exp(-(x @ w + bias)))
        g = (p - y) * balance
        w -= 4.0 * (x.T @ g + l2 * w)
        bias -= 4.0 * float(g.sum())
    return w
