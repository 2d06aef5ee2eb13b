"""Folate rules (docs/clinical-logic.md §5 "Folate")."""

from __future__ import annotations

from typing import Any

from .._engine import Facts
from ..models import Severity
from ._fields import words
from ._registry import avoid, branch, message_field, rule

X = Any
INFO, WARNING, CRITICAL = Severity.info, Severity.warning, Severity.critical


@rule(
    "FOLATE_LOW",
    area="folate",
    severity=WARNING,
    title="Serum folate low",
    message="Serum folate {folate} is below {folate_low}: consistent with folate deficiency.",
    sources=("WHO-FOLATE", "BSH2014"),
    why="Serum folate is the first-line folate test (BSH 2014); WHO defines deficiency below "
    "6.8 nmol/L (3 ng/mL).",
    evidence=(("folate", "folate_low"),),
    example={"panel": {"folate": "2.5 ng/mL"}},
)
def folate_low(f: Facts, xp: Any) -> X:
    return f.folate_low


@rule(
    "FOLATE_BORDERLINE",
    area="folate",
    severity=INFO,
    title="Serum folate borderline",
    message="Serum folate {folate} is borderline ({folate_low} to {folate_borderline_upper}): "
    "possible folate deficiency.",
    sources=("WHO-FOLATE",),
    why="WHO's homocysteine-based cut-off: below 10 nmol/L is possible deficiency.",
    evidence=(("folate", "folate_low"), ("folate", "folate_borderline_upper")),
    example={"panel": {"folate": "8 nmol/L"}},
)
def folate_borderline(f: Facts, xp: Any) -> X:
    return f.folate_borderline


_CAUTION = (
    "do not give folic acid alone before B12 deficiency is excluded or treated; it may "
    "precipitate subacute combined degeneration of the cord."
)


@message_field("folic_trigger")
def folic_trigger(v: Any) -> str:
    """What triggered the caution: the low folate and/or the folic acid entry as written."""
    f = v.facts
    items = []
    if f.folate_low:
        items.append(f"serum folate {v['folate']} is below {v['folate_low']}")
    if f.med("folic_acid"):
        items.append(f"folic acid is recorded ({v['meds_folic_acid']})")
    text = words(items)
    return text[:1].upper() + text[1:]


@rule(
    "FOLIC_ACID_CAUTION",
    area="folate",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(
        f.b12_deficient_or_indeterminate | f.holotc_deficient_or_indeterminate | f.mma_elevated,
        3,
        2,
    ),
    severity_note="critical when B12 is deficient or indeterminate, holoTC ≤ 70 pmol/L or MMA "
    "elevated; warning when none of B12, holoTC and MMA was measured",
    title="Do not give folic acid alone before B12 deficiency is excluded",
    message=_CAUTION,
    branches=(
        branch(
            "b12_possible",
            lambda f, xp: (
                f.b12_deficient_or_indeterminate
                | f.holotc_deficient_or_indeterminate
                | f.mma_elevated
            ),
            "{folic_trigger}, and B12 deficiency is possible given {b12_possible}: " + _CAUTION,
        ),
        branch(
            "b12_not_measured",
            lambda f, xp: True,
            "{folic_trigger}, and B12 status is not known (no B12, active B12 or MMA result): "
            + _CAUTION,
            evidence=(("folate", "folate_low"),),
        ),
    ),
    sources=("FOLIC-WARNING", "BSH2014"),
    why="Folic acid can correct the anaemia of B12 deficiency while the neurological damage "
    "progresses (subacute combined degeneration).",
    evidence=(
        ("folate", "folate_low"),
        ("b12", "b12_indeterminate_upper"),
        ("holotc", "holotc_indeterminate_upper"),
        ("mma", "mma_elevated"),
    ),
    actions=(avoid("folic acid alone before B12 deficiency is excluded or treated"),),
    example={"panel": {"folate": "2.5 ng/mL", "b12": "150 pg/mL"}},
)
def folic_acid_caution(f: Facts, xp: Any) -> X:
    trigger = f.folate_low | f.med("folic_acid")
    possible_b12 = (
        f.b12_deficient_or_indeterminate | f.holotc_deficient_or_indeterminate | f.mma_elevated
    )
    nothing_measured = xp.not_(f.b12.present | f.holotc.present | f.mma.present)
    return trigger & (possible_b12 | nothing_measured)


@rule(
    "RBC_FOLATE_LOW",
    area="folate",
    severity=INFO,
    title="Red-cell folate low",
    message="Red-cell folate {rbc_folate} is below {rbc_folate_low}. Red-cell folate is often "
    "low in B12 deficiency too: read it with the B12 result.",
    sources=("GREEN2011", "WHO-FOLATE"),
    why="Red-cell folate reflects longer-term status but falls in B12 deficiency as well "
    "(Green 2011), so it is not specific.",
    evidence=(("rbc_folate", "rbc_folate_low"), ("b12", None)),
    example={"panel": {"rbc_folate": "250 nmol/L"}},
)
def rbc_folate_low(f: Facts, xp: Any) -> X:
    return f.rbc_folate_low
