"""Iron rules (docs/clinical-logic.md §5 "Iron")."""

from __future__ import annotations

from typing import Any

from .._engine import INFLAMMATORY_CONDITIONS, Facts
from ..models import Severity
from ._fields import words
from ._registry import branch, message_field, order, rule

X = Any
WARNING = Severity.warning


@rule(
    "IRON_DEFICIENCY",
    area="iron",
    severity=WARNING,
    title="Iron deficiency",
    message="Consistent with iron deficiency.",
    branches=(
        branch(
            "ferritin_low",
            lambda f, xp: f.iron_deficiency_plain,
            "Ferritin {ferritin} is below {ferritin_low}: consistent with iron deficiency.",
            evidence=(("ferritin", "ferritin_low"),),
        ),
        branch(
            "inflammation",
            lambda f, xp: f.iron_deficiency_inflammation,
            "With inflammation ({inflammation}), ferritin {ferritin} is below "
            "{ferritin_low_inflammation} and TSAT {tsat} below {tsat_low_inflammation}: "
            "consistent with iron deficiency (inflammation raises ferritin).",
            evidence=(
                ("ferritin", "ferritin_low_inflammation"),
                ("tsat", "tsat_low_inflammation"),
                ("crp", "crp_inflammation"),
            ),
        ),
    ),
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
def iron_deficiency(f: Facts, xp: Any) -> X:
    return f.iron_deficiency


_MASK = (
    "Iron deficiency with {mcv_not_macrocytic}, while B12 deficiency is possible given "
    "{b12_possible_or_neuro}: iron deficiency can remove the macrocytosis of B12 deficiency, "
    "so a normal MCV does not exclude it."
)


@message_field("mcv_not_macrocytic")
def mcv_not_macrocytic(v: Any) -> str:
    """``an MCV of 88 fL (not macrocytic)`` or ``MCV not measured``."""
    return (
        "MCV not measured" if v.m.get("mcv") is None else f"an MCV of {v['mcv']} (not macrocytic)"
    )


@message_field("inflammation")
def inflammation(v: Any) -> str:
    """The inflammatory conditions recorded and a CRP above its limit, as held."""
    f = v.facts
    items = [c.replace("_", " ") for c in v.context.conditions if c in INFLAMMATORY_CONDITIONS]
    if f.crp_high:
        items.append(f"CRP {v['crp']} above {v['crp_inflammation']}")
    return words(items)


@rule(
    "IRON_DEFICIENCY_MAY_MASK_B12",
    area="iron",
    severity=WARNING,
    title="Iron deficiency may mask B12 deficiency",
    message=_MASK,
    branches=(
        branch(
            "rdw_high",
            lambda f, xp: f.rdw_high,
            _MASK + " A high RDW ({rdw}, above {rdw_high}) supports a mixed red-cell population.",
        ),
        branch("rdw_not_high", lambda f, xp: True, _MASK),
    ),
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
    evidence_when={"rdw": "rdw_high"},
    example={
        "panel": {"b12": "300 pmol/L", "ferritin": "9 ug/L", "mcv": "88 fL"},
        "context": {"symptoms": ["paraesthesia"]},
    },
)
def iron_deficiency_may_mask_b12(f: Facts, xp: Any) -> X:
    possible_b12 = f.cobalamin_low | f.mma_elevated | f.hcy_elevated | f.neuro
    return f.iron_deficiency & xp.not_(f.macrocytosis) & possible_b12
