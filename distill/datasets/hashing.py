"""Content hashes for spotting the same problem twice, within and across datasets."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalise_prompt(prompt: str) -> str:
    """NFKC, case-folded, whitespace collapsed: copies that differ only in such noise
    (full-width digits, non-breaking spaces, reflowed lines) compare equal."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", prompt).casefold()).strip()


def content_hash(problem: dict) -> str:
    """Hex SHA-256 of the domain and the normalised prompt.

    The domain takes part so the same words posed as a math problem and as a coding task
    stay distinct; answers and sources do not, so one problem in two datasets collides.
    """
    key = f"{problem['domain']}\x00{normalise_prompt(problem['prompt'])}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
