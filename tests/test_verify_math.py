"""Math and multiple-choice verdicts through the public verify()."""

from __future__ import annotations

import threading

import pytest

from distill.verify import InvalidProblem, Reason, VerifyConfig, verify, verify_many
from distill.verify.mathv import extract_answer, last_boxed
from distill.verify.mcq import extract_choice


def math(answer: str) -> dict:
    return {"domain": "math", "answer": answer}


def test_last_boxed_matches_nested_braces_and_fbox():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{a}{b^{2}}} end") == r"\frac{a}{b^{2}}"
    assert last_boxed(r"\fbox{42}") == "42"
    assert last_boxed(r"so \boxed 7.") == "7"
    assert last_boxed(r"unclosed \boxed{3") is None


@pytest.mark.parametrize(
    ("response", "expected", "method"),
    [
        (r"The answer is $\frac{3}{4}$.", r"\frac{3}{4}", "answer_is"),
        ("Final Answer: The final answer is $12$. I hope it is correct.", "12", "answer_is"),
        ("we get 3 apples and then 17 pears", "17", "last_number"),
        ("I cannot solve this.", None, "none"),
    ],
)
def test_answer_extraction_fallbacks(response, expected, method):
    assert extract_answer(response) == (expected, method)


EQUIVALENT = [
    (r"\frac{1}{2}", r"\boxed{0.5}"),
    (r"\frac{1}{2}", r"\boxed{\dfrac12}"),
    (r"\frac{\sqrt{3}}{2}", r"\boxed{\frac{1}{2}\sqrt{3}}"),
    (r"2\sqrt{2}", r"\boxed{\sqrt{8}}"),
    (r"3\pi", r"\boxed{\pi \cdot 3}"),
    (r"(3, -\frac{1}{2})", r"\boxed{\left(3, -0.5\right)}"),
    (r"[-2, 5)", r"\boxed{[-2,5)}"),
    (r"(-\infty, 1) \cup (2, \infty)", r"\boxed{(2,\infty)\cup(-\infty,1)}"),
    (r"\{1, 2, 3\}", r"\boxed{\{3, 1, 2\}}"),
    (
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        r"\boxed{\begin{pmatrix}1&2\\3&4\end{pmatrix}}",
    ),
    (r"y = 2x + 3", r"\boxed{y=3+2x}"),
    ("x = 5", r"\boxed{5}"),
    (r"25\%", r"\boxed{25}"),
    (r"5\text{ cm}", r"\boxed{5}"),
    (r"90^\circ", r"\boxed{90}"),
    (r"\text{Evelyn}", r"\boxed{\text{evelyn}}"),
    ("10,000", r"\boxed{10000}"),
    (r"x^2 + 2x + 1", r"\boxed{(x+1)^2}"),
]


@pytest.mark.parametrize(("gold", "response"), EQUIVALENT)
def test_equivalent_answers_are_correct(gold, response):
    verdict = verify(math(gold), f"Thinking... {response}")
    assert verdict.reason == Reason.CORRECT, (verdict.extracted, verdict.detail)


WRONG = [
    (r"\frac{1}{2}", r"\boxed{0.51}"),
    (r"2\sqrt{2}", r"\boxed{\sqrt{6}}"),
    (r"(3, 4)", r"\boxed{(4, 3)}"),
    (r"[-2, 5)", r"\boxed{[-2,5]}"),
    (r"\text{Evelyn}", r"\boxed{\text{Bob}}"),
    (r"x^2 + 2x + 1", r"\boxed{(x-1)^2}"),
]


@pytest.mark.parametrize(("gold", "response"), WRONG)
def test_different_answers_are_wrong(gold, response):
    verdict = verify(math(gold), response)
    assert verdict.reason == Reason.WRONG_ANSWER and not verdict.correct


def test_plain_numbers_are_decided_without_symbolic_work():
    verdict = verify(math("1024"), r"\boxed{1,024}")
    assert verdict.correct and verdict.detail["path"] == "cheap"
    assert verify(math("7"), r"\boxed{8}").detail["path"] == "cheap"


def test_no_answer_and_truncation():
    assert verify(math("3"), "no idea").reason == Reason.NO_ANSWER_FOUND
    truncated = verify(math("3"), r"... \boxed{3}", "length")
    assert truncated.reason == Reason.TRUNCATED and not truncated.correct


def test_symbolic_blowup_is_a_verifier_timeout_even_off_the_main_thread():
    config = VerifyConfig(math_timeout_s=1.0)
    result: list = []
    # A Celery task or verify_many runs off the main thread, where signal.alarm cannot work.
    thread = threading.Thread(
        target=lambda: result.append(
            verify(math("1"), r"\boxed{10^{10^{10}} - 10^{10^{10}} + 1}", config=config)
        )
    )
    thread.start()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert result[0].reason == Reason.VERIFIER_TIMEOUT and result[0].ms < 5000
    # The pool recovers: the next symbolic check still works.
    assert verify(math(r"\frac{\sqrt{2}}{2}"), r"\boxed{1/\sqrt{2}}", config=config).correct


def test_verify_many_keeps_input_order():
    items = [(math(str(n)), rf"\boxed{{{n if n % 3 else n + 1}}}", "stop") for n in range(12)]
    verdicts = verify_many(items, max_workers=3)
    assert [v.correct for v in verdicts] == [bool(n % 3) for n in range(12)]


# --- never worse than math-verify: cheap paths decide only when certain ----------------------

# (gold, response, correct): pairs from math-verify's own graded tests that a last-box or
# last-number reading gets wrong; the cascade must defer them to math-verify.
DEFERRED = [
    # several boxes read together as one answer set
    (r"\{1, 2, 3\}", r"\boxed{1}, \boxed{2}, \boxed{3}", True),
    (r"\(\boxed{1}\) and \(\boxed{-2}\).", r"$\boxed{-2,1}$.", True),
    # no marked answer: the last number is only a hint
    ("2", "AZYUK2A", False),
    # a unit word after the number is not a product of variables
    (r"28\%", r"$\boxed{28 pct}", True),
    # "(p,q)=(3,2)" is the pair (3, 2), not an equation of a different kind
    ("(p,q)=(3,2)", r"$\boxed{(3, 2)}$", True),
]


@pytest.mark.parametrize(("gold", "response", "correct"), DEFERRED)
def test_uncertain_readings_are_left_to_math_verify(gold, response, correct):
    verdict = verify(math(gold), response)
    assert verdict.correct is correct, (verdict.reason, verdict.extracted, verdict.detail)
    assert verdict.detail["path"] == "symbolic"


@pytest.mark.parametrize(
    ("gold", "response", "correct"),
    [
        ("13", r"\boxed{6 - 5i}", False),  # number vs complex
        ("6-5i", r"\boxed{6 - 5i}", True),
        (r"3\sqrt{13}", r"\boxed{(2,\infty)}", False),  # number vs interval
        ("7", r"\boxed{(0,9) \cup (9,36)}", False),  # number vs union
        ("225", r"\boxed{3, 5, 7}", False),  # number vs list
        ("21", r"\boxed{1 \pm \sqrt{19}}", False),  # number vs two values
        (r"\text{Navin}", r"\boxed{60}", False),  # word vs number
        ("1", r"\boxed{2k+2}", False),  # constant vs a varying expression
        ("350", r"\boxed{5x - 7y + 11z + 4 = 0}", False),  # number vs equation
        ("52_8", r"\boxed{72}", False),  # 42 (or 52), never 72
        ("52_8", r"\boxed{52_{8}}", True),
        (r"x^2 + 2x + 1", r"\boxed{(x+1)(1+x)}", True),  # identity at sample points
        (r"\frac{x^2-1}{x-1}", r"\boxed{x - 1}", False),
        ("10,\\!080", r"\boxed{10, \!080}", True),  # thousands with \!
        (r"\$18.90", r"\boxed{18.9}", True),  # a currency sign is not a math delimiter
    ],
)
def test_certain_pairs_are_decided_in_process(gold, response, correct):
    verdict = verify(math(gold), f"So the final answer is ${response}$.")
    assert verdict.detail["path"] == "cheap", (verdict.extracted, verdict.detail)
    assert verdict.correct is correct


def test_a_comma_and_space_is_a_pair_not_a_thousands_separator():
    verdict = verify(math(r" So the answer is: \[ \boxed{32349} \]"), r"is $\boxed{32, 349}$")
    assert verdict.reason == Reason.WRONG_ANSWER


def test_unit_letters_do_not_make_a_number_an_expression():
    # "5s" may be five seconds: not decided as "constant vs expression" in-process
    assert verify(math("5"), r"\boxed{5s}").detail["path"] == "symbolic"


def test_one_last_boxed_for_verifiers_and_dataset_adapters():
    from distill.datasets import last_boxed as datasets_last_boxed
    from distill.datasets.latex import last_boxed as latex_last_boxed

    assert datasets_last_boxed is last_boxed and latex_last_boxed is last_boxed
    # An unbalanced final box is not replaced by an earlier one.
    assert last_boxed(r"\boxed{1} ... so \boxed{\frac{2}{3}") is None
    assert last_boxed(r"set \boxed{\{1, 2\}} done") == r"\{1, 2\}"
    assert last_boxed(r"\boxedx \boxed{4} \boxedy") == "4"
    # The verifier then falls back to math-verify on the whole text (never a cheap verdict).
    verdict = verify(math("2"), r"\boxed{2} ... so \boxed{\frac{2}{3}")
    assert verdict.detail["extraction"] != "boxed" and verdict.detail["path"] == "symbolic"


def test_unusable_problems_raise():
    with pytest.raises(InvalidProblem):
        verify({"domain": "chemistry", "answer": "1"}, r"\boxed{1}")
    with pytest.raises(InvalidProblem):
        verify({"domain": "math", "answer": ""}, r"\boxed{1}")


# --- multiple choice -------------------------------------------------------------------------

OPTIONS = ["12", "15", "18", "21"]


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        (r"So the answer is \boxed{C}.", "C"),
        (r"\boxed{(B)}", "B"),
        (r"\boxed{\text{D}}", "D"),
        (r"\boxed{B) 15}", "B"),
        (r"\boxed{18}", "C"),  # the option's text instead of its letter
        ("After all that, the answer is (B).", "B"),
        ("**Answer:** D", "D"),
        ("Answer: A", "A"),
    ],
)
def test_mcq_letter_extraction(response, letter):
    assert extract_choice(response, OPTIONS)[0] == letter


@pytest.mark.parametrize(
    "response",
    [
        "The answer is a multiple of three, I think.",
        "Answer: A good guess would be one of them.",
        "the answer is b",
        "I pick option E.",  # only four options
    ],
)
def test_mcq_never_reads_english_words_as_letters(response):
    assert extract_choice(response, OPTIONS) == (None, "none")


def test_mcq_verdicts():
    problem = {"domain": "mcq", "answer": "B", "options": OPTIONS}
    assert verify(problem, "The answer is a tricky one... Answer: (B)").reason == Reason.CORRECT
    assert verify(problem, r"\boxed{A}").reason == Reason.WRONG_ANSWER
    assert verify(problem, "hmm").reason == Reason.NO_ANSWER_FOUND


# --- the last box decides; equivalences math-verify accepts -------------------------------------


@pytest.mark.parametrize(
    ("gold", "response", "correct"),
    [
        # An earlier box (a draft, a rejected try) is never read, whatever comes after it.
        (
            "42",
            r"We try \boxed{41} first, but that fails. The answer is therefore \boxed{42}.",
            True,
        ),
        (
            "41",
            r"We try \boxed{41} first, but that fails. The answer is therefore \boxed{42}.",
            False,
        ),
        # An "answer is" phrase or a number after the box is not a second opinion.
        ("7", r"So \boxed{7}. (I first thought the answer is 8.)", True),
        ("8", r"So \boxed{7}. (I first thought the answer is 8.)", False),
        (
            "10455",
            r"... $0.05 \cdot 10,200 \cdot \frac{1}{2} = \boxed{255}$ So he has $10,455. "
            "Final Answer: The final answer is $10,455$. I hope it is correct.",
            False,
        ),
        # Without a box the phrase is the fallback.
        ("12", "Final Answer: The final answer is $12$. I hope it is correct.", True),
        # Boxes that together form the final answer are read together.
        ("(2, 2), (6, 2)", r"$$\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}$$", True),
        # Listing candidates in a row is a list, not any one of them.
        ("2", r"\boxed{1}, \boxed{2}, \boxed{3}", False),
    ],
)
def test_the_last_box_decides(gold, response, correct):
    verdict = verify(math(gold), response)
    assert verdict.correct is correct, (verdict.reason, verdict.extracted, verdict.detail)
    assert verdict.detail["extraction"] == ("answer_is" if "boxed" not in response else "boxed")


@pytest.mark.parametrize(
    ("gold", "response", "correct"),
    [
        (r"\frac{14}{3}", r"\boxed{4\frac{2}{3}}", True),
        (r"4\frac{2}{3}", r"\boxed{\frac{14}{3}}", True),
        (r"-4\frac{2}{3}", r"\boxed{-\frac{14}{3}}", True),
        (r"\frac{8}{3}", r"\boxed{4\frac{2}{3}}", False),  # not the product 4 * 2/3
        (r"10\%", r"\boxed{0.1}", True),
        (r"0.1", r"\boxed{10\%}", True),
        (r"10", r"\boxed{10\%}", True),
        (r"50\%", r"\boxed{\frac{1}{2}}", True),
        (r"12.5\%", r"\boxed{0.125}", True),
        (r"0.5", r"\boxed{50}", False),  # a hundredfold only where a percent sign says so
        (r"10\%", r"\boxed{0.2}", False),
    ],
)
def test_mixed_numbers_and_percentages(gold, response, correct):
    verdict = verify(math(gold), response)
    assert verdict.correct is correct, (verdict.reason, verdict.extracted, verdict.detail)
