"""Math answers: extraction, normalisation and the cheap-then-symbolic equivalence cascade.

Cheap paths run in-process and decide most pairs in microseconds: normalised string equality,
then exact/close numbers (a difference between two plain numbers is decisive), then
element-wise for tuples/intervals/sets. Only what they cannot decide goes to math-verify in a
killable subprocess (mathpool), under a hard time limit.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from .boxed import all_boxes, braced, last_boxed
from .mathpool import get_pool
from .reasons import Reason


def _balanced(text: str, open_at: int) -> tuple[str, int] | None:
    """Contents of the brace group starting at text[open_at] == '{' and the index after it."""
    return braced(text, open_at)


_ANSWER_IS = re.compile(r"(?:final answer|the answer)\s*(?:is|:)?\s*[:=]?\s*(.+)", re.IGNORECASE)
_PHRASE = re.compile(r"final answer|the answer", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def extract_answer(response: str) -> tuple[str | None, str]:
    """The final answer and how it was found: boxed, answer_is, last_number or none."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed, "boxed"
    last = None
    for last in _ANSWER_IS.finditer(response):  # noqa: B007 (the last one is wanted)
        pass
    if last is not None:
        tail = last.group(1)
        # "Final Answer: The final answer is $12$." nests one phrase in the other: read after
        # the last phrase of the line (one pass; re-searching each tail was quadratic).
        inner = None
        for inner in _PHRASE.finditer(tail):  # noqa: B007
            pass
        if inner is not None:
            nested = _ANSWER_IS.match(tail, inner.start())
            tail = nested.group(1) if nested else tail
        tail = re.split(r"\.\s*I hope|\n", tail)[0].strip()
        tail = tail.strip().strip("*").strip()
        if tail.startswith("$"):
            body = tail.lstrip("$")
            end = body.find("$")
            tail = body[:end] if end > 0 else tail.strip("$")
        tail = tail.rstrip(".").strip()
        if tail:
            return tail, "answer_is"
    numbers = _NUMBER.findall(response)
    if numbers:
        return numbers[-1].rstrip(","), "last_number"
    return None, "none"


# ---------------------------------------------------------------------------------------------

_UNIT_WORDS = (
    r"degrees?|cm\^?2?|m\^?2?|km|meters?|inches|inch|feet|foot|ft|units?|square units|sq units|"
    r"dollars?|cents?|hours?|minutes?|seconds?|mph|miles?|days?|years?|pounds?|ounces?|cups?"
)


def normalise(answer: str) -> str:
    """Hendrycks/Sky-T1 style normalisation, extended; both sides go through the same steps."""
    s = answer.strip()
    s = re.sub(r",\s*\\!\s*(?=\d{3})", ",", s)  # "10,\!080", "10, \!080": thousands
    s = (
        s.replace("\n", " ")
        .replace("\\!", "")
        .replace("\\,", "")
        .replace("\\;", "")
        .replace("\\:", "")
    )
    s = (
        s.replace("\\ ", " ")
        .replace("\\left", "")
        .replace("\\right", "")
        .replace("\\displaystyle", "")
    )
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("\\$", "").replace("$", "")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s).replace("°", "")
    s = s.replace("\\%", "").replace("%", "").replace("\\percent", "")
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox|textnormal)\{\s*(?:" + _UNIT_WORDS + r")\s*\}", "", s)
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox|textnormal|mathbf)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"(?<=\d)\s*(?:" + _UNIT_WORDS + r")\b\.?$", "", s)
    s = s.replace("\\le", "\\le").replace("\\dots", "\\ldots").replace("\\cdots", "\\ldots")
    # \frac12 -> \frac{1}{2}, \sqrt3 -> \sqrt{3}
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*\{([^{}]*)\}\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\sqrt\s*(\d+|[a-z])", r"\\sqrt{\1}", s)
    # A lone variable prefix ("x = 5", "k=3") says nothing about the value.
    parts = s.split("=")
    if len(parts) == 2 and re.fullmatch(r"\s*[A-Za-z](?:_\{?\w+\}?)?\s*", parts[0]):
        s = parts[1]
    s = s.replace("{,}", ",").strip()
    # Thousands separators: "10,000" and "10{,}000", not "32, 349" (a pair).
    thousands = re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s) is not None
    s = s.replace(" ", "")
    if thousands:
        s = s.replace(",", "")
    s = re.sub(r"(?<![\d])\.(\d)", r"0.\1", s)
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    if re.fullmatch(r"[A-Za-z][A-Za-z ]+", s):
        s = s.lower()
    return s


_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")
_MIXED = re.compile(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}")


def as_number(s: str) -> Fraction | float | None:
    """A plain number (int, decimal, a/b, \\frac{a}{b}, scientific) or None."""
    m = _MIXED.fullmatch(s)
    if m and int(m.group(4)) != 0:  # 4\frac{2}{3} is 4 + 2/3 (math-verify reads it so too)
        value = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return -value if m.group(1) else value
    m = _FRAC.fullmatch(s)
    if m:
        if int(m.group(3)) == 0:
            return None
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return -value if m.group(1) else value
    m = re.fullmatch(r"(-?\d+)/(\d+)", s)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    if re.fullmatch(r"-?\d+(?:\.\d+)?", s):
        return Fraction(s)
    if re.fullmatch(r"-?\d+(?:\.\d+)?(?:e|\\times10\^|\\cdot10\^)\{?-?\d+\}?", s):
        mant, exp = re.split(r"e|\\times10\^|\\cdot10\^", s)
        try:
            return float(mant) * 10 ** int(exp.strip("{}"))
        except OverflowError:
            return None
    return None


_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def _latex_to_py(s: str) -> str | None:
    """A Python expression for simple LaTeX (numbers, one-letter variables, \\frac, \\sqrt,
    \\pi, ^, \\cdot, implicit products) or None. Variables become names `v_<letter>`; `e` and
    `i` (constants or variables?), subscripts and `f(x)` (call or product?) are refused."""
    out, i = "", 0
    while i < len(s):
        if s.startswith("\\frac", i) or s.startswith("\\sqrt", i):
            cmd, i = s[i + 1 : i + 5], i + 5
            root = None
            if cmd == "sqrt" and s[i : i + 1] == "[":
                end = s.find("]", i)
                if end < 0:
                    return None
                root, i = _latex_to_py(s[i + 1 : end]), end + 1
                if root is None:
                    return None
            args = []
            for _ in range(2 if cmd == "frac" else 1):
                if s[i : i + 1] != "{":
                    return None
                group = _balanced(s, i)
                if group is None:
                    return None
                inner = _latex_to_py(group[0])
                if inner is None:
                    return None
                args.append(inner)
                i = group[1]
            if cmd == "frac":
                out += f"@(({args[0]})/({args[1]}))"
            else:
                out += f"@(({args[0]})**(1/({root})))" if root else f"@sqrt({args[0]})"
            continue
        for word, py in (
            ("\\pi", "@pi"),
            ("\\cdot", "*"),
            ("\\times", "*"),
            ("{", "("),
            ("}", ")"),
            ("^", "**"),
        ):
            if s.startswith(word, i):
                out, i = out + py, i + len(word)
                break
        else:
            ch = s[i]
            if ch.isdigit() or ch in ".+-*/() ":
                out += ("@" if ch == "(" else "") + ch
                i += 1
            elif ch.isascii() and ch.isalpha() and ch not in "ei":
                nxt = s[i + 1 : i + 2]
                if nxt in ("(", "_", "'") or nxt.isdigit():
                    return None
                out, i = out + "@v_" + ch, i + 1
            else:
                return None
    # '@' marks an implicit product; it is a real '*' only after a value.
    out = re.sub(r"(^|[-+*/(@])\s*@", r"\1", out)
    out = re.sub(r"(^|[-+*/(@])\s*@", r"\1", out)
    return out.replace("@", "*")


def _eval_node(node: ast.AST, env: dict[str, float] | None = None) -> float:
    if isinstance(node, ast.Expression):
        return _eval_node(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id == "pi":
            return math.pi
        if env is not None and node.id in env:
            return env[node.id]
        raise ValueError(f"unknown name {node.id}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_node(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", "") == "sqrt"
        and len(node.args) == 1
    ):
        return math.sqrt(_eval_node(node.args[0], env))
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval_node(node.left, env), _eval_node(node.right, env)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise OverflowError("too large to evaluate cheaply")
        return float(_BIN[type(node.op)](left, right))
    raise ValueError("not a closed-form expression")


_EVAL_ERRORS = (
    SyntaxError,
    ValueError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    RecursionError,
)


@lru_cache(maxsize=4096)
def _expression(s: str) -> tuple[ast.Expression, frozenset[str]] | None:
    """Parsed simple expression and its variable names, or None."""
    if len(s) > 400:
        return None  # no answer key has such a closed form; the evaluator would recurse deeply
    if re.search(r"[A-Za-z]{2}", re.sub(r"\\[A-Za-z]+", " ", s)):
        return None  # "pct", "cm", "xy": words and units are not products of variables
    py = _latex_to_py(s)
    if not py or len(py) > 400:
        return None
    try:
        tree = ast.parse(py, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None
    names = frozenset(
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith("v_")
    )
    return tree, names


def _evaluate(tree: ast.Expression, env: dict[str, float] | None = None) -> float | None:
    try:
        value = _eval_node(tree, env)
    except _EVAL_ERRORS:
        return None
    return value if isinstance(value, float) and math.isfinite(value) else None


def closed_form_value(s: str) -> float | None:
    """Numeric value of a constant expression such as 3\\sqrt{13} or \\frac{\\pi}{2}, else None."""
    parsed = _expression(s)
    if parsed is None or parsed[1] or not re.search(r"\d|\\pi", s):
        return None
    return _evaluate(parsed[0])


# Points for the identity test of expressions with variables: irrational-looking, both signs
# (a square root of a negative value refuses to decide rather than hide |x| vs x).
_POINTS = (
    (0.7548776662, 1.3247179572, -0.5698402910, 2.2055694304, -1.4655712319),
    (1.6180339887, -0.4142135624, 0.8392867552, -1.7320508076, 0.3819660113),
    (-1.1892071150, 0.6823278038, 1.4655712319, 0.5436890127, -2.0800838231),
)


def _values(tree: ast.Expression, names: frozenset[str]) -> list[float | None]:
    order = sorted(names)
    return [
        _evaluate(tree, {n: point[k % len(point)] + 0.01 * k for k, n in enumerate(order)})
        for point in _POINTS
    ]


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def _identity(g: str, p: str) -> bool | None:
    """Two expressions in the same variables: equal at every test point → True, clearly
    different at one → False (exact polynomial/rational identities; anything the tiny
    evaluator cannot read returns None)."""
    eg, ep = _expression(g), _expression(p)
    if eg is None or ep is None or not eg[1] or eg[1] != ep[1]:
        return None
    vg, vp = _values(*eg), _values(*ep)
    if any(
        a is not None and b is not None and not _close(a, b, 1e-6)
        for a, b in zip(vg, vp, strict=True)
    ):
        return False
    if all(
        a is not None and b is not None and _close(a, b, 1e-9) for a, b in zip(vg, vp, strict=True)
    ):
        return True
    return None


def _non_constant(s: str) -> bool:
    """True when `s` is an expression in some variable that takes different values. A bare
    `<number><letter>` ("5s", "2k") is not read as one: the letter may be a unit."""
    if not re.search(r"[+\-^/(]|\\frac|\\sqrt|\\cdot", s.lstrip("-")) and not re.fullmatch(
        r"-?[\d.]*[xyznktabrpq]", s
    ):
        return False
    parsed = _expression(s)
    if parsed is None or not parsed[1]:
        return False
    values = _values(*parsed)
    if None in values:
        return False
    return any(not _close(values[0], v, 1e-6) for v in values[1:])


def _numbers_close(a: Fraction | float, b: Fraction | float, rel_tol: float) -> bool:
    if a == b:
        return True
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-12)


def _split_top(s: str) -> list[str] | None:
    """Top-level comma split of a tuple/interval/set body; None if brackets do not balance."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return None
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts if depth == 0 else None


_WRAPPERS = (("(", ")"), ("[", "]"), ("\\{", "\\}"), ("[", ")"), ("(", "]"))
# Words that can stand for a number or a special value: never "different in kind" from one.
_NUMBERISH_WORD = re.compile(
    r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|teen|twenty|thirty|"
    r"forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|half|halve|"
    r"third|quarter|fourth|fifth|pi|inf|undefined|none|nan|empty|real|all|no"
)


_COMPLEX = re.compile(r"(-?\d+(?:\.\d+)?)?(?:([+-]?)(\d+(?:\.\d+)?)?i)")


def as_complex(s: str) -> complex | None:
    """a+bi, a-bi, bi, i (plain decimals) as a complex number, else None."""
    m = _COMPLEX.fullmatch(s)
    if m is None or (m.group(1) is not None and m.group(2) == ""):
        return None
    imag = float(m.group(3)) if m.group(3) else 1.0
    return complex(float(m.group(1) or 0), -imag if m.group(2) == "-" else imag)


_BASED = re.compile(r"(\d+)_\{?(\d+)\}?")


def as_based(s: str) -> tuple[int, int] | None:
    """52_8 → (decimal value of the digits read in base 8, the digits read in base 10)."""
    m = _BASED.fullmatch(s)
    if m is None or not 2 <= int(m.group(2)) <= 36:
        return None
    try:
        return int(m.group(1), int(m.group(2))), int(m.group(1))
    except ValueError:
        return None


def _is_value(s: str) -> bool:
    return as_number(s) is not None or closed_form_value(s) is not None


_ASSIGNED = re.compile(r"\(?[A-Za-z](?:_\{?\w+\}?)?(?:,[A-Za-z](?:_\{?\w+\}?)?)*\)?")


def _shape(s: str) -> str | None:
    """Coarse kind of a normalised answer: number, complex, word, list (≥2 elements, unions,
    a ± b), matrix, equation, expr (varies with its variable), or None (unknown)."""
    if _is_value(s) or as_based(s) is not None:
        return "number"
    c = as_complex(s)
    if c is not None and c.imag != 0:
        return "complex"
    if re.fullmatch(r"[a-z]{3,}", s) and not _NUMBERISH_WORD.search(s):
        return "word"
    if s.startswith("\\begin{") and "matrix}" in s[:16]:
        return "matrix"
    body = re.sub(r"^[A-Za-z]\\in", "", s)
    if "\\cup" in body and re.fullmatch(r"[(\[].*[)\]]", body):
        return "list"
    for lo, hi in _WRAPPERS:
        if body.startswith(lo) and body.endswith(hi):
            parts = _split_top(body[len(lo) : -len(hi)])
            if parts and len(parts) > 1 and all(x.strip() for x in parts):
                return "list"
    parts = _split_top(s)
    if parts and len(parts) > 1 and all(_is_value(x) for x in parts):
        return "list"  # "3, 5, 7"
    if s.count("\\pm") == 1 and all(_is_value(x) for x in s.split("\\pm") if x):
        return "list"  # 1 \pm \sqrt{19}: two values
    sides = s.split("=")
    if (
        len(sides) == 2
        and all(x.strip() for x in sides)
        and not any(_ASSIGNED.fullmatch(x) for x in sides)  # "(p,q)=(3,2)" is (3,2)
        and not re.search(r"[<>]|\\[lg]e|\\ne", s)
    ):
        return "equation"
    if _non_constant(s):
        return "expr"
    return None


def _cheap(g: str, p: str, rel_tol: float, depth: int = 0) -> bool | None:
    """True/False when decided without symbolic maths, None when symbolic is needed."""
    if g == p:
        return True
    ng, np_ = as_number(g), as_number(p)
    if ng is not None and np_ is not None:
        return _numbers_close(ng, np_, rel_tol)
    # Closed forms (radicals, pi, nested fractions): distinct values decide "wrong"; equal
    # values within 1e-9 decide "right" (different closed forms agreeing that closely do not
    # occur in answer keys).
    vg = float(ng) if ng is not None else closed_form_value(g)
    vp = float(np_) if np_ is not None else closed_form_value(p)
    if vg is not None and vp is not None:
        return math.isclose(
            vg,
            vp,
            rel_tol=max(rel_tol, 1e-9) if (ng is None) == (np_ is None) else 1e-9,
            abs_tol=1e-12,
        )
    cg, cp = as_complex(g), as_complex(p)
    if (cg is not None or vg is not None) and (cp is not None or vp is not None):
        a, b = cg if cg is not None else complex(vg), cp if cp is not None else complex(vp)
        return abs(a - b) <= 1e-9 * max(1.0, abs(a))
    bg, bp = as_based(g), as_based(p)
    if bg is not None and bp is not None and bg[0] == bp[0]:
        return True  # 52_8 and 52_{8}
    for based, other in ((bg, vp), (bp, vg)):
        if based is not None and other is not None and float(other) not in (based[0], based[1]):
            return False  # 52_8 is 42 (or, read loosely, 52); 72 is neither
    # A constant never equals an expression that varies with its variable.
    if (vg is not None and _non_constant(p)) or (vp is not None and _non_constant(g)):
        return False
    identity = _identity(g, p)
    if identity is not None:
        return identity
    # Different in kind: a number is not a word, a tuple/interval/set or a matrix.
    kinds = {_shape(g), _shape(p)}
    if len(kinds) == 2 and None not in kinds:
        return False
    if depth == 0:
        for lo, hi in _WRAPPERS:
            if g.startswith(lo) and g.endswith(hi) and p.startswith(lo) and p.endswith(hi):
                ge, pe = _split_top(g[len(lo) : -len(hi)]), _split_top(p[len(lo) : -len(hi)])
                if ge and pe and len(ge) > 1 and len(pe) > 1 and len(ge) != len(pe):
                    return False  # (1, 2) vs (1, 2, 3)
                if ge and pe and len(ge) == len(pe) and len(ge) > 1:
                    if lo == "\\{":  # sets: order does not matter
                        ge, pe = sorted(ge), sorted(pe)
                    verdicts = [_cheap(a, b, rel_tol, 1) for a, b in zip(ge, pe, strict=True)]
                    if all(v is True for v in verdicts):
                        return True
                    # Ordered tuples/intervals of plain numbers: one differing element decides.
                    if lo != "\\{" and None not in verdicts:
                        return False
                break
    return None


# ---------------------------------------------------------------------------------------------
# Where math-verify would look. Its extraction (parse) ranks "final answer is $X$. I hope" above
# boxes, joins adjacent boxes ("\boxed{1}, \boxed{2}", "\boxed{a} and \boxed{b}") into a set and
# prefers a "final answer ... is $X$" that ends after the last box. Our last-box answer is only
# *decisive* when none of that can happen; otherwise math-verify reads the whole text.

_BETWEEN_BOXES = re.compile(
    r"(?:\s|\$|[,;.&]|\\quad|\\qquad|\\text\{[^{}]*\}|\\mbox\{[^{}]*\}|\\[()\[\]]|\\\\|and|or)*"
)
_HOPE = re.compile(r"final answer is", re.IGNORECASE)
_FINAL_IS_AFTER = re.compile(r"\bis\b\s*:?\s*(?:\$|\\\(|\\\[)")


def decisive_box(text: str) -> tuple[str | None, bool]:
    """The last box's content and whether math-verify would extract the same thing from `text`."""
    boxes = all_boxes(text, last=2)
    if not boxes or boxes[-1].content is None:
        return None, False
    last = boxes[-1]
    confident = True
    if len(boxes) > 1:
        prev = boxes[-2]
        if prev.end > last.start - 80 or _BETWEEN_BOXES.fullmatch(text, prev.end, last.start):
            confident = False  # several boxes close together can be read as one answer set
    tail = text[last.end :]
    if "answer" in tail.lower():
        confident = False
    elif "I hope" in text and _HOPE.search(text):
        confident = False
    elif _FINAL_IS_AFTER.search(tail) and re.search(
        "final answer", text[max(0, last.start - 120) : last.start], re.I
    ):
        confident = False
    return last.content, confident


_DELIMS = re.compile(
    r"^\s*(?:\$\$|\$|\\\(|\\\[)\s*(.*?)\s*(?:\$\$|\$|\\\)|\\\])\s*\.?\s*$", re.DOTALL
)


def gold_answer(gold: str) -> tuple[str, bool]:
    """The reference answer to compare cheaply, and whether that is safe: a plain answer (math
    delimiters removed) or the one box math-verify would read; golds with several boxes or
    prose around an unboxed answer are left to math-verify."""
    text = gold.strip()
    if "\\boxed" in text or "\\fbox" in text:
        content, confident = decisive_box(text)
        return (content if content is not None else text), confident and content is not None
    m = _DELIMS.match(text)
    if m:
        text = m.group(1)
    return text, "$" not in text.replace("\\$", "") and "\\(" not in text


_MAX_FINAL_BOXES = 32


def final_boxes(text: str) -> tuple[str | None, str | None]:
    """The final answer of a response with boxes, and the text math-verify is given for it.

    The last box decides. Boxes right before it, separated only by punctuation, spaces,
    "and"/"or" or `\\quad`, are part of the same final answer (`x = \\boxed{1}, \\boxed{2}`)
    and are read with it as one list; an earlier box with words in between (a draft, a
    rejected attempt) is never read.
    """
    boxes = all_boxes(text, last=_MAX_FINAL_BOXES)
    if not boxes or boxes[-1].content is None:
        return None, None
    first = len(boxes) - 1
    while (
        first > 0
        and boxes[first - 1].content is not None
        and _BETWEEN_BOXES.fullmatch(text, boxes[first - 1].end, boxes[first].start)
    ):
        first -= 1
    contents = [box.content or "" for box in boxes[first:]]
    pred = ", ".join(f"\\boxed{{{c}}}" for c in contents)
    return ", ".join(contents), f"${pred}$"


def _percent_equal(g: str, p: str, gold: str, extracted: str) -> bool:
    """10\\% and 0.1 are the same answer (math-verify accepts both readings of a percentage:
    the number and a hundredth of it)."""
    if "%" not in gold and "%" not in extracted and "percent" not in gold + extracted:
        return False
    vg = as_number(g) if as_number(g) is not None else closed_form_value(g)
    vp = as_number(p) if as_number(p) is not None else closed_form_value(p)
    if vg is None or vp is None:
        return False
    return any(
        math.isclose(float(a) / 100, float(b), rel_tol=1e-9, abs_tol=1e-12)
        for a, b in ((vg, vp), (vp, vg))
    )


@dataclass
class MathOutcome:
    reason: Reason
    extracted: str | None
    detail: dict


def verify_math(
    gold: str, response: str, timeout_s: float, rel_tol: float = 1e-4, pool_size: int = 2
) -> MathOutcome:
    """Verdict for one math response.

    The answer is the last box (`final_boxes`): it alone is compared, cheaply in-process when
    the comparison is certain (equal normalised strings, exact/close numbers, mixed numbers,
    percentages, closed forms, different kinds, polynomial identities), else by math-verify on
    that box alone, in a killable subprocess. Only a response without a box falls back to an
    "answer is" phrase or the last number, and then math-verify reads the whole response with
    its own extraction (a fallback reading never decides on its own). A box is never
    overridden by anything else in the response.
    """
    extracted, method = extract_answer(response)
    detail: dict = {"extraction": method}
    g, gold_ok = gold_answer(str(gold))
    boxed_pred = None
    if method == "boxed":
        extracted, boxed_pred = final_boxes(response)
    if extracted is not None and extracted.strip() and gold_ok:
        p = normalise(extracted)
        ng = normalise(g)
        detail["normalised"] = p
        if boxed_pred is not None:
            cheap = _cheap(ng, p, rel_tol)
            if cheap is False and _percent_equal(ng, p, g, extracted):
                cheap = True
            if cheap is not None:
                detail["path"] = "cheap"
                return MathOutcome(
                    Reason.CORRECT if cheap else Reason.WRONG_ANSWER, extracted, detail
                )
    if not response.strip():
        return MathOutcome(Reason.NO_ANSWER_FOUND, None, detail)
    detail["path"] = "symbolic"
    # The final box(es) alone; without a box, the whole response, where math-verify's own
    # extraction decides what the answer is.
    raw = boxed_pred is None
    pred = response if raw else boxed_pred
    result = get_pool(pool_size).check(str(gold), pred, timeout_s, raw=raw)
    if result.timeout:
        return MathOutcome(Reason.VERIFIER_TIMEOUT, extracted, detail)
    if result.error:
        detail["error"] = result.error
        return MathOutcome(Reason.VERIFIER_ERROR, extracted, detail)
    if not result.pred_parsed and extracted is None:
        return MathOutcome(Reason.NO_ANSWER_FOUND, None, detail)
    return MathOutcome(Reason.CORRECT if result.equal else Reason.WRONG_ANSWER, extracted, detail)
