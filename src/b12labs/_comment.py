"""The interpretive comment a lab prints on the report (docs/clinical-logic.md §6.1).

``status sentence · one clause per critical and warning finding (most severe first) ·
Suggest: tests and reviews by name · (+N more findings) · disclaimer``, at most
``comment_limit`` characters (400 by default) and never cut inside a word.

Built from the status, its reason, the fired findings (code, branch, severity) and the actions
only (never from values), so the batch scorer builds it once per distinct combination and gets
exactly the text ``interpret()`` gives.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from .profiles import Profile

__all__ = [
    "DEFAULT_COMMENT_LIMIT",
    "DISCLAIMER",
    "STATUS_REASONS",
    "STATUS_SENTENCES",
    "check_comment_limit",
    "comment",
    "reason_name",
    "resolve_comment_limit",
    "status_sentence",
]

DEFAULT_COMMENT_LIMIT = 400

DISCLAIMER = "Decision support only; interpret with the clinical picture."

#: (status, reason) -> sentence; reason ``None`` is the sentence for the status whatever made it.
STATUS_SENTENCES: dict[tuple[str, str | None], str] = {
    ("deficient", None): "Results are consistent with B12 deficiency.",
    ("deficient", "b12"): "Low total B12: results are consistent with B12 deficiency.",
    ("deficient", "holotc"): "Low active B12 (holoTC): results are consistent with B12 deficiency.",
    ("probable", None): "B12 deficiency is probable.",
    ("probable", "mma"): "Raised MMA: functional B12 deficiency is probable.",
    ("probable", "mma_renal"): (
        "MMA markedly raised despite renal impairment: functional B12 deficiency is probable."
    ),
    ("probable", "if_antibody"): (
        "Positive intrinsic-factor antibody: B12 deficiency due to pernicious anaemia is probable."
    ),
    ("probable", "homocysteine_nitrous"): (
        "Raised homocysteine with nitrous oxide exposure: functional B12 deficiency is probable."
    ),
    ("probable", "mma_child"): "Raised MMA: B12 deficiency or an inborn error of metabolism.",
    ("indeterminate", None): "B12 status is indeterminate: deficiency is not excluded.",
    ("unlikely", None): "B12 deficiency is unlikely on these results.",
    ("uninterpretable", None): "B12 results reflect B12 treatment and do not show B12 status.",
    ("not_assessed", None): (
        "B12 status not assessed (no usable B12, active B12, MMA or homocysteine result)."
    ),
}

#: The reasons the engine may give for a status, by code (0: none given). The engine supplies
#: ``Facts.status_reason`` as one of these codes (an int array in the batch shape) or names.
STATUS_REASONS: tuple[str | None, ...] = (
    None,
    *dict.fromkeys(reason for _, reason in STATUS_SENTENCES if reason is not None),
)


def reason_name(reason: Any) -> str | None:
    """A reason as given by the engine (``None``, a code of :data:`STATUS_REASONS`, or a name)."""
    if reason is None or isinstance(reason, str):
        return reason or None
    return STATUS_REASONS[int(reason)]


def status_sentence(status: str, reason: str | None = None) -> str:
    """The sentence the comment opens with, for the status and what made it.

    ``reason=None`` gives the status's generic sentence. A reason that cannot make this status
    (``status_sentence("unlikely", "mma")``) is a defect of the caller and raises ``ValueError``.
    """
    try:
        return STATUS_SENTENCES[(status, reason)]
    except KeyError:
        valid = [r for s, r in STATUS_SENTENCES if s == status and r is not None]
        if (status, None) not in STATUS_SENTENCES:
            raise ValueError(f"unknown status {status!r}") from None
        raise ValueError(
            f"status {status!r} has no reason {reason!r} (its reasons: {valid or 'none'})"
        ) from None


def check_comment_limit(limit: object, *, where: str = "comment_limit") -> int:
    """``limit`` if it is a positive whole number of characters, else :class:`InputError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InputError(
            "the comment limit must be a positive whole number of characters",
            analyte=where,
            reported=limit,
            accepted=f"an integer >= 1 (default {DEFAULT_COMMENT_LIMIT})",
            code="option-invalid",
        )
    return limit


def resolve_comment_limit(limit: int | None, profile: Profile) -> int:
    """The limit of a call: as given, else the profile's ``comment_limit``, else 400."""
    if limit is not None:
        return check_comment_limit(limit)
    return profile.comment_limit or DEFAULT_COMMENT_LIMIT


#: a test "named" in a clause speaks of the test, not of the vitamin ("B12 deficiency")
_NOT_THE_TEST = r"(?!\s+(?:deficiency|deficient|status|replacement|treatment|therapy)\b)"


@functools.lru_cache(maxsize=512)
def _name_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-]){_NOT_THE_TEST}", re.IGNORECASE)


def _sentence(clauses: Sequence[str]) -> str:
    text = "; ".join(clauses)
    return text[:1].upper() + text[1:] + "."


def _more(findings: int, suggestions: int) -> str:
    parts = []
    if findings:
        parts.append(f"+{findings} more finding{'s' if findings != 1 else ''}")
    if suggestions:
        parts.append(f"{suggestions} more suggestion{'s' if suggestions != 1 else ''}")
    return f"({', '.join(parts)})" if parts else ""


def _assemble(opening: str, clauses: Sequence[str], suggest: Sequence[str], more: str) -> str:
    parts = [opening]
    if clauses:
        parts.append(_sentence(clauses))
    if suggest:
        sep = "; " if any("," in s for s in suggest) else ", "
        parts.append("Suggest: " + sep.join(suggest) + ".")
    if more:
        parts.append(more)
    parts.append(DISCLAIMER)
    return " ".join(parts)


@functools.lru_cache(maxsize=65536)
def comment(
    status: str,
    reason: str | None,
    clauses: tuple[tuple[int, str], ...],
    suggestions: tuple[tuple[str, str], ...],
    limit: int = DEFAULT_COMMENT_LIMIT,
) -> str:
    """The printed comment.

    ``clauses``: ``(severity rank, clause)`` of every finding in finding order (most severe
    first, catalogue order within a severity); info findings (rank 1) give no clause.
    ``suggestions``: ``(kind, name)`` of the actions recommended, in finding order
    (``("order_test", "MMA")``, ``("review", "MRI cervical spine …")``); ``avoid`` actions are
    the point of their finding's clause, not a suggestion.

    No point is made twice: identical clauses once, a test or review already named in a clause
    is not suggested again. Over the limit, warning clauses are left out (last first) and
    counted in "(+N more findings)", then suggestions (last first); the status sentence, the
    critical clauses and the disclaimer always stay (the limit yields when they alone overflow).
    """
    critical: list[str] = []
    warning: list[str] = []
    seen: set[str] = set()
    for rank, clause in clauses:
        if rank < 2:
            continue
        text = clause.strip().rstrip(".")
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            (critical if rank >= 3 else warning).append(text)
    offered = [
        name for kind, name in dict.fromkeys(suggestions) if kind in ("order_test", "review")
    ]
    opening = status_sentence(status, reason)
    # leave out warning clauses (least severe, last in catalogue order first), then suggestions
    for left_out in range(len(warning) + 1):
        kept = critical + warning[: len(warning) - left_out]
        suggest = _not_named(offered, tuple(kept))
        dropped = range(len(suggest) + 1) if left_out == len(warning) else range(1)
        for gone in dropped:
            text = _assemble(opening, kept, suggest[: len(suggest) - gone], _more(left_out, gone))
            if len(text) <= limit:
                return text
    # everything that may go has gone: say how much in fewer words if that fits, else not at
    # all; when the status sentence, critical clauses and disclaimer alone overflow, the
    # limit yields and the full note stays
    for note in (f"(+{len(warning) + len(suggest)} more)", ""):
        shorter = _assemble(opening, critical, [], note)
        if len(shorter) <= limit:
            return shorter
    return text


def _not_named(names: list[str], clauses: tuple[str, ...]) -> list[str]:
    """The suggestions a clause does not already name (its advice is said once)."""
    out: list[str] = []
    for name in names:
        if name not in out and not any(_name_pattern(name).search(c) for c in clauses):
            out.append(name)
    return out
