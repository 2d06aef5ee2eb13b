"""Message fields shared by several areas' rules: each says only what holds for the panel.

A field is a function of the message view ``v`` (``v.facts``: the panel's facts; ``v.context``:
its context; ``v[name]``: a value as reported or a limit as compared) returning the text that
replaces ``{name}`` in a rule's message. A field never names a value that was not measured nor
a condition that was not recorded: that is what makes a message the finding, not the rule
(docs/clinical-logic.md §1).
"""

from __future__ import annotations

from typing import Any

from ..vocabulary import NEUROLOGICAL_SYMPTOMS
from ._registry import message_field

_NEURO = frozenset(NEUROLOGICAL_SYMPTOMS)


def words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _term(name: str) -> str:
    return name.replace("_", " ")


@message_field("neuro_symptoms")
def neuro_symptoms(v: Any) -> str:
    """The recorded neurological symptoms only (docs/clinical-logic.md §3)."""
    return words([_term(s) for s in v.context.symptoms if s in _NEURO])


def cobalamin_findings(v: Any) -> list[str]:
    """What of B12, holoTC, MMA and homocysteine points to possible deficiency, as held."""
    f = v.facts
    out = []
    for key, name in (("b12", "total B12"), ("holotc", "active B12")):
        if getattr(f, f"{key}_deficient"):
            band = "deficient"
        elif getattr(f, f"{key}_indeterminate"):
            band = "indeterminate"
        elif getattr(f, f"{key}_deficient_or_indeterminate"):  # censored, wholly at or below
            band = "deficient or indeterminate"
        else:
            continue
        out.append(f"{name} {v[key]} in the {band} band")
    if f.mma_elevated:
        out.append(f"MMA {v['mma']} above {v['mma_elevated']}")
    if f.hcy_elevated:
        out.append(f"homocysteine {v['homocysteine']} above {v['homocysteine_elevated']}")
    return out


@message_field("b12_possible")
def b12_possible(v: Any) -> str:
    """The results that make B12 deficiency possible (bands, raised metabolites)."""
    return words(cobalamin_findings(v))


@message_field("b12_possible_or_neuro")
def b12_possible_or_neuro(v: Any) -> str:
    """As ``b12_possible``, with the neurological symptoms when those are what held."""
    items = cobalamin_findings(v)
    if v.facts.neuro:
        items.append(f"neurological symptoms ({neuro_symptoms(v)})")
    return words(items)


@message_field("cobalamin_unlikely")
def cobalamin_unlikely(v: Any) -> str:
    """The B12 and/or active B12 result that lies above the indeterminate band."""
    f = v.facts
    items = []
    if f.b12_unlikely:
        items.append(f"total B12 {v['b12']} above {v['b12_indeterminate_upper']}")
    if f.holotc_unlikely:
        items.append(f"active B12 {v['holotc']} above {v['holotc_indeterminate_upper']}")
    return words(items)
