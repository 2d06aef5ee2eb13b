"""Cobalamin rules: total B12 and holotranscobalamin bands (docs/clinical-logic.md §5 "Cobalamin").

The cobalamin facts (the B12 and holoTC bands, a high B12, discordance) are derived here, by
:func:`derive_cobalamin`.
"""

from __future__ import annotations

import math
from typing import Any

from .._engine import MALABSORPTION_CONDITIONS, Facts, RawInputs, StatusCode, lab_limit
from ..models import Severity
from ..vocabulary import CONDITION_GROUPS
from ._fields import words
from ._registry import all_of, branch, derives, message_field, missing, order, review, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning

_HIGH_B12_EXPLAINED = CONDITION_GROUPS["high_b12_explained"]


_NAN = math.nan


@derives("cobalamin")
def derive_cobalamin(f: Facts, raw: RawInputs, xp: Any) -> None:
    """The B12 and holoTC bands (always the profile's, compared in the unit reported), the high
    B12, and how the two markers agree (docs/clinical-logic.md §4)."""
    p = f.profile.canonical
    band = raw.band
    b12_low = band.get("b12_deficient", p["b12_deficient"])
    b12_upper = band.get("b12_indeterminate_upper", p["b12_indeterminate_upper"])
    f.limit["b12_deficient"], f.limit["b12_indeterminate_upper"] = b12_low, b12_upper
    b12 = f.b12
    f.b12_deficient = b12.lt(b12_low)
    f.b12_unlikely = b12.gt(b12_upper)
    f.b12_indeterminate = b12.ge(b12_low) & b12.le(b12_upper)
    f.b12_deficient_or_indeterminate = b12.le(b12_upper)
    f.b12_undecided = b12.present & xp.not_(f.b12_deficient | f.b12_unlikely | f.b12_indeterminate)
    f.b12_high = b12.gt(
        lab_limit(
            f, xp, "b12_high", band.get("b12_high", p["b12_high"]), raw.ref_high.get("b12", _NAN)
        )
    )
    f.b12_in_indeterminate_or_low = f.b12_deficient | f.b12_indeterminate

    h_low = band.get("holotc_deficient", p["holotc_deficient"])
    h_upper = band.get("holotc_indeterminate_upper", p["holotc_indeterminate_upper"])
    f.limit["holotc_deficient"], f.limit["holotc_indeterminate_upper"] = h_low, h_upper
    h = f.holotc
    f.holotc_deficient = h.lt(h_low)
    f.holotc_unlikely = h.gt(h_upper)
    f.holotc_indeterminate = h.ge(h_low) & h.le(h_upper)
    f.holotc_deficient_or_indeterminate = h.le(h_upper)
    f.holotc_undecided = h.present & xp.not_(
        f.holotc_deficient | f.holotc_unlikely | f.holotc_indeterminate
    )

    # "deficient or indeterminate": also true for a censored value lying wholly in those bands
    f.cobalamin_low = f.b12_deficient_or_indeterminate | f.holotc_deficient_or_indeterminate
    f.cobalamin_unlikely = f.b12_unlikely | f.holotc_unlikely
    f.cobalamin_deficient = f.b12_deficient | f.holotc_deficient
    # one marker deficient, the other in the unlikely band: they disagree (B12_HOLOTC_DISCORDANT)
    f.discordant = (f.b12_deficient & f.holotc_unlikely) | (f.holotc_deficient & f.b12_unlikely)


def _no_malabsorption(f: Facts, xp: Any) -> X:
    return xp.not_(f.malabsorption)


def known_cause(f: Facts, xp: Any) -> X:
    """A recorded cause of a low B12: positive IF antibody, malabsorption (coeliac disease is
    one), diet or a B12-lowering medicine (then coeliac serology is not suggested)."""
    return f.if_positive | f.malabsorption | f.diet | f.med("b12_lowering")


@rule(
    "B12_DEFICIENT",
    area="cobalamin",
    severity=WARNING,
    title="Total B12 in the deficient band",
    message="Total B12 {b12} is below {b12_deficient}: consistent with B12 deficiency.",
    branches=(
        branch(
            "cause_unknown",
            lambda f, xp: xp.not_(known_cause(f, xp)),
            "Total B12 {b12} is below {b12_deficient}: consistent with B12 deficiency. Consider "
            "the cause{if_antibody_advice}.",
            comment="consider the cause of the low B12",
        ),
        branch(
            "cause_recorded",
            lambda f, xp: True,
            "Total B12 {b12} is below {b12_deficient}: consistent with B12 deficiency; a "
            "possible cause is recorded ({known_cause}).",
            comment="a possible cause of the low B12 is recorded",
        ),
    ),
    comment="total B12 in the deficient band",
    sources=("NG239", "BSH2014", "MAYO"),
    why="A total B12 below the profile's deficiency limit is the primary laboratory sign of "
    "deficiency. NICE NG239 then asks for the cause (autoimmune gastritis via IF antibody; "
    "coeliac disease when no other cause is evident).",
    evidence=(("b12", "b12_deficient"),),
    actions=(
        order("if_antibody", when=all_of(missing("if_antibody"), _no_malabsorption)),
        order("coeliac", when=lambda f, xp: xp.not_(known_cause(f, xp))),
    ),
    example={"panel": {"b12": "150 pg/mL"}},
)
def b12_deficient(f: Facts, xp: Any) -> X:
    return f.b12_deficient & xp.not_(f.discordant)


@message_field("if_antibody_advice")
def if_antibody_advice(v: Any) -> str:
    """What to look for when no cause is recorded: IF antibody (unless measured) and coeliac."""
    f = v.facts
    if f.if_equivocal:
        # measured (not ordered again), but an equivocal result excludes nothing (§2)
        return (
            ": coeliac serology, as no other cause is recorded (the intrinsic-factor antibody "
            "was equivocal: neither positive nor negative)"
        )
    if f.if_measured:
        return ": coeliac serology, as no other cause is recorded"
    return ": an intrinsic-factor antibody test, and coeliac serology as no other cause is recorded"


@message_field("known_cause")
def known_cause_text(v: Any) -> str:
    """The recorded causes of a low B12, as recorded."""
    f = v.facts
    items = []
    if f.if_positive:
        items.append("a positive intrinsic-factor antibody")
    items.extend(c.replace("_", " ") for c in v.context.conditions if c in MALABSORPTION_CONDITIONS)
    items.extend(c.replace("_", " ") for c in v.context.conditions if c.endswith("_diet"))
    if f.med("b12_lowering"):
        items.append(v["meds_b12_lowering"])
    return words(items)


_B12_INDETERMINATE = (
    "Total B12 {b12} is in the indeterminate band ({b12_deficient} to "
    "{b12_indeterminate_upper}): deficiency is possible."
)


def _pregnancy_holotc(f: Facts, xp: Any) -> X:
    """In pregnancy with neither holoTC nor MMA measured NICE prefers active B12."""
    return f.raw.pregnant & xp.not_(f.holotc.present) & xp.not_(f.mma.present)


def _established_not(f: Facts, xp: Any) -> X:
    return xp.not_(f.established)


@rule(
    "B12_INDETERMINATE",
    area="cobalamin",
    severity=INFO,
    escalate=lambda f, xp: xp.where(f.ng239_symptom, 2, 1),
    severity_note="warning with an NG239 symptom (a neurological term, fatigue, glossitis or mood "
    "change)",
    title="Total B12 in the indeterminate band",
    message=_B12_INDETERMINATE,
    branches=(
        branch(
            "mma_elevated",
            lambda f, xp: f.mma_elevated,
            _B12_INDETERMINATE
            + " MMA {mma} is above {mma_elevated}, which supports functional deficiency.",
            comment="total B12 indeterminate with a raised MMA",
        ),
        branch(
            "mma_not_elevated_symptoms",
            lambda f, xp: f.mma_not_elevated & f.neuro,
            _B12_INDETERMINATE + " MMA {mma} is not above {mma_elevated}: functional "
            "deficiency is unlikely, so other causes of the neurological symptoms "
            "({neuro_symptoms}) should be sought.",
            evidence=(
                ("b12", "b12_deficient"),
                ("b12", "b12_indeterminate_upper"),
                ("mma", "mma_elevated"),
            ),
            comment="normal MMA makes B12 deficiency unlikely: seek other causes of the symptoms",
        ),
        branch(
            "mma_not_elevated",
            lambda f, xp: f.mma_not_elevated,
            _B12_INDETERMINATE + " MMA {mma} is not above {mma_elevated}: functional "
            "deficiency is unlikely.",
            comment="total B12 indeterminate with a normal MMA",
        ),
        branch(
            "mma_censored",
            lambda f, xp: f.mma.present,
            _B12_INDETERMINATE + " MMA {mma} is censored and does not decide.",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper"), ("mma", None)),
            comment="total B12 indeterminate; MMA does not decide",
        ),
        branch(
            "pregnancy",
            _pregnancy_holotc,
            _B12_INDETERMINATE + " In pregnancy NICE prefers active B12 (holoTC) as the next test.",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper")),
            comment="total B12 indeterminate",
        ),
        branch(
            "mma_not_measured",
            lambda f, xp: True,
            _B12_INDETERMINATE + " Methylmalonic acid (MMA) would show whether there is "
            "functional deficiency.",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper")),
            comment="total B12 indeterminate",
        ),
    ),
    sources=("NG239", "BSH2014", "S000", "S003"),
    why="Between the deficiency limit and the upper indeterminate limit total B12 neither "
    "confirms nor excludes deficiency; NICE NG239 and BSH recommend MMA as the second-line "
    "test (homocysteine when MMA is unavailable), and active B12 in pregnancy.",
    evidence=(
        ("b12", "b12_deficient"),
        ("b12", "b12_indeterminate_upper"),
        ("mma", "mma_elevated"),
    ),
    actions=(
        order(
            "mma",
            when=lambda f, xp: (
                xp.not_(f.mma.present) & xp.not_(_pregnancy_holotc(f, xp)) & xp.not_(f.established)
            ),
        ),
        order(
            "homocysteine",
            when=lambda f, xp: (
                xp.not_(f.mma.present | f.homocysteine.present)
                & xp.not_(_pregnancy_holotc(f, xp))
                & xp.not_(f.established)
            ),
        ),
        order("holotc", when=_pregnancy_holotc),
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
    return f.b12_unlikely & (f.status == StatusCode.UNLIKELY) & xp.not_(f.discordant)


@message_field("treatment_known")
def treatment_known(v: Any) -> str:
    """What is known of B12 treatment when it does not explain a high B12."""
    ctx = v.context
    if ctx.days_since_b12_injection is not None:
        return f"the last B12 injection recorded was {ctx.days_since_b12_injection:g} days ago"
    if ctx.b12_treatment == "none":
        return "B12 treatment is recorded as none"
    return "no B12 treatment recorded"


@message_field("high_b12_condition")
def high_b12_condition(v: Any) -> str:
    return words([c.replace("_", " ") for c in v.context.conditions if c in _HIGH_B12_EXPLAINED])


@rule(
    "B12_HIGH_UNEXPLAINED",
    area="cobalamin",
    severity=INFO,
    title="Total B12 above the upper limit without B12 treatment",
    message="Total B12 {b12} is above {b12_high}; {treatment_known}.",
    branches=(
        branch(
            "condition_recorded",
            lambda f, xp: f.any_cond(_HIGH_B12_EXPLAINED),
            "Total B12 {b12} is above {b12_high}; {treatment_known}. The high B12 is "
            "consistent with the recorded {high_b12_condition}. A high B12 does not exclude "
            "functional deficiency.",
        ),
        branch(
            "unexplained",
            lambda f, xp: True,
            "Total B12 {b12} is above {b12_high}; {treatment_known}. A high B12 without "
            "supplementation can accompany liver, kidney or myeloproliferative disease; "
            "consider review. A high B12 does not exclude functional deficiency.",
        ),
    ),
    sources=("ANDRES2013", "MAYO"),
    why="Hypercobalaminaemia without supplementation is associated with solid and "
    "haematological malignancy and liver and kidney disease (Andrès 2013).",
    evidence=(("b12", "b12_high"),),
    actions=(
        review(
            "clinical review of an unexplained high B12",
            when=lambda f, xp: xp.not_(f.any_cond(_HIGH_B12_EXPLAINED)),
        ),
    ),
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
    comment="active B12 in the deficient band",
    sources=("NG239",),
    why="NICE NG239 treats an active B12 below 25 pmol/L as deficiency.",
    evidence=(("holotc", "holotc_deficient"),),
    actions=(order("if_antibody", when=all_of(missing("if_antibody"), _no_malabsorption)),),
    example={"panel": {"holotc": "20 pmol/L"}},
)
def holotc_deficient(f: Facts, xp: Any) -> X:
    return f.holotc_deficient & xp.not_(f.discordant)


@rule(
    "HOLOTC_INDETERMINATE",
    area="cobalamin",
    severity=INFO,
    escalate=lambda f, xp: xp.where(f.any_symptom, 2, 1),
    severity_note="warning when any symptom is recorded",
    title="Active B12 (holoTC) in the indeterminate band",
    message="Active B12 (holotranscobalamin) {holotc} is in the indeterminate band "
    "({holotc_deficient} to {holotc_indeterminate_upper}): deficiency is possible.",
    branches=(
        branch(
            "mma_elevated",
            lambda f, xp: f.mma_elevated,
            "Active B12 (holotranscobalamin) {holotc} is in the indeterminate band "
            "({holotc_deficient} to {holotc_indeterminate_upper}); MMA {mma} is above "
            "{mma_elevated}, which supports functional deficiency.",
        ),
        branch(
            "mma_not_elevated",
            lambda f, xp: f.mma_not_elevated,
            "Active B12 (holotranscobalamin) {holotc} is in the indeterminate band "
            "({holotc_deficient} to {holotc_indeterminate_upper}); MMA {mma} is not above "
            "{mma_elevated}: functional deficiency is unlikely.",
        ),
        branch(
            "other",
            lambda f, xp: True,
            "Active B12 (holotranscobalamin) {holotc} is in the indeterminate band "
            "({holotc_deficient} to {holotc_indeterminate_upper}): deficiency is possible.",
            evidence=(("holotc", "holotc_deficient"), ("holotc", "holotc_indeterminate_upper")),
        ),
    ),
    comment="active B12 indeterminate",
    sources=("NG239", "BSH2014"),
    why="NICE NG239's indeterminate active-B12 band (25-70 pmol/L) calls for MMA in people with "
    "symptoms.",
    evidence=(
        ("holotc", "holotc_deficient"),
        ("holotc", "holotc_indeterminate_upper"),
        ("mma", "mma_elevated"),
    ),
    actions=(order("mma", when=all_of(missing("mma"), _established_not)),),
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
    return f.holotc_unlikely & (f.status == StatusCode.UNLIKELY) & xp.not_(f.discordant)


@message_field("discordant_pair")
def discordant_pair(v: Any) -> str:
    f = v.facts
    if f.b12_deficient:
        return (
            "total B12 {b12} is below {b12_deficient} while active B12 {holotc} is above "
            "{holotc_indeterminate_upper}"
        ).format_map(v)
    return (
        "active B12 {holotc} is below {holotc_deficient} while total B12 {b12} is above "
        "{b12_indeterminate_upper}"
    ).format_map(v)


@message_field("discordant_mma")
def discordant_mma(v: Any) -> str:
    f = v.facts
    if f.mma_elevated:
        return (
            "MMA {mma} is above {mma_elevated}, which supports functional deficiency.".format_map(v)
        )
    if f.mma_not_elevated:
        return (
            "MMA {mma} is not above {mma_elevated}: functional deficiency is unlikely.".format_map(
                v
            )
        )
    if f.mma.present:
        return "MMA {mma} is censored and does not decide.".format_map(v)
    return "MMA would decide."


@rule(
    "B12_HOLOTC_DISCORDANT",
    area="cobalamin",
    severity=WARNING,
    title="Total B12 and active B12 disagree",
    message="The B12 markers disagree: {discordant_pair}. Active B12 is the more specific marker "
    "(and is preferred in pregnancy). {discordant_mma}",
    comment="total B12 and active B12 disagree",
    sources=("NG239", "BSH2014"),
    why="When total B12 and holoTC fall in opposite bands neither settles B12 status; holoTC is "
    "the more specific and NICE prefers it in pregnancy; MMA decides.",
    evidence=(
        ("b12", "b12_deficient"),
        ("b12", "b12_indeterminate_upper"),
        ("holotc", "holotc_deficient"),
        ("holotc", "holotc_indeterminate_upper"),
        ("mma", "mma_elevated"),
    ),
    actions=(order("mma"),),
    since="2",
    example={"panel": {"b12": "110 pmol/L", "holotc": "90 pmol/L"}},
)
def b12_holotc_discordant(f: Facts, xp: Any) -> X:
    return f.discordant
