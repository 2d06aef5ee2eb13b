"""Neurology and differential rules (docs/clinical-logic.md §5 "Neurology and differentials")."""

from __future__ import annotations

from typing import Any

from .._engine import DIET_CONDITIONS, MALABSORPTION_CONDITIONS, Facts, StatusCode
from ..models import Severity
from ..vocabulary import SYMPTOM_GROUPS
from ._fields import cobalamin_findings, words
from ._registry import branch, message_field, order, review, rule

X = Any
#: shared with IF_ANTIBODY_POSITIVE's neurological branch, so the comment says it once
NEURO_URGENT_CLAUSE = (
    "neurological symptoms: prompt clinical review, without delaying treatment for further tests"
)
INFO, WARNING, CRITICAL = Severity.info, Severity.warning, Severity.critical


@rule(
    "NEURO_URGENT",
    area="neurology",
    severity=CRITICAL,
    title="Neurological symptoms with possible B12 deficiency: urgent",
    message="Neurological symptoms ({neuro_symptoms}) with {neuro_trigger}: prompt clinical "
    "review; treatment should not be "
    "delayed pending further tests (BSH). For reference, the BNF hydroxocobalamin regimen with "
    "neurological involvement is 1 mg IM on alternate days until no further improvement, then "
    "1 mg every 2 months.",
    sources=("BSH2014", "BNF", "S000", "S004"),
    why="Neurological damage from B12 deficiency can become irreversible; BSH advises not to "
    "delay treatment when clinical features are strong.",
    evidence=(
        ("b12", "b12_indeterminate_upper"),
        ("holotc", "holotc_indeterminate_upper"),
        ("mma", "mma_elevated"),
        ("homocysteine", "homocysteine_elevated"),
    ),
    actions=(review("prompt clinical review, without delaying treatment for further tests"),),
    # names its review action, so the comment does not suggest it again
    comment=NEURO_URGENT_CLAUSE,
    after_status=True,
    example={"panel": {"b12": "150 pg/mL"}, "context": {"symptoms": ["paraesthesia"]}},
)
def neuro_urgent(f: Facts, xp: Any) -> X:
    possible = (
        f.cobalamin_deficient
        | (f.cobalamin_low & xp.not_(f.mma_not_elevated))
        | f.mma_elevated
        | (f.hcy_elevated & xp.not_(f.mma.present))
        | f.nitrous
        | f.if_positive
    )
    return f.neuro & possible & (f.status != StatusCode.UNLIKELY)


@rule(
    "NEURO_SYMPTOMS_NORMAL_B12",
    area="neurology",
    severity=WARNING,
    title="Neurological symptoms with a normal B12",
    message="Neurological symptoms ({neuro_symptoms}) with total B12 {b12} above "
    "{b12_indeterminate_upper}: a normal B12 does not exclude deficiency; MMA would show "
    "functional deficiency.",
    comment="neurological symptoms with a normal B12: deficiency not excluded",
    sources=("BSH2014", "LINDENBAUM1988", "S000"),
    why="Neurological B12 deficiency occurs with normal blood counts and sometimes normal "
    "serum B12; MMA detects functional deficiency.",
    evidence=(("b12", "b12_indeterminate_upper"),),
    actions=(order("mma"),),
    example={"panel": {"b12": "400 pg/mL"}, "context": {"symptoms": ["numbness"]}},
)
def neuro_symptoms_normal_b12(f: Facts, xp: Any) -> X:
    # not beside B12_HOLOTC_DISCORDANT, which replaces the unlikely-band findings of the pair
    # (NEURO_URGENT speaks for the deficient marker)
    # not on B12 treatment: that B12 reflects the treatment, not a normal status
    # (RECENT_B12_TREATMENT says so, and MMA falls with treatment too)
    return (
        f.neuro
        & f.b12_unlikely
        & xp.not_(f.mma.present)
        & xp.not_(f.discordant)
        & xp.not_(f.recent_treatment)
    )


_RISK_CLASSES = ("b12_lowering", "methotrexate")
_NECK = SYMPTOM_GROUPS["neck"]


@message_field("neuro_trigger")
def neuro_trigger(v: Any) -> str:
    """What made the symptoms urgent: the results and exposure that held, not the list."""
    items = cobalamin_findings(v)
    if v.facts.nitrous:
        items.append("nitrous oxide exposure")
    if v.facts.if_positive:
        items.append("a positive intrinsic-factor antibody")
    return words(items)


@message_field("risk_factors")
def risk_factors(v: Any) -> str:
    """The risk factors recorded (medicines, conditions, diet, nitrous oxide, age)."""
    f = v.facts
    items = []
    if f.med("b12_lowering"):
        items.append(v["meds_b12_lowering"])
    if f.med("methotrexate"):
        items.append(v["meds_methotrexate"])
    items.extend(c.replace("_", " ") for c in v.context.conditions if c in MALABSORPTION_CONDITIONS)
    items.extend(c.replace("_", " ") for c in v.context.conditions if c in DIET_CONDITIONS)
    if f.nitrous:
        items.append("nitrous oxide exposure")
    if f.raw.age >= f.profile["risk_age"]:
        items.append(f"age {v['age']}")
    return words(items)


@message_field("neck_symptoms")
def neck_symptoms(v: Any) -> str:
    return words([s.replace("_", " ") for s in v.context.symptoms if s in _NECK])


@message_field("ng239_symptoms")
def ng239_symptoms(v: Any) -> str:
    """The recorded NG239 symptoms, and neck/back pain or joint stiffness beside them."""
    return words([s.replace("_", " ") for s in v.context.symptoms])


@rule(
    "B12_TESTING_SUGGESTED",
    area="neurology",
    severity=INFO,
    title="Symptoms and a risk factor: consider B12 testing",
    message="Symptoms ({ng239_symptoms}) and a risk factor for B12 deficiency ({risk_factors}) "
    "are recorded with no B12 result: consider testing B12.",
    sources=("NG239", "S000", "S001", "S002", "S004"),
    why="NICE NG239 offers a B12 test to people with a symptom and a risk factor; neck and back "
    "pain and joint stiffness are described with deficiency (S001, S002).",
    actions=(order("b12"),),
    uses=("risk_age",),
    example={"context": {"symptoms": ["fatigue"], "medications": ["metformin"]}},
)
def b12_testing_suggested(f: Facts, xp: Any) -> X:
    risk = (
        f.med("b12_lowering")
        | f.med("methotrexate")
        | f.malabsorption
        | f.diet
        | f.nitrous
        | (f.raw.age >= f.profile["risk_age"])
    )
    no_result = xp.not_(f.b12.present | f.holotc.present | f.mma.present)
    return no_result & xp.not_(f.recent_treatment) & f.ng239_symptom & risk


@rule(
    "RA_CERVICAL_RED_FLAG",
    area="neurology",
    severity=CRITICAL,
    title="Rheumatoid arthritis with neck symptoms and neurological signs",
    escalate=lambda f, xp: xp.where(f.neuro, 3, 2),
    severity_note="critical with a neurological symptom; warning with occipital headache alone",
    message="Rheumatoid arthritis with {neck_symptoms}: consider cervical spine disease.",
    branches=(
        branch(
            "neurological",
            lambda f, xp: f.neuro,
            "Rheumatoid arthritis with {neck_symptoms} and neurological symptoms "
            "({neuro_symptoms}): exclude cervical cord compression (imaging, e.g. MRI of the "
            "cervical spine) alongside the B12 work-up.",
            comment="rheumatoid arthritis with neck and neurological symptoms: exclude cervical "
            "cord compression",
        ),
        branch(
            "occipital_headache",
            lambda f, xp: True,
            "Rheumatoid arthritis with {neck_symptoms} and occipital headache: consider "
            "atlanto-axial subluxation.",
            comment="rheumatoid arthritis with neck pain and occipital headache: consider "
            "atlanto-axial subluxation",
        ),
    ),
    sources=("S003",),
    why="Cervical spine disease affects 25-86 % of people with RA and can compress the cord; "
    "its symptoms overlap with B12 deficiency (S003).",
    actions=(
        review("MRI cervical spine to exclude cord compression", when=lambda f, xp: f.neuro),
        review(
            "imaging of the cervical spine for atlanto-axial subluxation",
            when=lambda f, xp: xp.not_(f.neuro),
        ),
    ),
    example={
        "context": {
            "conditions": ["rheumatoid_arthritis"],
            "symptoms": ["neck_pain", "paraesthesia"],
        }
    },
)
def ra_cervical_red_flag(f: Facts, xp: Any) -> X:
    neck = f.any_sym(_NECK)
    return f.cond("rheumatoid_arthritis") & neck & (f.neuro | f.sym("occipital_headache"))


@rule(
    "ANTI_TNF_DEMYELINATION",
    area="neurology",
    severity=WARNING,
    title="Anti-TNF medicine with neurological symptoms",
    comment="anti-TNF therapy with neurological symptoms: consider demyelination",
    message="An anti-TNF medicine ({meds_anti_tnf}) with neurological symptoms ({neuro_symptoms}): "
    "anti-TNF therapy is associated with demyelination, a differential alongside B12 deficiency.",
    sources=("S003",),
    why="Anti-TNF agents are associated with demyelinating events (S003).",
    example={"context": {"medications": ["adalimumab"], "symptoms": ["numbness"]}},
)
def anti_tnf_demyelination(f: Facts, xp: Any) -> X:
    return f.med("anti_tnf") & f.neuro


def _myoclonus_after_start(v: Any) -> str:
    d = v.facts.raw.serial_detail
    start = d.start.isoformat() if d is not None and d.start is not None else "recently"
    days = int(v.facts.days_since_start)
    return (
        f"Myoclonus is recorded and B12 treatment started on {start}, {days} day"
        f"{'s' if days != 1 else ''} before this result: jerks may briefly intensify after "
        "treatment starts."
    )


@rule(
    "MYOCLONUS_TREATMENT_NOTE",
    area="neurology",
    severity=INFO,
    title="Myoclonus may briefly intensify after treatment starts",
    message="Myoclonus is recorded with a result consistent with deficiency: jerks may briefly "
    "intensify after treatment starts.",
    sources=("S004",),
    why="Transient worsening of myoclonus after starting B12 is described (S004).",
    after_status=True,
    uses=("myoclonus_note_within",),
    branches=(
        branch("after_treatment", lambda f, xp: f.myoclonus_after_start, _myoclonus_after_start),
        branch(
            "deficiency",
            lambda f, xp: (f.status == StatusCode.DEFICIENT) | (f.status == StatusCode.PROBABLE),
            "Myoclonus is recorded with a result consistent with deficiency: jerks may briefly "
            "intensify after treatment starts.",
        ),
    ),
    example={"panel": {"b12": "120 pg/mL"}, "context": {"symptoms": ["myoclonus"]}},
)
def myoclonus_treatment_note(f: Facts, xp: Any) -> X:
    return f.myoclonus_after_start | (
        f.sym("myoclonus")
        & ((f.status == StatusCode.DEFICIENT) | (f.status == StatusCode.PROBABLE))
    )
