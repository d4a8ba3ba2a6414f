"""Evaluation pieces that need no Django: metrics and the benchmark registry."""

from .benchmarks import BY_SLUG, REGISTRY, SHIPPED, BenchmarkSpec, Template, render
from .metrics import Score, default_ks, is_regression, length_histogram, pass_at_k, score

__all__ = [
    "BY_SLUG",
    "REGISTRY",
    "SHIPPED",
    "BenchmarkSpec",
    "Score",
    "Template",
    "default_ks",
    "is_regression",
    "length_histogram",
    "pass_at_k",
    "render",
    "score",
]
