"""Sets of paper numbers as Python integers: bit n is set when paper n is in the set.

A query over 200,000 papers combines sets of up to 200,000 numbers; as ``set`` objects each
intersection walks them element by element (~3 ms), as 25 KB integers ``&``, ``|`` and ``bit_count``
take microseconds. numpy packs a posting into one and lists one's members (~1 ms for 200,000, 20x
a Python loop); the index keeps the big ones (``BitCache``) and extends them as their posting grows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence


def from_numbers(numbers: Iterable[int], size: int) -> int:
    """The set of ``numbers`` (each below ``size``)."""
    import numpy as np  # here, not at the top: a plain ``paperbot run --once`` never searches

    flags = np.zeros(size + 1, dtype=np.bool_)
    flags[np.fromiter(numbers, dtype=np.int64)] = True
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def from_sorted(numbers: Sequence[int]) -> int:
    """The set of ``numbers``, ascending: only the span between the first and the last is built."""
    if not numbers:
        return 0
    import numpy as np

    low = numbers[0] & ~7
    flags = np.zeros(numbers[-1] - low + 1, dtype=np.bool_)
    flags[np.asarray(numbers, dtype=np.int64) - low] = True
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little") << low


def members(bits: int) -> list[int]:
    """The numbers in ``bits``, ascending."""
    import numpy as np

    data = np.frombuffer(bits.to_bytes((bits.bit_length() + 7) >> 3, "little"), dtype=np.uint8)
    found: list[int] = np.flatnonzero(np.unpackbits(data, bitorder="little")).tolist()
    return found


class Membership:
    """O(1) membership tests on one set (``n in bits`` on an int would shift all of it)."""

    def __init__(self, bits: int) -> None:
        self._data = bits.to_bytes((bits.bit_length() + 7) >> 3, "little")

    def __contains__(self, n: int) -> bool:
        at = n >> 3
        return at < len(self._data) and bool(self._data[at] >> (n & 7) & 1)


class BitCache:
    """Bit sets of the postings a search used, kept up to ``budget`` bytes (least recently used go
    first) and extended when their posting has grown. Safe to read from a search thread."""

    def __init__(self, budget: int = 64 * 2**20) -> None:
        self._budget = budget
        self._used = 0
        self._sets: OrderedDict[str, tuple[int, int]] = OrderedDict()  # key → (bits, numbers covered)
        self._lock = threading.Lock()  # the event loop and the heavy-search lane share the cache

    def get(self, key: str, posting: Sequence[int]) -> int:
        """The set of ``posting`` (which only ever grows at its end)."""
        with self._lock:
            bits, covered = self._sets.get(key, (0, 0))
        length = len(posting)
        if covered == length:
            with self._lock:
                if key in self._sets:
                    self._sets.move_to_end(key)
            return bits
        bits |= from_sorted(posting[covered:length])
        if length >= 64:  # small ones are quicker to build than to keep
            with self._lock:
                old = self._sets.pop(key, None)
                self._used += (bits.bit_length() >> 3) - (old[0].bit_length() >> 3 if old else 0)
                self._sets[key] = (bits, length)
                while self._used > self._budget and self._sets:
                    _, (dropped, _) = self._sets.popitem(last=False)
                    self._used -= dropped.bit_length() >> 3
        return bits
