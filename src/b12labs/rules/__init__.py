"""The rule catalogue of RULES.md §5, one area a module, in catalogue order."""

from __future__ import annotations

from . import (  # noqa: F401  (importing registers the rules, in this order)
    cobalamin,
    metabolites,
    folate,
    haematology,
    iron,
    context,
    neurology,
    quality,
)
from ._registry import CATALOGUE, SOURCES, TESTS, ActionSpec, Rule

__all__ = ["CATALOGUE", "SOURCES", "TESTS", "ActionSpec", "Rule"]
