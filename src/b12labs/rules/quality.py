"""Scope and input-quality rules (docs/clinical-logic.md §5 "Scope" and "Input quality")."""

from __future__ import annotations

from typing import Any

from .._engine import Facts
from ..models import Severity
from ._registry import rule

X = Any
INFO, WARNING = Severity.info, Severity.warning


@rule(
    "AGE_OUT_OF_SCOPE",
    area="scope",
    severity=WARNING,
    title="Under 16: adult thresholds do not apply",
    message="Age {age} is below {adult_age}: the threshold profiles are for adults and "
    "paediatric ranges differ. Interpret with a paediatric reference.",
    sources=("NG239",),
    uses=("adult_age",),
    why="NICE NG239 covers people over 16; children's B12, MMA and Hb ranges differ.",
    example={"panel": {"b12": "400 pg/mL"}, "context": {"age": 12}},
)
def age_out_of_scope(f: Facts, xp: Any) -> X:
    return f.under_age


@rule(
    "VALUE_CENSORED",
    area="quality",
    severity=INFO,
    title="A censored value was used",
    message="A censored result ({censored}) was used; a band is decided only when the whole "
    "censored range lies inside it.",
    sources=("NG239",),
    why="A result such as '<100 pg/mL' is an interval: it decides a band only when the band "
    "contains all of it.",
    example={"panel": {"b12": "<200 pg/mL"}},
    evidence_of="censored",
)
def value_censored(f: Facts, xp: Any) -> X:
    return f.any_censored  # any numeric result censored


@rule(
    "VALUE_IMPLAUSIBLE",
    area="quality",
    severity=WARNING,
    title="A value outside the plausible range was not used",
    message="A result outside its plausible range was not used ({implausible}): check the value "
    "and its unit.",
    sources=("NG239",),
    why="A value far outside any physiological range usually means a unit or transcription "
    "error; it is excluded rather than interpreted.",
    example={"panel": {"b12": "900000 pmol/L"}},
    evidence_of="implausible",
)
def value_implausible(f: Facts, xp: Any) -> X:
    out: X = False
    for flag in f.raw.implausible.values():
        out = out | flag
    return out
