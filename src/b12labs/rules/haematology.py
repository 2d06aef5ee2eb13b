"""Haematology rules: MCV and haemoglobin (docs/clinical-logic.md §5 "Haematology")."""

from __future__ import annotations

from typing import Any

from .._engine import Facts
from ..models import Severity
from ._registry import branch, order, rule

X = Any
INFO, WARNING = Severity.info, Severity.warning


@rule(
    "MACROCYTOSIS",
    area="haematology",
    severity=INFO,
    title="Macrocytosis",
    message="MCV {mcv} is above {mcv_macrocytosis}. Causes include B12 or folate deficiency, "
    "alcohol, liver disease, hypothyroidism, medicines and marrow disorders.",
    sources=("KAFERLE2009", "SAVAGE2000"),
    why="Macrocytosis (MCV > 100 fL) has a broad differential; B12 and folate should be checked.",
    evidence=(("mcv", "mcv_macrocytosis"),),
    actions=(order("b12"), order("folate")),
    example={"panel": {"mcv": "106 fL"}},
)
def macrocytosis(f: Facts, xp: Any) -> X:
    return f.macrocytosis


@rule(
    "MARKED_MACROCYTOSIS",
    area="haematology",
    severity=WARNING,
    title="Marked macrocytosis",
    message="MCV {mcv} is above {mcv_marked}: marked macrocytosis is usually due to cobalamin "
    "or folate deficiency.",
    sources=("SAVAGE2000",),
    why="MCV > 120 fL is usually caused by megaloblastic anaemia (Savage 2000).",
    evidence=(("mcv", "mcv_marked"),),
    example={"panel": {"mcv": "125 fL"}},
)
def marked_macrocytosis(f: Facts, xp: Any) -> X:
    return f.marked_macrocytosis


@rule(
    "MACROCYTOSIS_ON_METHOTREXATE",
    area="haematology",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(f.cobalamin_unlikely, 1, 2),
    severity_note="info when B12 or holoTC is already in the unlikely band",
    title="Macrocytosis on methotrexate: check B12 before attributing it to the drug",
    message="MCV {mcv} is above {mcv_macrocytosis} in a patient on methotrexate. Do not "
    "attribute the macrocytosis to methotrexate before B12 status is checked.",
    sources=("S003", "SAVAGE2000"),
    why="Methotrexate commonly causes macrocytosis, which can hide coexisting B12 deficiency "
    "(S003: RA patients on methotrexate).",
    evidence=(("mcv", "mcv_macrocytosis"), ("b12", "b12_indeterminate_upper")),
    actions=(order("b12"),),
    example={"panel": {"mcv": "106 fL"}, "context": {"medications": ["methotrexate 15 mg weekly"]}},
)
def macrocytosis_on_methotrexate(f: Facts, xp: Any) -> X:
    return f.macrocytosis & f.med("methotrexate")


@rule(
    "MACROCYTOSIS_DRUG_PLAUSIBLE",
    area="haematology",
    severity=INFO,
    title="Macrocytosis with a medicine that causes it",
    message="MCV {mcv} is above {mcv_macrocytosis} in a patient taking a medicine that can "
    "cause macrocytosis ({meds_macrocytosis_drug}); B12 and folate deficiency should still be excluded.",
    sources=("KAFERLE2009", "SAVAGE2000"),
    why="Hydroxyurea, azathioprine, mercaptopurine, mycophenolate, leflunomide, zidovudine, "
    "trimethoprim, phenytoin and valproate cause macrocytosis.",
    evidence=(("mcv", "mcv_macrocytosis"),),
    example={"panel": {"mcv": "106 fL"}, "context": {"medications": ["hydroxyurea"]}},
)
def macrocytosis_drug_plausible(f: Facts, xp: Any) -> X:
    return f.macrocytosis & f.med("macrocytosis_drug")


@rule(
    "ANAEMIA",
    area="haematology",
    severity=Severity.info,
    escalate=lambda f, xp: xp.where(f.anaemia_severe, 3, xp.where(f.anaemia_moderate, 2, 1)),
    severity_note="by WHO grade: mild info, moderate warning, severe critical",
    title="Anaemia",
    message="Haemoglobin {hb} is below {hb_anaemia}: anaemia.",
    branches=(
        branch(
            "severe",
            lambda f, xp: f.anaemia_severe,
            "Haemoglobin {hb} is below {hb_severe}: severe anaemia (WHO grade).",
            evidence=(("hb", "hb_severe"),),
        ),
        branch(
            "moderate",
            lambda f, xp: f.anaemia_moderate,
            "Haemoglobin {hb} is below {hb_moderate}: moderate anaemia (WHO grade).",
            evidence=(("hb", "hb_moderate"),),
        ),
        branch(
            "mild",
            lambda f, xp: True,
            "Haemoglobin {hb} is below {hb_anaemia}: mild anaemia (WHO grade).",
        ),
    ),
    sources=("WHO-HB",),
    why="WHO 2011 defines anaemia as Hb < 130 g/L in men, < 120 g/L in non-pregnant women and "
    "< 110 g/L in pregnancy, graded mild, moderate and severe.",
    evidence=(("hb", "hb_anaemia"),),
    uses=("hb_moderate", "hb_severe", "hb_moderate_pregnant", "hb_severe_pregnant"),
    example={"panel": {"hb": "9.5 g/dL"}, "context": {"sex": "female"}},
)
def anaemia(f: Facts, xp: Any) -> X:
    return f.anaemia
