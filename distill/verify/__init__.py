"""skyboard's verification engine (Django-free): math, code and multiple-choice verdicts.

from distill.verify import verify, verify_many, Verdict, VerifyConfig, reasons
"""

from . import reasons
from .core import InvalidProblem, Verdict, VerifyConfig, check_problem, verify, verify_many
from .reasons import Reason
from .sandbox import SandboxLimits, SandboxUnavailable

__all__ = [
    "InvalidProblem",
    "Reason",
    "SandboxLimits",
    "SandboxUnavailable",
    "Verdict",
    "VerifyConfig",
    "check_problem",
    "reasons",
    "verify",
    "verify_many",
]
