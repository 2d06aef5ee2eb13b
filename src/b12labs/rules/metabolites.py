"""Metabolite rules: methylmalonic acid and homocysteine (docs/clinical-logic.md §5 "Metabolites").

The metabolite facts (MMA against its age-specific limit, homocysteine, eGFR reported or
calculated by CKD-EPI 2021, renal impairment) are derived here, by :func:`derive_metabolites`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._engine import SCALAR, Facts, Measure, RawInputs, StatusCode, chosen_limit, exact, lab_limit
from ..models import Severity
from ._fields import words
from ._registry import branch, derives, message_field, order, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning
#: PAEDIATRIC_MMA's clause: in a child every raised-MMA finding makes this one point
CHILD_MMA_CLAUSE = "raised MMA in a child: discussion with a paediatric metabolic service"
_MARKED = "a markedly raised MMA is highly suggestive of functional B12 deficiency"


_NAN = math.nan


@derives("metabolites")
def derive_metabolites(f: Facts, raw: RawInputs, xp: Any) -> None:
    """MMA against its age-specific limit, eGFR (reported or calculated), renal impairment and
    homocysteine (docs/clinical-logic.md §4)."""
    p = f.profile.canonical
    rh = raw.ref_high
    # MMA: age-specific limit (under-65 limit when age unknown), lab ref_high replaces it
    mma_limit = lab_limit(
        f, xp, "mma_elevated", chosen_limit(f, "mma_elevated"), rh.get("mma", _NAN)
    )
    f.mma_elevated = f.mma.gt(mma_limit)
    f.mma_not_elevated = f.mma.le(mma_limit)
    f.mma_undecided = f.mma.present & xp.not_(f.mma_elevated | f.mma_not_elevated)
    # above 0.75 umol/L *and* the age-specific limit (an infant's 1.25 exceeds 0.75)
    f.mma_marked = f.mma.gt(p["mma_markedly_elevated"]) & f.mma_elevated

    # eGFR: reported, or calculated from creatinine (CKD-EPI 2021) when it can be
    _egfr(f, raw, xp)
    # renal impairment: eGFR < 60, creatinine above its own interval's upper limit, or CKD
    f.creatinine_high = f.creatinine.gt(rh.get("creatinine", _NAN))
    f.renal = f.egfr.lt(p["egfr_renal"]) | f.creatinine_high | f.cond("chronic_kidney_disease")
    f.kidney_failure = f.egfr.lt(p["egfr_kidney_failure"])
    f.mma_renal_caveat = f.mma_elevated & f.renal

    f.hcy_elevated = f.homocysteine.gt(
        lab_limit(
            f, xp, "homocysteine_elevated", p["homocysteine_elevated"], rh.get("homocysteine", _NAN)
        )
    )


# CKD-EPI 2021 creatinine equation (Inker et al., N Engl J Med 2021;385:1737-49), race-free
_CKD_EPI = {"female": (0.7, -0.241, 1.012), "male": (0.9, -0.302, 1.0)}
_UMOL_PER_MG_DL = 88.4


def ckd_epi_2021(creatinine_umol: X, age: X, female: X, xp: Any) -> X:
    """eGFR (mL/min/1.73m2) from creatinine (umol/L), age (years) and sex, in either shape."""
    scr = creatinine_umol / _UMOL_PER_MG_DL
    kf, af, sf = _CKD_EPI["female"]
    km, am, sm = _CKD_EPI["male"]
    if xp is SCALAR:
        k, a, s = (kf, af, sf) if female else (km, am, sm)
        r = scr / k
        return 142.0 * min(r, 1.0) ** a * max(r, 1.0) ** -1.200 * 0.9938**age * s
    kv = np.where(female, kf, km)
    av = np.where(female, af, am)
    sv = np.where(female, sf, sm)
    with np.errstate(invalid="ignore", divide="ignore"):
        rv = scr / kv
        return 142.0 * np.minimum(rv, 1.0) ** av * np.maximum(rv, 1.0) ** -1.200 * 0.9938**age * sv


def egfr_not_calculated(raw: RawInputs, creatinine_censored: bool) -> str | None:
    """Why eGFR was not calculated from a reported creatinine (scalar shape), or ``None``."""
    if raw.pregnant:
        return "not calculated from creatinine in pregnancy"
    if creatinine_censored:
        return "not calculated from a censored creatinine"
    if raw.age != raw.age:
        return "not calculated from creatinine: age unknown"
    if raw.age < ADULT_EGFR_AGE:
        return "not calculated from creatinine under 18 years"
    if raw.sex not in (1, 2):
        return "not calculated from creatinine: sex unknown or other"
    return None


#: CKD-EPI is validated from 18 years
ADULT_EGFR_AGE = 18.0


def _egfr(f: Facts, raw: RawInputs, xp: Any) -> None:
    """Replace a missing eGFR by the CKD-EPI 2021 estimate where creatinine, age >= 18 and
    sex (female/male) are known and the patient is not pregnant (docs/clinical-logic.md §2)."""
    creat = f.creatinine
    reported = raw.values.get("egfr", _NAN)
    can = (
        xp.isnan(reported)
        & xp.not_(raw.implausible.get("egfr", False))
        & creat.present
        & xp.not_(creat.censored)
        & (raw.age >= ADULT_EGFR_AGE)
        & ((raw.sex == 1) | (raw.sex == 2))
        & xp.not_(raw.pregnant)
    )
    f.egfr_calculated = can
    if xp is SCALAR:
        if can:
            value = round(ckd_epi_2021(creat.value, raw.age, raw.sex == 1, xp), 1)
            f.egfr = exact(value)
        return
    if not np.any(can):
        return
    estimate = np.round(ckd_epi_2021(creat.value, raw.age, raw.sex == 1, xp), 1)
    value = np.where(can, estimate, f.egfr.value)
    f.egfr = Measure(value, np.where(can, 0, raw.cmp.get("egfr", 0)), xp)


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
