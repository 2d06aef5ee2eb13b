"""Haematology rules: MCV and haemoglobin (docs/clinical-logic.md §5 "Haematology").

The haematology facts (MCV, RDW, Hb and anaemia severity, reticulocytes) are derived here, by
:func:`derive_haematology`.
"""

from __future__ import annotations

import math
from typing import Any

from .._engine import Facts, RawInputs, StatusCode, chosen_limit, lab_limit
from ..models import Severity
from ..vocabulary import CONDITION_GROUPS
from ._fields import words
from ._registry import branch, derives, message_field, order, rule

_MACRO_CAUSES = CONDITION_GROUPS["macrocytosis_causes"]

X = Any
INFO, WARNING = Severity.info, Severity.warning


_NAN = math.nan


@derives("haematology")
def derive_haematology(f: Facts, raw: RawInputs, xp: Any) -> None:
    """Macrocytosis, a high RDW, anaemia and its severity (limits by sex and pregnancy), and a
    high reticulocyte count."""
    p = f.profile.canonical
    rh = raw.ref_high
    f.macrocytosis = f.mcv.gt(
        lab_limit(f, xp, "mcv_macrocytosis", p["mcv_macrocytosis"], rh.get("mcv", _NAN))
    )
    f.marked_macrocytosis = f.mcv.gt(p["mcv_marked"])
    f.rdw_high = f.rdw.gt(lab_limit(f, xp, "rdw_high", p["rdw_high"], rh.get("rdw", _NAN)))

    f.anaemia = f.hb.lt(
        lab_limit(f, xp, "hb_anaemia", chosen_limit(f, "hb_anaemia"), raw.ref_low.get("hb", _NAN))
    )
    f.anaemia_severe = f.hb.lt(chosen_limit(f, "hb_severe"))
    f.anaemia_moderate = f.hb.lt(chosen_limit(f, "hb_moderate"))
    f.retic_high = f.retic.gt(p["retic_high"])


def _b12_wanted(f: Facts, xp: Any) -> X:
    """Neither B12 nor holoTC measured and no replacement recorded: B12 should be checked."""
    return xp.not_(f.b12.present | f.holotc.present) & xp.not_(f.recent_treatment)


@message_field("macrocytosis_causes")
def macrocytosis_causes(v: Any) -> str:
    """Recorded plausible causes of macrocytosis and a high reticulocyte count, as held."""
    f = v.facts
    out = []
    named = [c.replace("_", " ") for c in v.context.conditions if c in _MACRO_CAUSES]
    if named:
        out.append(f" Recorded {words(named)} is a plausible cause.")
    if f.retic_high:
        out.append(
            f" Reticulocytes {v['retic']} are above {v['retic_high']}: a response to "
            "haemolysis or bleeding can raise the MCV."
        )
    return "".join(out)


@rule(
    "MACROCYTOSIS",
    area="haematology",
    severity=INFO,
    title="Macrocytosis",
    message="MCV {mcv} is above {mcv_macrocytosis}. Causes include B12 or folate deficiency, "
    "alcohol, liver disease, hypothyroidism, medicines and marrow disorders."
    "{macrocytosis_causes}",
    sources=("KAFERLE2009", "SAVAGE2000"),
    why="Macrocytosis (MCV > 100 fL) has a broad differential; B12 and folate should be checked.",
    evidence=(("mcv", "mcv_macrocytosis"), ("retic", "retic_high")),
    evidence_when={"retic": "retic_high"},
    actions=(order("b12", when=_b12_wanted), order("folate")),
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
    comment="marked macrocytosis",
    sources=("SAVAGE2000",),
    why="MCV > 120 fL is usually caused by megaloblastic anaemia (Savage 2000).",
    evidence=(("mcv", "mcv_marked"),),
    example={"panel": {"mcv": "125 fL"}},
)
def marked_macrocytosis(f: Facts, xp: Any) -> X:
    return f.marked_macrocytosis


def _holotc_only_unlikely(f: Facts, xp: Any) -> X:
    return f.holotc_unlikely & xp.not_(f.b12.present)


def _mtx_unlikely(f: Facts, xp: Any) -> X:
    """The info case: B12 studies in the unlikely band and the status agrees."""
    return f.cobalamin_unlikely & (f.status == StatusCode.UNLIKELY)


_MTX = "MCV {mcv} is above {mcv_macrocytosis} in a patient on methotrexate"


@rule(
    "MACROCYTOSIS_ON_METHOTREXATE",
    area="haematology",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(_mtx_unlikely(f, xp), 1, 2),
    severity_note="info when B12 or holoTC is in the unlikely band and the status is unlikely",
    title="Macrocytosis on methotrexate",
    message=_MTX + ".",
    branches=(
        branch(
            "b12_not_checked",
            lambda f, xp: f.status == StatusCode.NOT_ASSESSED,
            _MTX + ": do not attribute it to the drug before B12 status is checked.",
            evidence=(("mcv", "mcv_macrocytosis"),),
            comment="do not attribute the macrocytosis to methotrexate before B12 is checked",
        ),
        branch(
            "b12_not_excluded",
            lambda f, xp: (
                (f.status == StatusCode.DEFICIENT)
                | (f.status == StatusCode.PROBABLE)
                | (f.status == StatusCode.INDETERMINATE)
            ),
            _MTX + ": B12 deficiency is not excluded and should be addressed before the drug is "
            "blamed.",
            comment="address possible B12 deficiency before blaming methotrexate",
        ),
        branch(
            "b12_normal",
            lambda f, xp: f.status == StatusCode.UNLIKELY,
            _MTX + ": with normal B12 studies a methotrexate effect is plausible; check folate.",
        ),
        branch(
            "on_replacement",
            lambda f, xp: True,
            _MTX + ": B12 replacement is recorded, so the B12 result cannot exclude deficiency; "
            "judge the macrocytosis by the blood count's response and check folate.",
            evidence=(("mcv", "mcv_macrocytosis"),),
            comment="judge the macrocytosis on methotrexate by the response to B12 replacement",
        ),
    ),
    sources=("S003", "SAVAGE2000"),
    why="Methotrexate commonly causes macrocytosis, which can hide coexisting B12 deficiency "
    "(S003: RA patients on methotrexate).",
    evidence=(
        ("mcv", "mcv_macrocytosis"),
        ("b12", "b12_indeterminate_upper"),
        ("holotc", "holotc_indeterminate_upper"),
    ),
    actions=(
        order(
            "b12",
            when=lambda f, xp: (
                (f.status == StatusCode.NOT_ASSESSED)
                & xp.not_(f.b12.present)
                & xp.not_(_holotc_only_unlikely(f, xp))
                & xp.not_(f.recent_treatment)
            ),
        ),
        order(
            "folate",
            when=lambda f, xp: (
                ((f.status == StatusCode.UNLIKELY) | (f.status == StatusCode.UNINTERPRETABLE))
                & xp.not_(f.folate.present)
            ),
        ),
    ),
    after_status=True,
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
            comment="severe anaemia",
        ),
        branch(
            "moderate",
            lambda f, xp: f.anaemia_moderate,
            "Haemoglobin {hb} is below {hb_moderate}: moderate anaemia (WHO grade).",
            evidence=(("hb", "hb_moderate"),),
            comment="moderate anaemia",
        ),
        branch(
            "mild",
            lambda f, xp: True,
            "Haemoglobin {hb} is below {hb_anaemia}: mild anaemia (WHO grade).",
        ),
    ),
    sources=("WHO-HB", "WHO-HB-2024"),
    why="WHO 2011 defines anaemia as Hb < 130 g/L in men, < 120 g/L in non-pregnant women and "
    "< 110 g/L in pregnancy (WHO 2024: < 105 g/L in the second trimester), graded mild, "
    "moderate and severe.",
    evidence=(("hb", "hb_anaemia"),),
    uses=("hb_moderate", "hb_severe", "hb_moderate_pregnant", "hb_severe_pregnant"),
    example={"panel": {"hb": "9.5 g/dL"}, "context": {"sex": "female"}},
)
def anaemia(f: Facts, xp: Any) -> X:
    return f.anaemia
