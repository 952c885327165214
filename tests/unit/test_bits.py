"""Bit sets of paper numbers agree with Python sets, however they were built or extended."""

from __future__ import annotations

import random
from array import array

from bot.query.bits import BitCache, Membership, from_numbers, from_sorted, members


def test_bit_sets_hold_exactly_their_numbers() -> None:
    rng = random.Random(1)
    for size in (1, 7, 8, 9, 1000, 70_000):
        numbers = sorted(rng.sample(range(size), rng.randint(0, min(size, 500))))
        bits = from_numbers(numbers, size)
        assert bits == from_sorted(numbers) == sum(1 << n for n in numbers)
        assert members(bits) == numbers
        inside = Membership(bits)
        assert [n for n in range(size + 10) if n in inside] == numbers


def test_the_cache_extends_a_growing_posting_and_drops_the_least_recently_used() -> None:
    posting = array("I", range(0, 1000, 3))
    cache = BitCache(budget=300)  # bytes: room for about two of these sets
    assert members(cache.get("a", posting)) == list(posting)
    posting.extend([1001, 1500, 4000])
    assert members(cache.get("a", posting)) == list(posting)  # extended, not rebuilt wrong
    other = array("I", range(1, 1000, 7))
    assert members(cache.get("b", other)) == list(other)
    assert members(cache.get("c", array("I", range(2, 1000, 5)))) == list(range(2, 1000, 5))
    assert members(cache.get("a", posting)) == list(posting)  # rebuilt after eviction: still right
