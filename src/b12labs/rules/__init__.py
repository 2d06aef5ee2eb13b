"""The rule catalogue of docs/clinical-logic.md §5, one area a module.

Catalogue order is docs/clinical-logic.md §5 order: areas in :data:`AREA_ORDER`, rules within an area in
the order their module defines them (never the order modules happen to be imported in).

Each area module also derives that area's facts (``derive_<area>``, registered with
:func:`~b12labs.rules._registry.derives`); :data:`DERIVE` is the order
:func:`b12labs._engine.derive` calls them in.
"""

from __future__ import annotations

from .._engine import Deriver
from . import (  # noqa: F401  (importing registers the rules)
    _fields,
    cobalamin,
    context,
    folate,
    haematology,
    iron,
    metabolites,
    neurology,
    quality,
    serial,
)
from ._registry import CATALOGUE, DERIVERS, SOURCES, TESTS, ActionSpec, Rule

__all__ = [
    "AREA_ORDER",
    "CATALOGUE",
    "DERIVE",
    "DERIVE_ORDER",
    "DERIVE_STATUS",
    "SOURCES",
    "TESTS",
    "ActionSpec",
    "Rule",
]

AREA_ORDER = (
    "cobalamin",
    "metabolites",
    "folate",
    "haematology",
    "iron",
    "context",
    "neurology",
    "scope",
    "quality",
    "serial",
)
CATALOGUE.sort(
    key=lambda r: AREA_ORDER.index(r.area)
)  # stable: keeps definition order within an area

#: The order the areas' facts are derived in. Each reads only measures and the features of
#: areas before it: context reads the cobalamin and MMA bands (``usable``, ``censored_undecided``,
#: ``mma_child``); quality reads context (``recent_treatment``, ``under_age``). The effective
#: limits are recorded in this order too.
DERIVE_ORDER = (
    "cobalamin",
    "metabolites",
    "folate",
    "haematology",
    "iron",
    "context",
    "quality",
    "serial",  # results over time: reads the other areas' limits and features
)
if set(DERIVE_ORDER) != set(DERIVERS):
    raise RuntimeError(f"area derivers {sorted(DERIVERS)} do not match {DERIVE_ORDER}")
DERIVE: tuple[Deriver, ...] = tuple(DERIVERS[a] for a in DERIVE_ORDER)
#: The areas the deficient and probable steps of the status read (deficient_or_probable):
#: enough to judge an earlier result set (results over time) at a third of the cost.
DERIVE_STATUS: tuple[Deriver, ...] = tuple(
    DERIVERS[a] for a in ("cobalamin", "metabolites", "context")
)
