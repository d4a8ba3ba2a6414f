"""What a review page costs the server for long traces, and the agreement maths at scale.

For traces of 10k, 50k and 200k characters (prose with LaTeX, and the same size of hostile
HTML/JS): the sanitised markdown render, and the raw-vs-reformatted word diff against a
rewrite with about 5% of its words changed and its lines re-wrapped. Then Cohen's kappa and
Krippendorff's alpha over 20,000 samples seen by three reviewers. No database needed. The
browser's time to first paint is measured by ``tests/test_browser_review.py``.

    .venv/bin/python bench/bench_review.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "skyboard.settings")

PROSE = ("Let me compute the sum. We have $a_n = \\frac{n(n+1)}{2}$, so for n = {i} the value "
         "is {v}. Wait, let me double-check that step: yes, it holds. ")
HOSTILE = ("<script>alert(1)</script><img src=x onerror=alert(2)> [x](javascript:alert(3)) "
           "<iframe srcdoc='<script>alert(4)</script>'></iframe> $\\frac{a}{b}$ **b** ")


def prose(n: int, rng: random.Random) -> str:
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append(PROSE.replace("{i}", str(i)).replace("{v}", str(rng.randrange(10**6))))
        if i % 7 == 6:
            out.append("\n\n")
        i += 1
    return "".join(out)[:n]


def rewrite(text: str, rng: random.Random) -> str:
    words = text.split()
    for j in range(len(words)):
        if rng.random() < 0.05:
            words[j] = rng.choice(["so", "thus", "hence", "therefore"])
    lines, line = [], []
    for w in words:  # re-wrapped at 80 columns, as a reformatter might
        line.append(w)
        if sum(len(x) + 1 for x in line) > 80:
            lines.append(" ".join(line))
            line = []
    lines.append(" ".join(line))
    return "<|begin_of_thought|>\n" + "\n".join(lines) + "\n<|end_of_thought|>"


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    import django

    django.setup()
    from distill.curation.render import render_markdown
    from experiments.models.review import cohen_kappa, krippendorff_alpha
    from experiments.views.review import reformatted_body, word_diff

    rng = random.Random(0)
    print("| trace | chars | render (ms) | word diff vs rewrite (ms) | copied |")
    print("|---|---|---|---|---|")
    for n in (10_000, 50_000, 200_000):
        for kind, text in (("prose", prose(n, rng)),
                           ("hostile", (HOSTILE * (n // len(HOSTILE) + 1))[:n])):
            ref = reformatted_body(rewrite(text, rng))
            render_s = timed(lambda t=text: render_markdown(t), a.repeat)
            diff_s = timed(lambda t=text, r=ref: word_diff(t, r), a.repeat)
            copied = word_diff(text, ref)["copied"]
            print(f"| {kind} | {n:,} | {render_s * 1e3:.0f} | {diff_s * 1e3:.0f} | "
                  f"{copied:.3f} |")

    labels = ["correct", "incorrect", "bad_format", "unfaithful", "other"]
    units = [[rng.choices(labels, weights=[6, 2, 1, 1, 0.5])[0] for _ in range(3)]
             for _ in range(20_000)]
    alpha_s = timed(lambda: krippendorff_alpha(units), a.repeat)
    kappa_s = timed(lambda: cohen_kappa([(u[0], u[1]) for u in units]), a.repeat)
    print(f"\nKrippendorff's alpha, 20,000 samples × 3 reviewers: {alpha_s * 1e3:.0f} ms; "
          f"Cohen's kappa, 20,000 pairs: {kappa_s * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
