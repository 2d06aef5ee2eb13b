"""Metabolite rules: methylmalonic acid and homocysteine (docs/clinical-logic.md §5 "Metabolites")."""

from __future__ import annotations

from typing import Any

from .._engine import Facts, StatusCode
from ..models import Severity
from ._fields import words
from ._registry import branch, message_field, order, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning
#: PAEDIATRIC_MMA's clause: in a child every raised-MMA finding makes this one point
CHILD_MMA_CLAUSE = "raised MMA in a child: discussion with a paediatric metabolic service"
_MARKED = "a markedly raised MMA is highly suggestive of functional B12 deficiency"


@rule(
    "MMA_ELEVATED",
    area="metabolites",
    severity=WARNING,
    title="Methylmalonic acid elevated",
    message="MMA {mma} is above {mma_elevated}: supports functional B12 deficiency "
    "(renal impairment, hypovolaemia and older age also raise MMA).",
    branches=(
        branch(
            "child",
            lambda f, xp: f.under_age,
            "MMA {mma} is above the age-specific limit {mma_elevated}: in a child a raised MMA "
            "reflects B12 deficiency or an inborn error of metabolism.",
            comment=CHILD_MMA_CLAUSE,
        ),
        branch(
            "adult_marked",
            lambda f, xp: f.mma_marked,
            "MMA {mma} is above {mma_elevated}: supports functional B12 deficiency "
            "(renal impairment, hypovolaemia and older age also raise MMA).",
            # the same clause as MMA_MARKEDLY_ELEVATED, so the comment makes the point once
            comment=_MARKED,
        ),
        branch(
            "adult",
            lambda f, xp: True,
            "MMA {mma} is above {mma_elevated}: supports functional B12 deficiency "
            "(renal impairment, hypovolaemia and older age also raise MMA).",
        ),
    ),
    comment="raised MMA supports functional B12 deficiency",
    sources=("MAYO", "DANISH-MMA", "HARRINGTON2017", "BSH2014"),
    why="MMA rises when adenosylcobalamin is lacking; it is the preferred second-line test "
    "(BSH 2014). Limits are age-specific (Danish reference intervals) and NICE gives none.",
    evidence=(("mma", "mma_elevated"),),
    example={"panel": {"b12": "250 pg/mL", "mma": "0.62 umol/L"}, "context": {"age": 50}},
)
def mma_elevated(f: Facts, xp: Any) -> X:
    return f.mma_elevated


@rule(
    "MMA_MARKEDLY_ELEVATED",
    area="metabolites",
    severity=WARNING,
    title="Methylmalonic acid markedly elevated",
    message="MMA {mma} is above {mma_markedly_elevated}: highly suggestive of functional B12 "
    "deficiency (a markedly raised MMA is unusual from renal impairment alone).",
    branches=(
        branch(
            "child",
            lambda f, xp: f.under_age,
            "MMA {mma} is above {mma_markedly_elevated}: in a child a markedly raised MMA "
            "reflects B12 deficiency or an inborn error of metabolism.",
            comment=CHILD_MMA_CLAUSE,
        ),
        branch(
            "adult",
            lambda f, xp: True,
            "MMA {mma} is above {mma_markedly_elevated}: highly suggestive of functional B12 "
            "deficiency (a markedly raised MMA is unusual from renal impairment alone).",
        ),
    ),
    comment=_MARKED,
    sources=("N2O-REVIEW", "NORWAY-LAB"),
    why="An MMA above 0.75 µmol/L is highly suggestive of deficiency; renal impairment usually "
    "raises MMA only moderately (< 0.50 µmol/L).",
    evidence=(("mma", "mma_markedly_elevated"), ("mma", "mma_elevated")),
    example={"panel": {"mma": "1.2 umol/L"}},
)
def mma_markedly_elevated(f: Facts, xp: Any) -> X:
    return f.mma_marked


@rule(
    "MMA_RENAL_CAVEAT",
    area="metabolites",
    severity=WARNING,
    title="Elevated MMA with renal impairment",
    message="MMA {mma} is above {mma_elevated} with renal impairment ({renal_basis}): renal "
    "impairment raises MMA, so the result may overstate deficiency. Interpret with caution.",
    branches=(
        branch(
            "marked_not_kidney_failure",
            lambda f, xp: f.mma_marked & xp.not_(f.kidney_failure),
            "MMA {mma} is above {mma_markedly_elevated} with renal impairment ({renal_basis}): "
            "renal impairment usually raises MMA only modestly (below about 0.50 µmol/L unless "
            "there is kidney failure), so it alone is unlikely to explain this value"
            "{egfr_unknown}.",
            # the limit the message compares with (eGFR is not below the kidney-failure one)
            evidence=(
                ("mma", "mma_markedly_elevated"),
                ("egfr", "egfr_renal"),
                ("creatinine", None),
            ),
            comment="renal impairment alone is unlikely to explain the markedly raised MMA",
        ),
        branch(
            "kidney_failure",
            lambda f, xp: f.kidney_failure,
            "MMA {mma} is above {mma_elevated} with kidney failure ({renal_basis}): kidney "
            "failure can raise MMA markedly, so the result may overstate deficiency. Interpret "
            "with caution.",
            evidence=(
                ("mma", "mma_elevated"),
                ("egfr", "egfr_kidney_failure"),
                ("creatinine", None),
            ),
            comment="kidney failure may explain the raised MMA",
        ),
        branch(
            "modest",
            lambda f, xp: True,
            "MMA {mma} is above {mma_elevated} with renal impairment ({renal_basis}): renal "
            "impairment raises MMA, so the result may overstate deficiency. Interpret with "
            "caution.",
            comment="renal impairment may explain the raised MMA",
        ),
    ),
    sources=("NORWAY-LAB", "MAYO", "HARRINGTON2017"),
    why="MMA is cleared by the kidney; unadjusted MMA overestimated deficiency by 40 % in "
    "reduced eGFR (Ann Clin Biochem 2018).",
    evidence=(("mma", "mma_elevated"), ("egfr", "egfr_renal"), ("creatinine", None)),
    example={"panel": {"mma": "0.6 umol/L", "egfr": "45 mL/min/1.73m2"}},
)
def mma_renal_caveat(f: Facts, xp: Any) -> X:
    return f.mma_renal_caveat


@message_field("egfr_unknown")
def egfr_unknown(v: Any) -> str:
    """``(eGFR unknown)`` when neither reported nor calculated."""
    return "" if v.facts.egfr.present else " (eGFR unknown)"


@message_field("renal_basis")
def renal_basis(v: Any) -> str:
    """What shows renal impairment: only the eGFR, creatinine or CKD that held."""
    f = v.facts
    items = []
    if f.kidney_failure:
        items.append(f"eGFR {v['egfr']} below {v['egfr_kidney_failure']}")
    elif f.egfr.lt(f.profile.canonical["egfr_renal"]):
        items.append(f"eGFR {v['egfr']} below {v['egfr_renal']}")
    if f.creatinine_high:
        items.append(f"creatinine {v['creatinine']} above its reference interval")
    if f.cond("chronic_kidney_disease"):
        items.append("chronic kidney disease recorded")
    return words(items)


@message_field("folate_not_low")
def folate_not_low(v: Any) -> str:
    """`` while folate 12 nmol/L is not low`` when folate was measured; nothing otherwise."""
    if v.m.get("folate") is None:
        return ""
    return f" while folate {v['folate']} is not low"


def _hcy_message(v: Any) -> str:
    """Homocysteine above its limit; names the confounders present (low folate, renal impairment, methotrexate, nitrous oxide, hypothyroidism)."""
    f = v.facts
    confounders = []
    if f.folate_low:
        confounders.append("low folate")
    if f.renal:
        confounders.append("renal impairment")
    if f.med("methotrexate"):
        confounders.append("methotrexate")
    if f.nitrous:
        confounders.append("nitrous oxide")
    if f.cond("hypothyroidism"):
        confounders.append("hypothyroidism")
    text = (
        "Homocysteine {homocysteine} is above {homocysteine_elevated}. It is non-specific: "
        "raised in B12 and folate deficiency, B6 deficiency, renal impairment and hypothyroidism."
    )
    text = text.format_map(v)
    if confounders:
        text += " Present here: " + ", ".join(confounders) + "."
    return text


@rule(
    "HCY_ELEVATED",
    area="metabolites",
    severity=INFO,
    title="Homocysteine elevated (non-specific)",
    message=_hcy_message,
    sources=("REFSUM2004", "BSH2014", "NORWAY-LAB"),
    why="Homocysteine rises in B12 deficiency but also with low folate, B6 deficiency, renal "
    "impairment, hypothyroidism, methotrexate and nitrous oxide; it is less specific than MMA.",
    evidence=(
        ("homocysteine", "homocysteine_elevated"),
        ("folate", "folate_low"),
        ("egfr", "egfr_renal"),
    ),
    example={"panel": {"homocysteine": "22 umol/L"}},
)
def hcy_elevated(f: Facts, xp: Any) -> X:
    return f.hcy_elevated


@rule(
    "FOLATE_PATTERN",
    area="metabolites",
    severity=INFO,
    title="Raised homocysteine with normal MMA: folate pattern",
    message="Homocysteine {homocysteine} is elevated while MMA {mma} is not (limit "
    "{mma_elevated}): this pattern suggests folate (or B6) deficiency rather than B12 deficiency.",
    sources=("NORWAY-LAB", "BSH2014"),
    why="B12 deficiency raises both MMA and homocysteine; folate or B6 deficiency raises "
    "homocysteine with a normal MMA.",
    evidence=(("homocysteine", "homocysteine_elevated"), ("mma", "mma_elevated")),
    actions=(order("folate"),),
    after_status=True,
    example={"panel": {"homocysteine": "22 umol/L", "mma": "0.2 umol/L"}},
)
def folate_pattern(f: Facts, xp: Any) -> X:
    return (
        f.hcy_elevated
        & f.mma_not_elevated
        & (f.status != StatusCode.DEFICIENT)
        & (f.status != StatusCode.PROBABLE)
    )


@rule(
    "METABOLIC_EVIDENCE_NORMAL_B12",
    area="metabolites",
    severity=WARNING,
    title="Metabolic evidence of deficiency despite a normal B12",
    message="Deficiency is not excluded by a normal serum B12.",
    branches=(
        branch(
            "mma",
            lambda f, xp: f.mma_elevated & xp.not_(f.renal),
            "The serum cobalamin result ({cobalamin_unlikely}) looks reassuring, but MMA {mma} "
            "is above {mma_elevated}: deficiency is not excluded by a normal serum B12.",
            comment="raised MMA despite a normal B12: deficiency not excluded",
            evidence=(
                ("b12", "b12_indeterminate_upper"),
                ("holotc", "holotc_indeterminate_upper"),
                ("mma", "mma_elevated"),
            ),
        ),
        branch(
            "homocysteine",
            lambda f, xp: f.hcy_elevated,
            "The serum cobalamin result ({cobalamin_unlikely}) looks reassuring, but "
            "homocysteine {homocysteine} is above {homocysteine_elevated}{folate_not_low}: "
            "deficiency is not excluded by a normal serum B12; MMA would distinguish B12 from "
            "other causes.",
            comment="raised homocysteine despite a normal B12: deficiency not excluded",
            evidence=(
                ("b12", "b12_indeterminate_upper"),
                ("holotc", "holotc_indeterminate_upper"),
                ("homocysteine", "homocysteine_elevated"),
                ("folate", "folate_low"),
            ),
        ),
    ),
    sources=("S003", "BSH2014", "HARRINGTON2017"),
    why="Serum B12 can be normal in functional deficiency; raised metabolites reveal it "
    "(S003; BSH 2014). Homocysteine alone is acted on only when MMA is unmeasured and folate "
    "is not low.",
    evidence=(
        ("b12", "b12_indeterminate_upper"),
        ("holotc", "holotc_indeterminate_upper"),
        ("mma", "mma_elevated"),
        ("homocysteine", "homocysteine_elevated"),
        ("folate", "folate_low"),
    ),
    actions=(
        order("mma"),
        order("folate", when=lambda f, xp: f.hcy_elevated & xp.not_(f.mma.present)),
    ),
    example={"panel": {"b12": "400 pmol/L", "homocysteine": "25 umol/L"}},
)
def metabolic_evidence_normal_b12(f: Facts, xp: Any) -> X:
    # folate not measured counts as "not low" (the cautious reading: flag for review); with
    # B12 and holoTC discordant the normal marker is not "reassuring" (B12_HOLOTC_DISCORDANT
    # replaces the unlikely-band findings of the pair; MMA_ELEVATED still says what MMA shows)
    return (
        f.cobalamin_unlikely
        & xp.not_(f.discordant)
        & (
            (f.mma_elevated & xp.not_(f.renal))
            | (f.hcy_elevated & xp.not_(f.mma.present) & xp.not_(f.folate_low))
        )
    )
