"""Cobalamin rules: total B12 and holotranscobalamin bands (docs/clinical-logic.md §5 "Cobalamin")."""

from __future__ import annotations

from typing import Any

from .._engine import Facts, StatusCode
from ..models import Severity
from ._registry import branch, order, review, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning


@rule(
    "B12_DEFICIENT",
    area="cobalamin",
    severity=WARNING,
    title="Total B12 in the deficient band",
    message="Total B12 {b12} is below {b12_deficient}: consistent with B12 deficiency. "
    "Consider the cause: an intrinsic-factor antibody test, and coeliac serology if no other "
    "cause is found.",
    sources=("NG239", "BSH2014", "MAYO"),
    why="A total B12 below the profile's deficiency limit is the primary laboratory sign of "
    "deficiency. NICE NG239 then asks for the cause (autoimmune gastritis via IF antibody; "
    "coeliac disease when no other cause is evident).",
    evidence=(("b12", "b12_deficient"),),
    actions=(order("if_antibody"), review("coeliac serology if no other cause is found")),
    example={"panel": {"b12": "150 pg/mL"}},
)
def b12_deficient(f: Facts, xp: Any) -> X:
    return f.b12_deficient


_B12_INDETERMINATE = (
    "Total B12 {b12} is in the indeterminate band ({b12_deficient} to "
    "{b12_indeterminate_upper}): deficiency is possible."
)


@rule(
    "B12_INDETERMINATE",
    area="cobalamin",
    severity=INFO,
    escalate=lambda f, xp: xp.where(f.any_symptom, 2, 1),
    severity_note="warning when any symptom is present",
    title="Total B12 in the indeterminate band",
    message=_B12_INDETERMINATE,
    branches=(
        branch(
            "mma_elevated",
            lambda f, xp: f.mma_elevated,
            _B12_INDETERMINATE
            + " MMA {mma} is above {mma_elevated}, which supports functional deficiency.",
        ),
        branch(
            "mma_not_elevated",
            lambda f, xp: f.mma_not_elevated,
            _B12_INDETERMINATE + " MMA {mma} is not elevated (limit {mma_elevated}): "
            "functional deficiency is less likely.",
        ),
        branch(
            "mma_censored",
            lambda f, xp: f.mma.present,
            _B12_INDETERMINATE + " MMA {mma} is censored and does not decide.",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper"), ("mma", None)),
        ),
        branch(
            "mma_not_measured",
            lambda f, xp: True,
            _B12_INDETERMINATE + " Consider measuring methylmalonic acid (MMA).",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper")),
        ),
    ),
    sources=("NG239", "BSH2014", "S000", "S003"),
    why="Between the deficiency limit and the upper indeterminate limit total B12 neither "
    "confirms nor excludes deficiency; NICE NG239 and BSH recommend MMA as the second-line "
    "test (homocysteine when MMA is unavailable).",
    evidence=(
        ("b12", "b12_deficient"),
        ("b12", "b12_indeterminate_upper"),
        ("mma", "mma_elevated"),
    ),
    actions=(
        order("mma"),
        order("homocysteine", when=lambda f, xp: xp.not_(f.mma.present | f.homocysteine.present)),
    ),
    example={"panel": {"b12": "250 pg/mL"}},
)
def b12_indeterminate(f: Facts, xp: Any) -> X:
    return f.b12_indeterminate


@rule(
    "B12_DEFICIENCY_UNLIKELY",
    area="cobalamin",
    severity=INFO,
    title="Total B12 above the indeterminate band",
    message="Total B12 {b12} is above {b12_indeterminate_upper}: deficiency is unlikely on this "
    "result, though a normal B12 does not exclude it when the clinical picture suggests it.",
    sources=("NG239",),
    why="Above the indeterminate band NICE NG239 considers deficiency unlikely; reported only "
    "when nothing else makes the result untrustworthy (overall status `unlikely`).",
    evidence=(("b12", "b12_indeterminate_upper"),),
    after_status=True,
    example={"panel": {"b12": "500 pg/mL"}},
)
def b12_deficiency_unlikely(f: Facts, xp: Any) -> X:
    return f.b12_unlikely & (f.status == StatusCode.UNLIKELY)


@rule(
    "B12_HIGH_UNEXPLAINED",
    area="cobalamin",
    severity=INFO,
    title="Total B12 above the upper limit without B12 treatment",
    message="Total B12 {b12} is above {b12_high} with no B12 treatment recorded. A high B12 "
    "without supplementation can accompany liver, kidney or myeloproliferative disease; "
    "consider review. A high B12 does not exclude functional deficiency.",
    sources=("ANDRES2013", "MAYO"),
    why="Hypercobalaminaemia without supplementation is associated with solid and "
    "haematological malignancy and liver and kidney disease (Andrès 2013).",
    evidence=(("b12", "b12_high"),),
    actions=(review("clinical review of an unexplained high B12"),),
    example={"panel": {"b12": "1500 pg/mL"}},
)
def b12_high_unexplained(f: Facts, xp: Any) -> X:
    return f.b12_high & xp.not_(f.recent_treatment)


@rule(
    "HOLOTC_DEFICIENT",
    area="cobalamin",
    severity=WARNING,
    title="Active B12 (holoTC) in the deficient band",
    message="Active B12 (holotranscobalamin) {holotc} is below {holotc_deficient}: consistent "
    "with B12 deficiency.",
    sources=("NG239",),
    why="NICE NG239 treats an active B12 below 25 pmol/L as deficiency.",
    evidence=(("holotc", "holotc_deficient"),),
    example={"panel": {"holotc": "20 pmol/L"}},
)
def holotc_deficient(f: Facts, xp: Any) -> X:
    return f.holotc_deficient


@rule(
    "HOLOTC_INDETERMINATE",
    area="cobalamin",
    severity=INFO,
    title="Active B12 (holoTC) in the indeterminate band",
    message="Active B12 (holotranscobalamin) {holotc} is in the indeterminate band "
    "({holotc_deficient} to {holotc_indeterminate_upper}): deficiency is possible; consider MMA.",
    sources=("NG239", "BSH2014"),
    why="NICE NG239's indeterminate active-B12 band (25-70 pmol/L) calls for MMA in people with "
    "symptoms.",
    evidence=(("holotc", "holotc_deficient"), ("holotc", "holotc_indeterminate_upper")),
    actions=(order("mma"),),
    example={"panel": {"holotc": "40 pmol/L"}},
)
def holotc_indeterminate(f: Facts, xp: Any) -> X:
    return f.holotc_indeterminate


@rule(
    "HOLOTC_DEFICIENCY_UNLIKELY",
    area="cobalamin",
    severity=INFO,
    title="Active B12 (holoTC) above the indeterminate band",
    message="Active B12 (holotranscobalamin) {holotc} is above {holotc_indeterminate_upper}: "
    "deficiency is unlikely on this result.",
    sources=("NG239",),
    why="Above 70 pmol/L NICE NG239 considers deficiency unlikely; reported only when the "
    "overall status is `unlikely`.",
    evidence=(("holotc", "holotc_indeterminate_upper"),),
    after_status=True,
    example={"panel": {"holotc": "90 pmol/L"}},
)
def holotc_deficiency_unlikely(f: Facts, xp: Any) -> X:
    return f.holotc_unlikely & (f.status == StatusCode.UNLIKELY)
