"""The rule catalogue of docs/clinical-logic.md §5, one area a module.

Catalogue order is docs/clinical-logic.md §5 order: areas in :data:`AREA_ORDER`, rules within an area in
the order their module defines them (never the order modules happen to be imported in).
"""

from __future__ import annotations

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
from ._registry import CATALOGUE, SOURCES, TESTS, ActionSpec, Rule

__all__ = ["AREA_ORDER", "CATALOGUE", "SOURCES", "TESTS", "ActionSpec", "Rule"]

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
