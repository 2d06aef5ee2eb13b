"""Scope and input-quality rules (docs/clinical-logic.md §5 "Scope" and "Input quality").

The quality facts (values beyond their analyte's suspect limit) are derived here, by
:func:`derive_quality`.
"""

from __future__ import annotations

from typing import Any

from .._engine import Facts, RawInputs
from ..models import Severity
from ..units import ANALYTES
from ._registry import derives, review, rule
from .metabolites import CHILD_MMA_CLAUSE

X = Any
INFO, WARNING = Severity.info, Severity.warning


#: Suspect limits of the analytes data (canonical units): beyond them a unit slip is likely.
SUSPECT_LIMITS: dict[str, float] = {
    k: spec.suspect for k, spec in ANALYTES.items() if spec.suspect is not None
}


@derives("quality")
def derive_quality(f: Facts, raw: RawInputs, xp: Any) -> None:
    """Values beyond their analyte's suspect limit (a unit slip, not disease): used, questioned.

    A B12 that high is explained by recorded treatment; under 16 a raised MMA is never
    "suspect" (inborn errors give very high values: PAEDIATRIC_MMA). Reads the context area's
    facts (derived before it).
    """
    f.suspect = {}
    any_suspect: X = False
    for key, limit in SUSPECT_LIMITS.items():
        flag = getattr(f, key).gt(limit)
        if key == "b12":
            flag = flag & xp.not_(f.recent_treatment)
        elif key == "mma":
            flag = flag & xp.not_(f.under_age)
        f.suspect[key] = flag
        any_suspect = any_suspect | flag
    f.any_suspect = any_suspect


@rule(
    "AGE_OUT_OF_SCOPE",
    area="scope",
    severity=WARNING,
    title="Under 16: adult thresholds do not apply",
    message="Age {age} is below {adult_age}: the threshold profiles are for adults and "
    "paediatric ranges differ; interpret with a paediatric service. MMA is compared with the "
    "child's age-specific limit.",
    comment="under 16: adult thresholds do not apply; interpret with a paediatric service",
    sources=("NG239",),
    uses=("adult_age",),
    why="NICE NG239 covers people over 16; children's B12, MMA and Hb ranges differ.",
    example={"panel": {"b12": "400 pg/mL"}, "context": {"age": 12}},
)
def age_out_of_scope(f: Facts, xp: Any) -> X:
    return f.under_age


@rule(
    "PAEDIATRIC_MMA",
    area="scope",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(f.raw.age < f.profile["mma_child_age"], 3, 2),
    severity_note="critical under 1 year",
    title="Raised MMA in a child",
    message="MMA {mma} is above the age-specific limit {mma_elevated} at age {age}: in children "
    "a raised MMA can reflect nutritional B12 deficiency (in infants often maternal) or an "
    "inborn error of cobalamin or propionate metabolism. Discuss with a paediatric metabolic "
    "service.",
    comment=CHILD_MMA_CLAUSE,
    sources=("MAYO", "DANISH-MMA"),
    why="Children's MMA limits are age-specific (Danish reference intervals); very high values "
    "suggest inborn errors of metabolism, and infant B12 deficiency is often maternal.",
    evidence=(("mma", "mma_elevated"),),
    actions=(review("discussion with a paediatric metabolic service"),),
    uses=("adult_age", "mma_child_age"),
    since="2",
    example={"panel": {"mma": "8 umol/L"}, "context": {"age": 3}},
)
def paediatric_mma(f: Facts, xp: Any) -> X:
    return f.mma_child


@rule(
    "VALUE_CENSORED",
    area="quality",
    severity=INFO,
    title="A censored value was used",
    message="A censored result ({censored}) was used; a band is decided only when the whole "
    "censored range lies inside it.",
    sources=("NG239",),
    why="A result such as '<100 pg/mL' is an interval: it decides a band only when the band "
    "contains all of it.",
    example={"panel": {"b12": "<200 pg/mL"}},
    evidence_of="censored",
)
def value_censored(f: Facts, xp: Any) -> X:
    return f.any_censored  # any numeric result censored


@rule(
    "VALUE_IMPLAUSIBLE",
    area="quality",
    severity=WARNING,
    title="A value outside the plausible range was not used",
    message="A result outside its plausible range was not used ({implausible}): check the value "
    "and its unit.",
    sources=("NG239",),
    why="A value far outside any physiological range usually means a unit or transcription "
    "error; it is excluded rather than interpreted.",
    example={"panel": {"b12": "900000 pmol/L"}},
    evidence_of="implausible",
)
def value_implausible(f: Facts, xp: Any) -> X:
    out: X = False
    for flag in f.raw.implausible.values():
        out = out | flag
    return out


@rule(
    "VALUE_SUSPECT_UNIT",
    area="quality",
    severity=WARNING,
    title="A value so high that its unit should be checked",
    message="A result far beyond what disease produces was used, but its unit should be checked "
    "with the laboratory ({suspect}): such values usually come from a unit slip (e.g. MMA in "
    "nmol/L reported as umol/L).",
    comment="the unit of an unusually high result should be checked with the laboratory",
    sources=("NG239",),
    why="Beyond the analyte's suspect limit (MMA > 50 umol/L, homocysteine > 500 umol/L, B12 > "
    "20 000 pmol/L without treatment, ferritin > 100 000 ug/L) a unit slip is far likelier than "
    "disease in adults; the value is used, and the unit questioned.",
    since="2",
    example={"panel": {"mma": "400 umol/L"}},
    evidence_of="suspect",
)
def value_suspect_unit(f: Facts, xp: Any) -> X:
    return f.any_suspect
