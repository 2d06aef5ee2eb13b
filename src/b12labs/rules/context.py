"""Context and confounder rules (docs/clinical-logic.md §5 "Context and confounders")."""

from __future__ import annotations

from typing import Any

from .._engine import DIET_CONDITIONS, MALABSORPTION_CONDITIONS, Facts
from ..models import Severity
from ._fields import words
from ._registry import branch, message_field, order, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning


@message_field("malabsorption")
def malabsorption(v: Any) -> str:
    """The recorded conditions that impair B12 absorption (not every condition recorded)."""
    return words(
        [c.replace("_", " ") for c in v.context.conditions if c in MALABSORPTION_CONDITIONS]
    )


@message_field("diet")
def diet(v: Any) -> str:
    """``vegan diet``, ``vegetarian diet`` (as recorded)."""
    return " and ".join(c.replace("_", " ") for c in v.context.conditions if c in DIET_CONDITIONS)


def _treatment_message(v: Any) -> str:
    """B12 treatment recorded: B12 results reflect treatment; a result still deficient despite treatment is reported as such."""
    text = (
        "B12 treatment is recorded (ongoing replacement, a recent injection or a B12 "
        "product): serum B12 and active B12 reflect the treatment, not B12 status."
    )
    if v.facts.b12_deficient or v.facts.holotc_deficient:
        text += (
            " The result is still in the deficient band despite treatment: consider "
            "adherence, dose and malabsorption."
        )
    return text


@rule(
    "RECENT_B12_TREATMENT",
    area="context",
    severity=INFO,
    title="Recent B12 treatment: B12 results reflect treatment",
    message=_treatment_message,
    sources=("MAYO", "BSH2014"),
    why="Within 2 weeks of an injection, or on replacement, serum B12 does not reflect "
    "deficiency (Mayo); monitor response with the blood count instead.",
    evidence=(("b12", "b12_deficient"), ("holotc", "holotc_deficient")),
    uses=("b12_injection_recent",),
    example={"panel": {"b12": "900 pg/mL"}, "context": {"b12_treatment": "injection"}},
)
def recent_b12_treatment(f: Facts, xp: Any) -> X:
    return f.recent_treatment


@rule(
    "PREGNANCY_CAVEAT",
    area="context",
    severity=INFO,
    title="Pregnancy lowers total B12",
    message="Total B12 {b12} was measured in pregnancy: total B12 falls in pregnancy without "
    "deficiency; active B12 (holoTC) or MMA are preferred.",
    sources=("NG239",),
    why="NICE NG239 prefers active B12 in pregnancy because total B12 falls physiologically.",
    evidence=(("b12", None),),
    example={"panel": {"b12": "200 pg/mL"}, "context": {"pregnant": True}},
)
def pregnancy_caveat(f: Facts, xp: Any) -> X:
    return f.raw.pregnant & f.b12.present


@rule(
    "NITROUS_OXIDE",
    area="context",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(f.neuro, 3, 2),
    severity_note="critical with a neurological symptom",
    title="Nitrous oxide exposure",
    message="Nitrous oxide inactivates B12: serum B12 and active B12 may be normal despite "
    "functional deficiency. Homocysteine and MMA are the more sensitive tests.",
    sources=("N2O-REVIEW", "NG239"),
    why="Nitrous oxide oxidises cobalamin; serum B12 is often normal (sensitivity 20-50 %), "
    "while MMA and homocysteine are 80-90 % sensitive.",
    evidence=(("b12", None), ("homocysteine", "homocysteine_elevated"), ("mma", "mma_elevated")),
    actions=(order("homocysteine"), order("mma")),
    example={"panel": {"b12": "400 pg/mL"}, "context": {"nitrous_oxide_exposure": True}},
)
def nitrous_oxide(f: Facts, xp: Any) -> X:
    return f.nitrous


@rule(
    "B12_RISK_MEDICATION",
    area="context",
    severity=INFO,
    title="A medicine that lowers B12",
    message="A medicine that lowers B12 is recorded ({meds_b12_lowering}): metformin, acid "
    "suppressants and some anticonvulsants reduce B12 absorption.",
    sources=("NG239", "MHRA2022"),
    why="NICE lists metformin, PPIs, H2 blockers, colchicine, topiramate, pregabalin, "
    "phenobarbital and primidone as risk factors; MHRA 2022 advises checking B12 on metformin "
    "when symptomatic.",
    example={"context": {"medications": ["metformin 1 g twice daily"]}},
)
def b12_risk_medication(f: Facts, xp: Any) -> X:
    return f.med("b12_lowering")


@rule(
    "MALABSORPTION_RISK",
    area="context",
    severity=INFO,
    title="A cause of B12 malabsorption",
    message="A condition that impairs B12 absorption is recorded ({malabsorption}): oral "
    "replacement may not be dependable; intramuscular replacement per guidance.",
    sources=("S001", "NG239", "BSH2014"),
    why="Autoimmune gastritis, gastric and ileal surgery, Crohn's and coeliac disease impair "
    "B12 absorption (S001; NICE NG239).",
    example={"context": {"conditions": ["pernicious_anaemia"]}},
)
def malabsorption_risk(f: Facts, xp: Any) -> X:
    return f.malabsorption


@rule(
    "DIETARY_RISK",
    area="context",
    severity=INFO,
    title="Dietary risk of B12 deficiency",
    message="A {diet} is recorded: a dietary cause of low B12 is possible; oral replacement "
    "usually suffices.",
    sources=("S001", "NG239"),
    why="Low dietary intake is a NICE risk factor; dietary deficiency usually responds to "
    "oral B12 (S001).",
    example={"context": {"conditions": ["vegan_diet"]}},
)
def dietary_risk(f: Facts, xp: Any) -> X:
    return f.diet


@rule(
    "IF_ANTIBODY_POSITIVE",
    area="context",
    severity=WARNING,
    title="Intrinsic-factor antibody positive",
    message="Intrinsic-factor antibody is positive: this supports autoimmune gastritis "
    "(pernicious anaemia). A negative result would not have excluded it.",
    sources=("BSH2014", "MAYO", "NG239"),
    why="IF antibody is about 50 % sensitive but highly specific for pernicious anaemia.",
    evidence=(("if_antibody", None),),
    example={"panel": {"if_antibody": "positive"}},
)
def if_antibody_positive(f: Facts, xp: Any) -> X:
    return f.if_positive


_ASSAY = "some B12 assays read falsely normal in pernicious anaemia. Check MMA and homocysteine."


@rule(
    "POSSIBLE_ASSAY_INTERFERENCE",
    area="context",
    severity=WARNING,
    title="B12 may read falsely normal",
    message=_ASSAY,
    branches=(
        branch(
            "if_antibody_positive",
            lambda f, xp: f.if_positive,
            "Total B12 {b12} is not in the deficient band, but the intrinsic-factor antibody is "
            "positive: " + _ASSAY,
            evidence=(("b12", "b12_deficient"), ("if_antibody", None)),
        ),
        branch(
            "marked_macrocytosis",
            lambda f, xp: True,
            "Total B12 {b12} is not in the deficient band, but MCV {mcv} is above {mcv_marked}: "
            + _ASSAY,
            evidence=(("b12", "b12_deficient"), ("mcv", "mcv_marked")),
        ),
    ),
    sources=("CARMEL2012", "BSH2014"),
    why="Competitive-binding B12 assays gave false-normal results in 22-35 % of untreated "
    "pernicious anaemia samples (Carmel 2012).",
    evidence=(("b12", "b12_deficient"), ("if_antibody", None), ("mcv", "mcv_marked")),
    actions=(order("mma"), order("homocysteine")),
    example={"panel": {"b12": "400 pg/mL", "if_antibody": "positive"}},
)
def possible_assay_interference(f: Facts, xp: Any) -> X:
    return f.b12.present & xp.not_(f.b12_deficient) & (f.if_positive | f.marked_macrocytosis)
