"""Iron rules (docs/clinical-logic.md §5 "Iron").

The iron facts (TSAT derived from iron and TIBC, CRP and inflammation, ferritin and iron
deficiency) are derived here, by :func:`derive_iron`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._engine import INFLAMMATORY_CONDITIONS, SCALAR, Facts, Measure, RawInputs, lab_limit
from ..models import Severity
from ._fields import words
from ._registry import branch, derives, message_field, order, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning


_NAN = math.nan


@derives("iron")
def derive_iron(f: Facts, raw: RawInputs, xp: Any) -> None:
    """TSAT (derived from iron and TIBC when it was not reported, docs/clinical-logic.md §2),
    inflammation, and iron deficiency plain, in inflammation, possible or needing a TSAT."""
    p = f.profile.canonical
    derivable = (
        xp.isnan(raw.values.get("tsat", _NAN))
        & f.iron.present
        & f.tibc.present
        & xp.not_(f.iron.censored | f.tibc.censored)
    )
    f.tsat_derived = derivable
    if xp is SCALAR:
        if derivable:
            f.tsat = Measure(round(f.iron.value / f.tibc.value * 100.0, 10), 0, xp)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            derived = np.where(
                derivable, np.round(f.iron.value / f.tibc.value * 100.0, 10), f.tsat.value
            )
        f.tsat = Measure(derived, np.where(derivable, 0, raw.cmp.get("tsat", 0)), xp)

    f.crp_high = f.crp.gt(
        lab_limit(f, xp, "crp_inflammation", p["crp_inflammation"], raw.ref_high.get("crp", _NAN))
    )
    f.inflammation = f.any_cond(INFLAMMATORY_CONDITIONS) | f.crp_high
    ferritin_limit = lab_limit(
        f, xp, "ferritin_low", p["ferritin_low"], raw.ref_low.get("ferritin", _NAN)
    )
    f.iron_deficiency_plain = f.ferritin.lt(ferritin_limit)
    f.iron_deficiency_inflammation = (
        f.inflammation
        & f.ferritin.lt(p["ferritin_low_inflammation"])
        & f.tsat.lt(p["tsat_low_inflammation"])
    )
    f.iron_deficiency = f.iron_deficiency_plain | f.iron_deficiency_inflammation
    # in inflammation, a ferritin of 100-300 with TSAT < 20 % may still be iron deficiency; with
    # ferritin 30-300 and no TSAT (nor iron and TIBC to derive it), TSAT is what would tell
    f.tsat_low_inflammation = f.tsat.lt(p["tsat_low_inflammation"])
    f.iron_deficiency_possible = (
        f.inflammation
        & f.ferritin.ge(p["ferritin_low_inflammation"])
        & f.ferritin.le(p["ferritin_possible_upper"])
        & f.tsat_low_inflammation
    )
    f.iron_tsat_wanted = (
        f.inflammation
        & f.ferritin.ge(ferritin_limit)
        & f.ferritin.le(p["ferritin_possible_upper"])
        & xp.not_(f.tsat.present)
        & xp.not_(f.iron_deficiency)
    )


@rule(
    "IRON_DEFICIENCY",
    area="iron",
    severity=WARNING,
    title="Iron deficiency",
    message="Consistent with iron deficiency.",
    comment="iron studies are consistent with iron deficiency",
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


@rule(
    "IRON_DEFICIENCY_POSSIBLE",
    area="iron",
    severity=INFO,
    title="Iron deficiency possible despite the ferritin (inflammation)",
    message="With inflammation, iron deficiency is possible despite the ferritin.",
    branches=(
        branch(
            "tsat_low",
            lambda f, xp: f.iron_deficiency_possible,
            "With inflammation ({inflammation}), ferritin {ferritin} is within "
            "{ferritin_low_inflammation} to {ferritin_possible_upper} and TSAT {tsat} is below "
            "{tsat_low_inflammation}: functional or absolute iron deficiency is possible despite "
            "the ferritin, which inflammation raises.",
            evidence=(
                ("ferritin", "ferritin_low_inflammation"),
                ("ferritin", "ferritin_possible_upper"),
                ("tsat", "tsat_low_inflammation"),
                ("crp", "crp_inflammation"),
            ),
        ),
        branch(
            "tsat_missing",
            lambda f, xp: True,
            "With inflammation ({inflammation}), ferritin {ferritin} does not exclude iron "
            "deficiency (inflammation raises ferritin): a transferrin saturation, from iron and "
            "TIBC, would show whether iron supply is low.",
            evidence=(("ferritin", "ferritin_possible_upper"), ("crp", "crp_inflammation")),
        ),
    ),
    sources=("CAPPELLINI2017", "ROHR2023"),
    why="In chronic inflammation ferritin rises as an acute-phase protein; a TSAT below 20 % "
    "with ferritin up to 100-300 ug/L is used for functional or absolute iron deficiency "
    "(Cappellini 2017; Rohr 2023).",
    evidence=(
        ("ferritin", "ferritin_low_inflammation"),
        ("ferritin", "ferritin_possible_upper"),
        ("tsat", "tsat_low_inflammation"),
    ),
    actions=(
        order("iron", when=lambda f, xp: f.iron_tsat_wanted & xp.not_(f.iron.present)),
        order("tibc", when=lambda f, xp: f.iron_tsat_wanted & xp.not_(f.tibc.present)),
    ),
    since="2",
    example={
        "panel": {"ferritin": "180 ug/L", "tsat": "14 %"},
        "context": {"conditions": ["rheumatoid_arthritis"]},
    },
)
def iron_deficiency_possible(f: Facts, xp: Any) -> X:
    return f.iron_deficiency_possible | f.iron_tsat_wanted


_MASK = (
    "Iron deficiency{mcv_not_macrocytic}, while B12 deficiency is possible given "
    "{b12_possible_or_neuro}: iron deficiency can remove the macrocytosis of B12 deficiency, "
    "so the MCV cannot be relied on to exclude it."
)


@message_field("mcv_not_macrocytic")
def mcv_not_macrocytic(v: Any) -> str:
    """`` with an MCV of 88 fL (not macrocytic)``; nothing when MCV was not measured."""
    return "" if v.m.get("mcv") is None else f" with an MCV of {v['mcv']} (not macrocytic)"


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
    # the iron studies as measured (IRON_DEFICIENCY shows the limit its branch compared with)
    evidence=(
        ("ferritin", None),
        ("tsat", None),
        ("mcv", "mcv_macrocytosis"),
        ("rdw", "rdw_high"),
        ("b12", "b12_indeterminate_upper"),
        ("mma", "mma_elevated"),
        ("homocysteine", "homocysteine_elevated"),
    ),
    actions=(
        order("mma", when=lambda f, xp: xp.not_(f.mma.present) & xp.not_(f.cobalamin_deficient)),
        order(
            "homocysteine",
            when=lambda f, xp: xp.not_(f.homocysteine.present) & xp.not_(f.cobalamin_deficient),
        ),
    ),
    comment="iron deficiency may mask the macrocytosis of B12 deficiency",
    evidence_when={"rdw": "rdw_high"},
    example={
        "panel": {"b12": "300 pmol/L", "ferritin": "9 ug/L", "mcv": "88 fL"},
        "context": {"symptoms": ["paraesthesia"]},
    },
)
def iron_deficiency_may_mask_b12(f: Facts, xp: Any) -> X:
    possible_b12 = f.cobalamin_low | f.mma_elevated | f.hcy_elevated | f.neuro
    return f.iron_deficiency & xp.not_(f.macrocytosis) & possible_b12
