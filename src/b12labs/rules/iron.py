"""Iron rules (docs/clinical-logic.md §5 "Iron")."""

from __future__ import annotations

from typing import Any

from ..models import Severity
from ._registry import order, rule

X = Any
WARNING = Severity.warning


@rule(
    "IRON_DEFICIENCY",
    area="iron",
    severity=WARNING,
    title="Iron deficiency",
    message="Ferritin {ferritin} is below {ferritin_low}, or below {ferritin_low_inflammation} "
    "with TSAT {tsat} below {tsat_low_inflammation} in an inflammatory context: consistent with "
    "iron deficiency.",
    sources=("CAPPELLINI2017", "BSH2014"),
    why="Ferritin < 30 µg/L confirms iron deficiency; in inflammation ferritin is raised, so "
    "ferritin < 100 µg/L with TSAT < 20 % is used (Cappellini 2017).",
    evidence=(
        ("ferritin", "ferritin_low"),
        ("ferritin", "ferritin_low_inflammation"),
        ("tsat", "tsat_low_inflammation"),
        ("crp", "crp_inflammation"),
    ),
    example={"panel": {"ferritin": "9 ug/L"}},
)
def iron_deficiency(f: Any, xp: Any) -> X:
    return f.iron_deficiency


@rule(
    "IRON_DEFICIENCY_MAY_MASK_B12",
    area="iron",
    severity=WARNING,
    title="Iron deficiency may mask B12 deficiency",
    message="Iron deficiency with an MCV that is not macrocytic ({mcv}) while B12 deficiency is "
    "possible: iron deficiency can remove the macrocytosis of B12 deficiency, so a normal MCV "
    "does not exclude it. A high RDW ({rdw}) supports a mixed red-cell population.",
    sources=("S003", "LINDENBAUM1988"),
    why="Concurrent iron deficiency can abolish the macrocytosis of B12 deficiency "
    "(Lindenbaum 1988; S003); a wide RDW is the usual clue.",
    evidence=(
        ("ferritin", "ferritin_low"),
        ("mcv", "mcv_macrocytosis"),
        ("rdw", "rdw_high"),
        ("b12", "b12_indeterminate_upper"),
        ("mma", "mma_elevated"),
        ("homocysteine", "homocysteine_elevated"),
    ),
    actions=(order("mma"), order("homocysteine")),
    example={
        "panel": {"b12": "300 pmol/L", "ferritin": "9 ug/L", "mcv": "88 fL"},
        "context": {"symptoms": ["paraesthesia"]},
    },
)
def iron_deficiency_may_mask_b12(f: Any, xp: Any) -> X:
    possible_b12 = f.cobalamin_low | f.mma_elevated | f.hcy_elevated | f.neuro
    return f.iron_deficiency & xp.not_(f.macrocytosis) & possible_b12
