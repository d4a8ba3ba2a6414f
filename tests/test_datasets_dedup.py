"""Duplicate detection by content hash and benchmark decontamination by n-gram overlap."""

from __future__ import annotations

import time

from distill.datasets import build_index, content_hash
from distill.datasets.decontam import NgramIndex

BASE = {"domain": "math", "prompt": "Find the sum of all integers $n$ such that $n^2 < 20$."}


def with_prompt(prompt: str, domain: str = "math") -> dict:
    return {"domain": domain, "prompt": prompt}


def test_same_problem_with_whitespace_case_or_unicode_noise_hashes_equal():
    variants = [
        "  find the SUM of all integers $n$ such\nthat $n^2 < 20$. ",
        "Find\tthe sum of all integers $n$  such that $n^2 < 20$.",
        "Find the sum of all integers $n$\u00a0such that $n^2 < \uff12\uff10$.",  # NBSP, full-width
    ]
    expected = content_hash(BASE)
    assert all(content_hash(with_prompt(v)) == expected for v in variants)


def test_near_misses_hash_differently():
    expected = content_hash(BASE)
    near = [
        "Find the sum of all integers $n$ such that $n^2 < 21$.",
        "Find the sum of all integers $n$ such that $n^2 \\le 20$.",
        "Find the product of all integers $n$ such that $n^2 < 20$.",
    ]
    assert all(content_hash(with_prompt(p)) != expected for p in near)
    assert content_hash(with_prompt(BASE["prompt"], domain="code")) != expected


BENCH = {
    "math500/1": "Let p be the smallest prime such that there is a positive integer n for which "
                 "n to the fourth plus one is divisible by p squared. Find the least such n.",
    "aime24/7": "Every morning Aya goes for a nine kilometer long walk and stops at a coffee shop "
                "afterwards, spending t minutes there before returning home.",
}


def test_copied_benchmark_problem_is_flagged_with_its_id_and_full_overlap():
    index = build_index(BENCH.items())
    overlap = index.check("Problem: " + BENCH["aime24/7"].upper())
    assert overlap.item_ids == ["aime24/7"]
    assert overlap.fraction > 0.9 and overlap.contaminated


def test_partial_copy_reports_the_shared_fraction():
    index = build_index(BENCH.items(), n=5)
    text = ("Every morning Aya goes for a nine kilometer long walk and then solves an unrelated "
            "puzzle about colouring the squares of a chessboard with three colours")
    overlap = index.check(text)
    assert overlap.item_ids == ["aime24/7"]
    assert 0.2 < overlap.fraction < 0.6


def test_unrelated_problem_and_shared_short_phrases_are_clean():
    index = build_index(BENCH.items())
    overlap = index.check("Find the least positive integer n such that n squared ends in 2024.")
    assert overlap.item_ids == [] and overlap.fraction == 0.0 and not overlap.contaminated
    assert index.check("").fraction == 0.0


def test_short_benchmark_items_match_only_whole():
    index = NgramIndex(13)
    index.add("gsm8k/5", "What is two plus two?")
    assert index.check("what is TWO plus two").item_ids == ["gsm8k/5"]
    assert index.check("What is two plus three?").item_ids == []


def test_index_checks_thousands_of_problems_quickly():
    bench = [(f"b{i}", " ".join(f"w{(i * 7 + k) % 5000}" for k in range(60))) for i in range(2000)]
    index = build_index(bench)
    # Mostly clean problems (their own vocabulary), every 100th a benchmark copy.
    problems = [
        bench[i % 2000][1] if i % 100 == 0 else " ".join(f"v{(i * 13 + k) % 4999}" for k in range(80))
        for i in range(5000)
    ]
    started = time.perf_counter()
    flagged = sum(index.check(text).contaminated for text in problems)
    elapsed = time.perf_counter() - started
    assert flagged == 50
    # About 0.1 ms a problem here: 100k problems in well under a minute. The bound is loose
    # because the test machine is shared.
    assert elapsed < 4.0
