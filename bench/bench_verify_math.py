"""Math verification bench: skyboard's verifier vs math-verify called directly.

    .venv/bin/python bench/bench_verify_math.py [--math500 /work/shared/data/math500.jsonl]
        [--mv-tests DIR_OF_MATH_VERIFY_SDIST_TESTS]

(math-verify's tests: `pip download --no-binary :all: --no-deps math-verify==0.9.0 -d /tmp/mvsd`,
unpack, pass its tests/ folder.)

Pairs: MATH500 answers as (exact, equivalent rewrite, wrong = another problem's answer) and, when
given, the graded gold/pred pairs of math-verify's own test suite (its sdist's tests/*.py,
3-value `gold,pred,expected` parametrisations). Both verifiers run sequentially in one thread
on the same pairs, each getting the gold string exactly as the pair gives it (math-verify
direct: bare LaTeX wrapped in $...$, as our checker does); the symbolic worker is warmed up
first (on an unrelated pair, so no gold is cached before the timed run).
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, no PYTHONPATH

from distill.verify import VerifyConfig, verify  # noqa: E402
from distill.verify._mathworker import _wrap  # noqa: E402
from distill.verify.mathpool import get_pool  # noqa: E402
from distill.verify.mathv import as_number, normalise  # noqa: E402


def rewrite(ans: str, i: int) -> str:
    """An equivalent way to write `ans` (by construction), mixing cheap and symbolic cases."""
    n = as_number(normalise(ans))
    if re.fullmatch(r"-?\d{1,3}(?:,(?:\\!)?\d{3})+", ans.strip()):
        return re.sub(r",(?:\\!)?", "", ans)  # 10,\!080 -> 10080 (not "10, 080": a pair)
    if n is not None and re.fullmatch(r"-?\d+", ans.strip()):
        return [f"{ans}.0", f"\\dfrac{{{2 * int(ans)}}}{{2}}", f"x = {ans}"][i % 3]
    if isinstance(n, Fraction) and n.denominator != 1:
        d = n.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        return str(float(n)) if d == 1 else f"{n.numerator}/{n.denominator}"
    m = re.fullmatch(r"(\d+)\\sqrt\{?(\d+)\}?", ans.strip())
    if m:
        return f"\\sqrt{{{int(m.group(1)) ** 2 * int(m.group(2))}}}"
    out = (
        ans.replace("\\frac", "\\dfrac")
        .replace(",", ", ")
        .replace("\\left", "")
        .replace("\\right", "")
    )
    return out if out != ans else f"\\left({ans}\\right)" if ans.startswith("(") else f" {ans} "


def math500_pairs(path: Path) -> list[tuple[str, str, bool, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    answers = [r["answer"] for r in rows]
    pairs = []
    for i, ans in enumerate(answers):
        pairs.append((ans, f"So the final answer is $\\boxed{{{ans}}}$.", True, "math500-exact"))
        pairs.append(
            (
                ans,
                f"So the final answer is $\\boxed{{{rewrite(ans, i)}}}$.",
                True,
                "math500-equivalent",
            )
        )
        other = answers[(i + 7) % len(answers)]
        if normalise(other) != normalise(ans):
            pairs.append(
                (ans, f"So the final answer is $\\boxed{{{other}}}$.", False, "math500-wrong")
            )
    return pairs


def mv_test_pairs(tests_dir: Path) -> list[tuple[str, str, bool, str]]:
    pairs = []
    for file in sorted(tests_dir.glob("test_*.py")):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "parametrize"
                and len(node.args) >= 2
            ):
                continue
            try:
                names = ast.literal_eval(node.args[0])
                values = ast.literal_eval(node.args[1])
            except ValueError:
                continue
            names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
            if names != ["gold", "pred", "expected"]:
                continue
            for gold, pred, expected in values:
                pairs.append((gold, pred, bool(expected), f"math-verify:{file.stem}"))
    return pairs


def run_ours(pairs):
    config = VerifyConfig(math_timeout_s=5.0, math_workers=1)
    verify(
        {"domain": "math", "answer": "x^2"}, r"\boxed{x\cdot x}", config=config
    )
    # That pair is decided in-process, so start the symbolic worker explicitly: its start-up
    # (a Python process importing sympy and math-verify, ~1 s) is paid once per worker
    # process, not per verdict, and math-verify's own import is outside its timing too.
    get_pool(config.math_workers).check("\\cot x", "\\frac{\\cos x}{\\sin x}", 5.0)
    results, lat, paths = [], [], Counter()
    for gold, pred, _, _ in pairs:
        t = time.perf_counter()
        try:
            v = verify({"domain": "math", "answer": gold}, pred, config=config)
            ok = v.correct
            paths[v.detail.get("path", "none")] += 1
        except ValueError:
            ok = False
        lat.append(time.perf_counter() - t)
        results.append(ok)
    return results, lat, paths


def run_math_verify(pairs):
    from math_verify import parse
    from math_verify import verify as mv_verify

    results, lat = [], []
    for gold, pred, _, _ in pairs:
        t = time.perf_counter()
        g = _wrap(gold)
        try:
            ok = bool(mv_verify(parse(g), parse(pred)))
        except Exception:
            ok = False
        lat.append(time.perf_counter() - t)
        results.append(ok)
    return results, lat


def row(name, pairs, results, lat):
    acc = sum(r == p[2] for r, p in zip(results, pairs, strict=True)) / len(pairs)
    ms = sorted(x * 1000 for x in lat)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"| {name} | {len(pairs)} | {len(pairs) / sum(lat):.0f} | {statistics.median(ms):.2f} | {p95:.2f} | {100 * acc:.1f}% |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--math500", type=Path, default=Path("/work/shared/data/math500.jsonl"))
    parser.add_argument("--mv-tests", type=Path, help="tests/ folder of the math-verify sdist")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    sets = {"MATH500 variants": math500_pairs(args.math500)}
    if args.mv_tests:
        sets["math-verify test pairs"] = mv_test_pairs(args.mv_tests)
    print("| pairs | verifier | n | verdicts/s | p50 ms | p95 ms | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for label, pairs in sets.items():
        ours, ours_lat, paths = run_ours(pairs)
        mv, mv_lat = run_math_verify(pairs)
        agree = sum(a == b for a, b in zip(ours, mv, strict=True)) / len(pairs)
        print(f"| {label} " + row("skyboard", pairs, ours, ours_lat))
        print(f"| {label} " + row("math-verify direct", pairs, mv, mv_lat))
        speed = (len(pairs) / sum(ours_lat)) / (len(pairs) / sum(mv_lat))
        print(
            f"| {label} | agreement with math-verify: {100 * agree:.1f}%; speed-up {speed:.1f}x; "
            f"skyboard paths: {dict(paths)} | | | | | |"
        )
        worse = sum(o != p[2] and m == p[2] for o, m, p in zip(ours, mv, pairs, strict=True))
        better = sum(o == p[2] and m != p[2] for o, m, p in zip(ours, mv, pairs, strict=True))
        print(
            f"| {label} | pairs skyboard gets wrong and math-verify right: {worse}; "
            f"the reverse: {better} | | | | | |"
        )


if __name__ == "__main__":
    main()
