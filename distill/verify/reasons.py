"""Machine-readable verdict reasons shared by every verifier and stored with each sample."""

from enum import StrEnum


class Reason(StrEnum):
    CORRECT = "correct"
    WRONG_ANSWER = "wrong_answer"
    NO_ANSWER_FOUND = "no_answer_found"
    TRUNCATED = "truncated"
    NO_CODE_BLOCK = "no_code_block"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    EARLY_EXIT = "early_exit"
    TEST_FAILED = "test_failed"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SANDBOX_VIOLATION = "sandbox_violation"
    VERIFIER_TIMEOUT = "verifier_timeout"
    VERIFIER_ERROR = "verifier_error"


# Module-level aliases so callers can write `reasons.TIMEOUT` as well as `Reason.TIMEOUT`.
globals().update({member.name: member for member in Reason})
__all__ = ["Reason", *[member.name for member in Reason]]
