"""Context and confounder rules (docs/clinical-logic.md §5 "Context and confounders").

The context facts (symptoms, nitrous oxide, IF antibody, treatment, age, diet, malabsorption,
biotin, whether the panel is usable at all) are derived here, by :func:`derive_context`.
"""

from __future__ import annotations

from typing import Any

from .._engine import (
    DIET_CONDITIONS,
    MALABSORPTION_CONDITIONS,
    NG239_OTHER_SYMPTOMS,
    Facts,
    RawInputs,
)
from ..models import Severity
from ._fields import words
from ._registry import branch, derives, message_field, order, rule
from .neurology import NEURO_URGENT_CLAUSE

X = Any
INFO, WARNING = Severity.info, Severity.warning


@derives("context")
def derive_context(f: Facts, raw: RawInputs, xp: Any) -> None:
    """Symptoms, nitrous oxide, the IF antibody (and its false-positive window), treatment, age,
    diet, malabsorption, biotin, and whether the panel can be assessed at all.

    Reads the cobalamin and metabolite areas' facts (derived before it).
    """
    p = f.profile.canonical
    f.neuro = raw.neurological
    f.any_symptom = raw.any_symptom
    f.nitrous = raw.nitrous_oxide
    f.ng239_symptom = f.neuro | f.any_sym(NG239_OTHER_SYMPTOMS)
    # a positive IF antibody within 14 days of an injection may be a false positive (Mayo): it
    # then counts for nothing but its own note
    f.if_false_positive_window = raw.if_positive & (
        raw.days_since_injection <= p["if_antibody_false_positive"]
    )
    f.if_positive = raw.if_positive & xp.not_(f.if_false_positive_window)
    f.if_negative = raw.if_negative
    # an equivocal result counts as neither, but the test was done: it is not ordered again
    f.if_equivocal = raw.if_equivocal
    f.if_measured = raw.if_positive | raw.if_negative | raw.if_equivocal
    f.treatment_none = raw.treatment == 3
    f.recent_treatment = (
        (raw.treatment == 1)
        | (raw.treatment == 2)
        | (raw.treatment_started & xp.not_(f.treatment_none))
        | (raw.days_since_injection <= p["b12_injection_recent"])
        | f.med("b12_product")
    )
    f.under_age = raw.age < p["adult_age"]
    f.malabsorption = f.any_cond(MALABSORPTION_CONDITIONS)
    f.diet = f.any_cond(DIET_CONDITIONS)
    f.biotin = f.med("biotin")
    f.usable = (
        f.b12.present | f.holotc.present | f.mma.present | f.homocysteine.present | f.if_positive
    )
    f.censored_undecided = f.b12_undecided | f.holotc_undecided | f.mma_undecided
    f.mma_child = f.under_age & f.mma_elevated


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


@message_field("treatment_recorded")
def treatment_recorded(v: Any) -> str:
    """What B12 treatment was recorded, as recorded."""
    ctx = v.context
    p = v.facts.profile.canonical
    items = []
    if ctx.b12_treatment in ("oral", "injection"):
        items.append(f"b12_treatment: {ctx.b12_treatment}")
    if ctx.b12_treatment_started is not None and ctx.b12_treatment != "none":
        items.append(f"treatment started {ctx.b12_treatment_started.isoformat()}")
    days = ctx.days_since_b12_injection
    if days is not None and days <= p["b12_injection_recent"]:
        items.append(f"an injection {days:g} days ago")
    if v.facts.med("b12_product"):
        items.append(f"a B12 product ({v['meds_b12_product']})")
    return words(items)


def _treatment_message(v: Any) -> str:
    """B12 treatment recorded: B12 results reflect treatment; a result still deficient despite treatment is reported as such."""
    text = (
        "B12 treatment is recorded ({treatment_recorded}): serum B12 and active B12 reflect "
        "the treatment, not B12 status. Monitor the response with symptoms and the full blood "
        "count, not with B12."
    ).format_map(v)
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
    title="B12 treatment recorded: B12 results reflect treatment",
    message=_treatment_message,
    sources=("MAYO", "BNF", "BNSSG"),
    why="On replacement, or within the 2-3 month maintenance interval of an injection, serum B12 "
    "and active B12 reflect treatment (Mayo; BNF); monitor response with symptoms and the blood "
    "count, not B12 (BNSSG, Coventry).",
    # the values as measured: on treatment they are not compared with a band
    evidence=(("b12", None), ("holotc", None)),
    uses=("b12_injection_recent",),
    example={"panel": {"b12": "1500 ng/L"}, "context": {"days_since_b12_injection": 30}},
)
def recent_b12_treatment(f: Facts, xp: Any) -> X:
    return f.recent_treatment


def _pregnancy_warning(f: Facts, xp: Any) -> X:
    return (
        (f.b12_deficient | f.b12_indeterminate) & xp.not_(f.holotc.present) & xp.not_(f.mma.present)
    )


@rule(
    "PREGNANCY_CAVEAT",
    area="context",
    severity=INFO,
    escalate=lambda f, xp: xp.where(_pregnancy_warning(f, xp), 2, 1),
    severity_note="warning when total B12 is deficient or indeterminate and neither holoTC nor "
    "MMA is measured",
    title="Pregnancy lowers total B12",
    message="Total B12 {b12} was measured in pregnancy: total B12 falls in pregnancy without "
    "deficiency; NICE prefers active B12 (holoTC).",
    branches=(
        branch(
            "deficient",
            lambda f, xp: f.b12_deficient,
            "Total B12 {b12} is below {b12_deficient} in pregnancy: the low value may be partly "
            "physiological (total B12 falls in pregnancy), so active B12 (holoTC) is the "
            "preferred test; do not delay treatment when there are symptoms.",
            evidence=(("b12", "b12_deficient"),),
            comment="in pregnancy total B12 falls physiologically: active B12 preferred",
        ),
        branch(
            "indeterminate",
            lambda f, xp: f.b12_indeterminate,
            "Total B12 {b12} is in the indeterminate band in pregnancy, when total B12 falls "
            "physiologically: NICE prefers active B12 (holoTC).",
            evidence=(("b12", "b12_deficient"), ("b12", "b12_indeterminate_upper")),
            comment="in pregnancy total B12 falls physiologically: active B12 preferred",
        ),
        branch(
            "other",
            lambda f, xp: True,
            "Total B12 {b12} was measured in pregnancy: total B12 falls in pregnancy without "
            "deficiency; NICE prefers active B12 (holoTC).",
            evidence=(("b12", None),),
        ),
    ),
    sources=("NG239",),
    why="NICE NG239 prefers active B12 in pregnancy because total B12 falls physiologically.",
    evidence=(("b12", None),),
    actions=(order("holotc", when=_pregnancy_warning),),
    example={"panel": {"b12": "200 ng/L"}, "context": {"pregnant": True}},
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
    message="Nitrous oxide exposure is recorded: nitrous oxide inactivates B12, so serum B12 and "
    "active B12 may be normal despite functional deficiency. Homocysteine and MMA are the more "
    "sensitive tests.",
    comment="nitrous oxide exposure: a normal B12 does not exclude deficiency",
    sources=("N2O-REVIEW", "NG239"),
    why="Nitrous oxide oxidises cobalamin; serum B12 is often normal (sensitivity 20-50 %), "
    "while MMA and homocysteine are 80-90 % sensitive.",
    evidence=(("b12", None), ("homocysteine", "homocysteine_elevated"), ("mma", "mma_elevated")),
    actions=(
        order("homocysteine", when=lambda f, xp: xp.not_(f.homocysteine.present | f.established)),
        order("mma", when=lambda f, xp: xp.not_(f.mma.present | f.established)),
    ),
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
    "replacement may not be dependable. For reference, NICE NG239 allows oral B12 of at least "
    "1 mg a day in malabsorption, and intramuscular replacement is used as the BNF describes.",
    sources=("S001", "NG239", "BNF"),
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
    message="A {diet} is recorded: a dietary cause of low B12 is possible; for reference, oral "
    "replacement usually suffices (NICE NG239).",
    sources=("S001", "NG239"),
    why="Low dietary intake is a NICE risk factor; dietary deficiency usually responds to "
    "oral B12 (S001).",
    example={"context": {"conditions": ["vegan_diet"]}},
)
def dietary_risk(f: Facts, xp: Any) -> X:
    return f.diet


def _if_critical(f: Facts, xp: Any) -> X:
    return xp.not_(f.b12_deficient) & (f.anaemia | f.macrocytosis | f.neuro)


@message_field("days_since_injection")
def days_since_injection(v: Any) -> str:
    days = v.context.days_since_b12_injection
    return f"{days:g}" if days is not None else "an unknown number of"


@message_field("clinical_features")
def clinical_features(v: Any) -> str:
    """The anaemia, macrocytosis and neurological symptoms that hold, as measured."""
    f = v.facts
    items = []
    if f.anaemia:
        items.append(f"haemoglobin {v['hb']} (anaemia)")
    if f.macrocytosis:
        items.append(f"MCV {v['mcv']} (macrocytosis)")
    if f.neuro:
        items.append(f"neurological symptoms ({v['neuro_symptoms']})")
    return words(items)


_IF_POSITIVE = (
    "Intrinsic-factor antibody is positive: this very strongly supports autoimmune gastritis "
    "(pernicious anaemia), whatever the B12 (BSH). For reference, replacement in this setting is "
    "usually lifelong (NICE NG239; BNF)."
)


@rule(
    "IF_ANTIBODY_POSITIVE",
    area="context",
    severity=WARNING,
    escalate=lambda f, xp: xp.where(
        f.if_false_positive_window, 1, xp.where(_if_critical(f, xp), 3, 2)
    ),
    severity_note="critical when B12 is not deficient and there is anaemia, macrocytosis or a "
    "neurological symptom; info within 14 days of an injection (possibly a false positive)",
    title="Intrinsic-factor antibody positive",
    message=_IF_POSITIVE,
    branches=(
        branch(
            "after_injection",
            lambda f, xp: f.if_false_positive_window,
            "Intrinsic-factor antibody is positive {days_since_injection} days after a B12 "
            "injection: possibly a false positive after a recent injection (Mayo); repeat the "
            "test later.",
            evidence=(("if_antibody", None),),
        ),
        branch(
            "clinical_features_neurological",
            lambda f, xp: _if_critical(f, xp) & f.neuro,
            _IF_POSITIVE + " With {clinical_features}, do not delay treatment (BSH).",
            evidence=(("if_antibody", None), ("hb", "hb_anaemia"), ("mcv", "mcv_macrocytosis")),
            # NEURO_URGENT fires too and makes the same point: one clause for both
            comment=NEURO_URGENT_CLAUSE,
        ),
        branch(
            "clinical_features",
            _if_critical,
            _IF_POSITIVE + " With {clinical_features}, do not delay treatment (BSH).",
            evidence=(("if_antibody", None), ("hb", "hb_anaemia"), ("mcv", "mcv_macrocytosis")),
            comment="with clinical features present, do not delay treatment",
        ),
        branch(
            "positive",
            lambda f, xp: True,
            _IF_POSITIVE + " Do not delay treatment when clinical features are present (BSH).",
            evidence=(("if_antibody", None),),
            comment="a positive intrinsic-factor antibody supports pernicious anaemia",
        ),
    ),
    sources=("BSH2014", "MAYO-IFBA", "NG239", "BNF"),
    why="IF antibody is about 50 % sensitive but highly specific for pernicious anaemia (BSH "
    "2014); a B12 injection within 2 weeks can give a false positive (Mayo).",
    evidence=(("if_antibody", None), ("hb", "hb_anaemia"), ("mcv", "mcv_macrocytosis")),
    evidence_when={"hb": "anaemia", "mcv": "macrocytosis"},
    uses=("if_antibody_false_positive",),
    example={"panel": {"if_antibody": "positive"}},
)
def if_antibody_positive(f: Facts, xp: Any) -> X:
    return f.raw.if_positive


@rule(
    "IF_ANTIBODY_NEGATIVE",
    area="context",
    severity=INFO,
    title="Intrinsic-factor antibody negative with a deficient B12",
    message="Intrinsic-factor antibody is negative: this does not exclude autoimmune gastritis "
    "(the test is about 50 % sensitive). If suspicion remains, NICE NG239 lists gastrin, "
    "parietal-cell antibody or gastroscopy.",
    sources=("BSH2014", "NG239"),
    why="A negative IF antibody misses about half of pernicious anaemia; NICE NG239 lists "
    "further tests when suspicion remains.",
    evidence=(("if_antibody", None), ("b12", "b12_deficient"), ("holotc", "holotc_deficient")),
    since="2",
    example={"panel": {"b12": "120 pg/mL", "if_antibody": "negative"}},
)
def if_antibody_negative(f: Facts, xp: Any) -> X:
    return f.if_negative & f.cobalamin_deficient


_ASSAY = (
    "some B12 assays read falsely normal in pernicious anaemia (22-35 % of cases, Carmel 2012): "
    "check MMA and homocysteine."
)


@message_field("macrocytosis_alternative")
def macrocytosis_alternative(v: Any) -> str:
    """A recorded alternative cause of the macrocytosis, when one is recorded."""
    f = v.facts
    items = []
    if f.med("macrocytosis_drug"):
        items.append(v["meds_macrocytosis_drug"])
    items.extend(
        c.replace("_", " ")
        for c in v.context.conditions
        if c in ("alcohol_excess", "liver_disease")
    )
    if not items:
        return ""
    return f" The recorded {words(items)} may also explain the macrocytosis."


@rule(
    "POSSIBLE_ASSAY_INTERFERENCE",
    area="context",
    severity=WARNING,
    title="B12 may read falsely normal",
    message="Total B12 {b12} is not in the deficient band, but " + _ASSAY,
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
            lambda f, xp: f.marked_macrocytosis,
            "Total B12 {b12} is not in the deficient band, but MCV {mcv} is above {mcv_marked}: "
            + _ASSAY
            + "{macrocytosis_alternative}",
            evidence=(("b12", "b12_deficient"), ("mcv", "mcv_marked")),
        ),
        branch(
            "macrocytic_anaemia",
            lambda f, xp: f.macrocytosis & f.anaemia,
            "Total B12 {b12} is not in the deficient band, but there is a macrocytic anaemia "
            "(MCV {mcv} above {mcv_macrocytosis}, haemoglobin {hb} below {hb_anaemia}): "
            + _ASSAY
            + "{macrocytosis_alternative}",
            evidence=(("b12", "b12_deficient"), ("mcv", "mcv_macrocytosis"), ("hb", "hb_anaemia")),
        ),
        branch(
            "glossitis",
            lambda f, xp: True,
            "Total B12 {b12} is not in the deficient band, but glossitis is recorded: " + _ASSAY,
            evidence=(("b12", "b12_deficient"),),
        ),
    ),
    comment="B12 may read falsely normal in pernicious anaemia",
    sources=("CARMEL2012", "BSH2014"),
    why="Competitive-binding B12 assays gave false-normal results in 22-35 % of untreated "
    "pernicious anaemia samples (Carmel 2012); BSH advises an IF antibody test in anaemia, "
    "neuropathy or glossitis with suspected pernicious anaemia, whatever the B12.",
    evidence=(("b12", "b12_deficient"), ("if_antibody", None), ("mcv", "mcv_marked")),
    actions=(
        # not once deficiency is established (a deficient holoTC beside a falsely normal B12):
        # confirmation is no longer needed (principle 6)
        order("mma", when=lambda f, xp: xp.not_(f.mma.present | f.established)),
        order("homocysteine", when=lambda f, xp: xp.not_(f.homocysteine.present | f.established)),
        order(
            "if_antibody",
            when=lambda f, xp: (
                xp.not_(f.if_measured)
                & xp.not_(f.cond("pernicious_anaemia") | f.cond("autoimmune_gastritis"))
            ),
        ),
    ),
    example={"panel": {"b12": "420 ng/L", "mcv": "115 fL", "hb": "98 g/L"}},
)
def possible_assay_interference(f: Facts, xp: Any) -> X:
    # not on B12 treatment: a B12 raised by replacement is not a falsely normal assay result
    return (
        f.b12.present
        & xp.not_(f.b12_deficient)
        & xp.not_(f.recent_treatment)
        & (
            f.if_positive
            | f.marked_macrocytosis
            | (f.macrocytosis & f.anaemia)
            | f.sym("glossitis")
        )
    )


@rule(
    "BIOTIN_INTERFERENCE",
    area="context",
    severity=WARNING,
    title="Biotin may interfere with the B12 immunoassay",
    message="Biotin is recorded ({meds_biotin}): high-dose biotin interferes with "
    "streptavidin-based immunoassays, in a direction that depends on the method. Ask the "
    "laboratory whether its method is affected, or repeat after stopping biotin for at least "
    "72 hours (Labcorp).{biotin_mma}",
    comment="biotin may interfere with the B12 immunoassay",
    sources=("LABCORP-BIOTIN",),
    why="Biotin in the sample competes with biotinylated reagents in streptavidin-based "
    "immunoassays (Roche ECLIA among them); Labcorp advises stopping it 72 hours before "
    "sampling. MMA is not an immunoassay.",
    evidence=(("b12", None), ("holotc", None)),
    since="2",
    example={"panel": {"b12": "500 ng/L"}, "context": {"medications": ["biotin 10 mg"]}},
)
def biotin_interference(f: Facts, xp: Any) -> X:
    return f.biotin & (f.b12.present | f.holotc.present)


@message_field("biotin_mma")
def biotin_mma(v: Any) -> str:
    f = v.facts
    if f.cobalamin_unlikely and not f.mma.present:
        return " A B12 in the normal range is not reassuring until the method is confirmed or MMA (not an immunoassay) is measured."
    return ""
