"""Benchmark decontamination by word n-gram overlap.

A training problem is contaminated when it shares word n-grams (13 by default, the usual
choice since GPT-3) with a benchmark item. The index holds one hash per benchmark n-gram,
mapped to the items containing it; checking a problem costs one set lookup per n-gram.
Python's own string hash is used for speed, so an index lives in one process: rebuilding it
from a few thousand benchmark items takes well under a second.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_N = 13
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def ngrams(text: str, n: int) -> set[int]:
    """Hashes of the word n-grams of ``text``; a text shorter than n words is one n-gram."""
    tokens = words(text)
    if not tokens:
        return set()
    if len(tokens) < n:
        return {hash(" ".join(tokens))}
    return {hash(" ".join(tokens[i : i + n])) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class Overlap:
    item_ids: list[str]  # benchmark items sharing at least one n-gram, most shared first
    fraction: float  # share of the problem's n-grams found in the benchmark set

    @property
    def contaminated(self) -> bool:
        return bool(self.item_ids)


class NgramIndex:
    def __init__(self, n: int = DEFAULT_N) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self._items: dict[int, set[str]] = defaultdict(set)

    def add(self, item_id: str, text: str) -> None:
        for gram in ngrams(text, self.n):
            self._items[gram].add(item_id)

    def __len__(self) -> int:
        return len(self._items)

    def check(self, text: str) -> Overlap:
        grams = ngrams(text, self.n)
        if not grams:
            return Overlap([], 0.0)
        counts: dict[str, int] = defaultdict(int)
        hits = 0
        for gram in grams:
            owners = self._items.get(gram)
            if owners:
                hits += 1
                for item_id in owners:
                    counts[item_id] += 1
        ranked = sorted(counts, key=lambda item_id: (-counts[item_id], item_id))
        return Overlap(ranked, hits / len(grams))


def build_index(items: Iterable[tuple[str, str]], n: int = DEFAULT_N) -> NgramIndex:
    """An index over ``(item_id, text)`` pairs, e.g. MATH500 ids and problem statements."""
    index = NgramIndex(n)
    for item_id, text in items:
        index.add(item_id, text)
    return index
