"""Evaluate the catalogue on :class:`~b12labs._engine.RawInputs`, in either shape."""

from __future__ import annotations

from typing import Any

from ._engine import Facts, RawInputs, derive, status
from .profiles import Profile
from .rules import CATALOGUE, DERIVE, Rule

__all__ = ["PHASE_AFTER_STATUS", "PHASE_BEFORE_STATUS", "evaluate", "severity_rank"]

# (code, predicate) of the rules evaluated before the status, and of those that read it
PHASE_BEFORE_STATUS: tuple[tuple[str, Any], ...] = tuple(
    (r.code, r.when) for r in CATALOGUE if not r.after_status
)
PHASE_AFTER_STATUS: tuple[tuple[str, Any], ...] = tuple(
    (r.code, r.when) for r in CATALOGUE if r.after_status
)


def evaluate(raw: RawInputs, profile: Profile, xp: Any) -> Facts:
    """Derive facts (the measures, then each area's, in :data:`~b12labs.rules.DERIVE` order),
    fire every rule, compute the status; ``f.fired`` maps code -> bool(s)."""
    f = derive(raw, profile, xp, DERIVE)
    fired = f.fired
    for code, when in PHASE_BEFORE_STATUS:
        fired[code] = when(f, xp)
    f.status = status(f)
    for code, when in PHASE_AFTER_STATUS:
        fired[code] = when(f, xp)
    return f


def severity_rank(r: Rule, f: Facts, xp: Any) -> Any:
    """The rule's severity rank (1 info, 2 warning, 3 critical) in the facts' shape."""
    if r.escalate is not None:
        return r.escalate(f, xp)
    return r.severity.rank
