"""Benchmark metrics, Django-free: avg@n with its standard error, and unbiased pass@k.

avg@n is the mean correctness over every sample of every problem (Sky-T1's "accuracy"). Its
standard error treats problems as the unit of sampling: the n samples of one problem are not
independent draws from the benchmark, so the SE is that of the mean of per-problem accuracies,
``stdev(p_i) / sqrt(N)`` (sample standard deviation, ddof=1). With n=1 this is the usual
binomial SE of a proportion, ``sqrt(p(1-p)/(N-1))`` up to the ddof choice.

pass@k is the unbiased estimator of Chen et al. 2021 (the Codex / HumanEval paper):
``1 - C(n-c, k) / C(n, k)`` per problem, averaged over problems, computed as a product so
that large n never overflows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n samples,
    c of them correct, is correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n >= 1 and ks[-1] != n:
        ks.append(n)
    return ks


@dataclass
class Score:
    problems: int
    samples: int
    correct: int
    n: int  # samples per problem (the smallest count when problems differ)
    accuracy: float | None  # avg@n, 0..1
    stderr: float | None
    pass_at_k: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "problems": self.problems,
            "samples": self.samples,
            "correct": self.correct,
            "n": self.n,
            "accuracy": self.accuracy,
            "stderr": self.stderr,
            "pass_at_k": {str(k): v for k, v in self.pass_at_k.items()},
        }


def score(per_problem: Iterable[Sequence[bool]], ks: Sequence[int] | None = None) -> Score:
    """Metrics over ``[[correct of sample 0, sample 1, ...] per problem]``.

    Problems with no samples are ignored. pass@k is reported for every k not above the
    smallest per-problem sample count.
    """
    rows = [list(map(bool, r)) for r in per_problem if len(r)]
    if not rows:
        return Score(0, 0, 0, 0, None, None, {})
    n_min = min(len(r) for r in rows)
    per = [sum(r) / len(r) for r in rows]
    total = sum(len(r) for r in rows)
    correct = sum(sum(r) for r in rows)
    accuracy = sum(per) / len(per)
    if len(per) > 1:
        var = sum((p - accuracy) ** 2 for p in per) / (len(per) - 1)
        stderr = math.sqrt(var / len(per))
    else:
        stderr = None
    wanted = default_ks(n_min) if ks is None else [k for k in ks if 1 <= k <= n_min]
    passes = {k: sum(pass_at_k(len(r), sum(r), k) for r in rows) / len(rows) for k in wanted}
    return Score(len(rows), total, correct, n_min, accuracy, stderr, passes)


def combined_stderr(a: float | None, b: float | None) -> float:
    return math.sqrt((a or 0.0) ** 2 + (b or 0.0) ** 2)


def is_regression(
    previous: float | None, previous_se: float | None, current: float | None,
    current_se: float | None,
) -> bool:
    """Below the previous score by more than the combined standard error."""
    if previous is None or current is None:
        return False
    return previous - current > combined_stderr(previous_se, current_se)


def length_histogram(lengths: Iterable[int], bins: int = 20) -> dict:
    """Equal-width bins over [0, max]: {"edges": [...], "counts": [...]}."""
    values = [int(v) for v in lengths if v is not None]
    if not values:
        return {"edges": [], "counts": []}
    top = max(values) or 1
    width = max(1, math.ceil(top / bins))
    counts = [0] * (top // width + 1)
    for v in values:
        counts[v // width] += 1
    return {"edges": [i * width for i in range(len(counts) + 1)], "counts": counts}
