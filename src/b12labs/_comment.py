"""The short interpretive comment a lab can print (≤ 400 characters, decision-support wording).

Built from the status, the fired codes and the actions only (never from values), so the batch
scorer can build it once per distinct combination.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

__all__ = ["MAX_COMMENT", "STATUS_SENTENCES", "comment"]

MAX_COMMENT = 400

STATUS_SENTENCES = {
    "deficient": "Results are consistent with B12 deficiency.",
    "probable": "Raised MMA: functional B12 deficiency is probable.",
    "indeterminate": "B12 status is indeterminate: deficiency is not excluded.",
    "unlikely": "B12 deficiency is unlikely on these results.",
    "uninterpretable": "B12 results reflect B12 treatment and do not show B12 status.",
    "not_assessed": "B12 status not assessed (no B12, active B12 or MMA result).",
}


@functools.lru_cache(maxsize=65536)
def comment(status: str, urgent: Sequence[str], actions: Sequence[str]) -> str:
    """``urgent``: titles of critical findings; ``actions``: short action phrases."""
    parts = [STATUS_SENTENCES[status]]
    if urgent:
        parts.append("Urgent: " + "; ".join(urgent) + ".")
    if actions:
        parts.append("Consider: " + "; ".join(actions) + ".")
    parts.append("Decision support only; interpret with the clinical picture.")
    text = " ".join(parts)
    if len(text) > MAX_COMMENT:
        text = text[: MAX_COMMENT - 1].rstrip() + "…"
    return text
