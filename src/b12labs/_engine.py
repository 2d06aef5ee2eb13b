"""The rule engine: one definition of every rule, evaluated in two shapes.

Rules are written against an *array namespace* ``xp`` and :class:`Measure` objects whose
comparisons work unchanged on Python floats (one panel, :data:`SCALAR`) and on numpy arrays
(a column of panels, :data:`VECTOR`). ``&`` and ``|`` combine both; ``xp.not_``,
``xp.where`` and ``xp.select`` are the only shape-specific operations. No rule is written
twice.

Censored values (``<50``) are intervals: a comparison is true only when it holds for the whole
interval, so a censored value decides a band only when the band contains all of it.

:func:`derive` builds a panel's measures and effective-limit tables; each area's derived
features are derived next to its rules (``derive_<area>`` in ``rules/<area>.py``, in the order
of :data:`b12labs.rules.DERIVE`), and :func:`status` reads them all.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from .profiles import Profile
from .units import ANALYTES
from .vocabulary import CONDITION_GROUPS, SYMPTOM_GROUPS

__all__ = [
    "BAND_KEYS",
    "CMP_CODES",
    "LIMIT_CHOICES",
    "NUMERIC_ANALYTES",
    "SCALAR",
    "SEX_CODES",
    "STATUS_NAMES",
    "STATUS_REASONS",
    "TREATMENT_CODES",
    "VECTOR",
    "Deriver",
    "Facts",
    "LimitChoice",
    "Measure",
    "RawInputs",
    "StatusCode",
    "applied_key",
    "choose_limit",
    "chosen_limit",
    "deficient_or_probable",
    "derive",
    "exact",
    "lab_limit",
]

#: The analytes with numeric results (every docs/clinical-logic.md §2 key but the qualitative IF antibody).
NUMERIC_ANALYTES: tuple[str, ...] = tuple(k for k, spec in ANALYTES.items() if not spec.qualitative)

# comparator codes used by both shapes
CMP_CODES = {None: 0, "<": 1, "<=": 2, ">": 3, ">=": 4}

#: The band limits of docs/clinical-logic.md §4 compared in the unit a result was reported in, by analyte.
BAND_KEYS: dict[str, tuple[str, ...]] = {
    "b12": ("b12_deficient", "b12_indeterminate_upper", "b12_high"),
    "holotc": ("holotc_deficient", "holotc_indeterminate_upper"),
}

# context codes shared by both front-ends (0: unknown/other or none)
SEX_CODES = {"female": 1, "male": 2}
TREATMENT_CODES = {"oral": 1, "injection": 2, "none": 3}


class StatusCode(IntEnum):
    """The overall status of docs/clinical-logic.md §6 as rules and the batch scorer compare it.

    An ``IntEnum`` so that it works unchanged in both shapes (``f.status == StatusCode.UNLIKELY``
    on one panel and on a numpy array of codes); the public :class:`~b12labs.models.Status` is
    the same list by name. The order is the order of §6 (first match wins).
    """

    NOT_ASSESSED = 0
    DEFICIENT = 1
    UNINTERPRETABLE = 2
    PROBABLE = 3
    INDETERMINATE = 4
    UNLIKELY = 5


#: Status names by code (the values of :class:`~b12labs.models.Status`).
STATUS_NAMES: tuple[str, ...] = tuple(s.name.lower() for s in StatusCode)

#: Why the status is what it is, where the status alone does not say (docs/clinical-logic.md §6):
#: code -> name; 0 is "no particular reason". The printed comment's first sentence reads it.
STATUS_REASONS: tuple[str, ...] = (
    "",
    "b12",
    "holotc",
    "mma",
    "mma_renal",
    "if_antibody",
    "homocysteine_nitrous",
    "mma_child",
)

X = Any  # a float/bool (scalar shape) or a numpy array (vector shape)


class _Scalar:
    """Array namespace for one panel: plain Python, no numpy (about 0.1 µs an operation)."""

    name = "scalar"
    nan = math.nan
    #: ``not x``; the C function, not a Python one: rules call it some 50 times a panel
    not_ = staticmethod(operator.not_)

    @staticmethod
    def where(cond: X, a: X, b: X) -> X:
        return a if cond else b

    @staticmethod
    def select(conds: Sequence[X], choices: Sequence[X], default: X) -> X:
        for c, v in zip(conds, choices, strict=True):
            if c:
                return v
        return default

    @staticmethod
    def isnan(x: X) -> X:
        return x != x

    @staticmethod
    def any_(*xs: X) -> X:
        return any(xs)

    @staticmethod
    def maximum(a: X, b: X) -> X:
        return a if a >= b else b


class _Vector:
    """Array namespace for a column of panels (numpy)."""

    name = "vector"
    nan = math.nan

    @staticmethod
    def not_(x: X) -> X:
        return np.logical_not(x)

    @staticmethod
    def where(cond: X, a: X, b: X) -> X:
        return np.where(cond, a, b)

    @staticmethod
    def select(conds: Sequence[X], choices: Sequence[X], default: X) -> X:
        return np.select([np.asarray(c, dtype=bool) for c in conds], list(choices), default)

    @staticmethod
    def isnan(x: X) -> X:
        return np.isnan(x)

    @staticmethod
    def any_(*xs: X) -> X:
        out: X = False
        for x in xs:
            out = out | x
        return out

    @staticmethod
    def maximum(a: X, b: X) -> X:
        return np.maximum(a, b)


SCALAR = _Scalar()
VECTOR = _Vector()


class Measure:
    """A result as an interval ``[lo, hi]`` in canonical units (exact values: lo == hi).

    ``present`` is false for a missing or implausible value (all comparisons are then false,
    since NaN compares false). Comparisons are *definite*: true only for the whole interval.
    """

    __slots__ = ("censored", "hi", "hi_open", "lo", "lo_open", "present", "value")

    def __init__(self, value: X, cmp: X, xp: Any) -> None:
        self.value = value
        if xp is SCALAR:
            self.present = value == value
            if cmp == 0:
                self.lo = self.hi = value
                self.lo_open = self.hi_open = self.censored = False
            else:
                below = cmp <= 2
                self.lo = 0.0 if below else value
                self.hi = value if below else math.inf
                self.lo_open = cmp == 3
                self.hi_open = cmp == 1
                self.censored = self.present
        else:
            self.present = ~np.isnan(value)
            below = (cmp == 1) | (cmp == 2)
            above = (cmp == 3) | (cmp == 4)
            self.lo = np.where(below, 0.0, value)
            self.hi = np.where(above, np.inf, value)
            self.lo_open = cmp == 3
            self.hi_open = cmp == 1
            self.censored = (cmp != 0) & self.present

    def gt(self, t: X) -> X:
        """Definitely greater than ``t``."""
        return (self.lo > t) | ((self.lo == t) & self.lo_open)

    def ge(self, t: X) -> X:
        """Definitely at least ``t``."""
        return self.lo >= t

    def lt(self, t: X) -> X:
        """Definitely less than ``t``."""
        return (self.hi < t) | ((self.hi == t) & self.hi_open)

    def le(self, t: X) -> X:
        """Definitely at most ``t``."""
        return self.hi <= t


class _Exact(Measure):
    """An uncensored, present result in the scalar shape: comparisons are plain comparisons
    (the general forms reduce to these when ``lo == hi == value`` and nothing is open)."""

    __slots__ = ()

    def __init__(self, value: float) -> None:
        self.value = self.lo = self.hi = value
        self.present = True
        self.lo_open = self.hi_open = self.censored = False

    def gt(self, t: X) -> X:
        return self.value > t

    def ge(self, t: X) -> X:
        return self.value >= t

    def lt(self, t: X) -> X:
        return self.value < t

    def le(self, t: X) -> X:
        return self.value <= t


class _Absent(Measure):
    """A missing result in the scalar shape: every comparison is false, as for NaN."""

    __slots__ = ()

    def gt(self, t: X) -> X:
        return False

    def ge(self, t: X) -> X:
        return False

    def lt(self, t: X) -> X:
        return False

    def le(self, t: X) -> X:
        return False


_MISSING = _Absent(math.nan, 0, SCALAR)
# every numeric measure missing: the starting point of a scalar panel's facts
_ALL_MISSING = dict.fromkeys(NUMERIC_ANALYTES, _MISSING)


@dataclass
class RawInputs:
    """Normalised inputs of one panel (floats/bools) or of a column of panels (arrays).

    Missing entries may be left out of the dicts: a value defaults to NaN, a flag to False.
    ``band`` holds the band thresholds of docs/clinical-logic.md §4 for each result's reported unit.
    """

    values: Mapping[str, X]
    cmp: Mapping[str, X] = field(default_factory=dict)
    ref_low: Mapping[str, X] = field(default_factory=dict)
    ref_high: Mapping[str, X] = field(default_factory=dict)
    band: Mapping[str, X] = field(default_factory=dict)
    implausible: Mapping[str, X] = field(default_factory=dict)
    if_positive: X = False
    if_negative: X = False
    #: an equivocal IF antibody: measured, but neither positive nor negative (§2)
    if_equivocal: X = False
    tsat_derived: X = False
    age: X = math.nan
    sex: X = 0  # 0 unknown/other, 1 female, 2 male
    pregnant: X = False
    nitrous_oxide: X = False
    treatment: X = 0  # 0 unknown, 1 oral, 2 injection, 3 none recorded
    days_since_injection: X = math.nan
    #: b12_treatment_started was given (the date itself is for results over time)
    treatment_started: X = False
    gestational_weeks: X = math.nan
    breastfeeding: X = False
    conditions: Mapping[str, X] = field(default_factory=dict)
    symptoms: Mapping[str, X] = field(default_factory=dict)
    medications: Mapping[str, X] = field(default_factory=dict)
    neurological: X = False
    any_symptom: X = False
    #: results over time (docs/clinical-logic.md §8, b12labs._serial): day numbers and
    #: earlier values by name (``prev_b12``, ``start``, ``bad_day``...); empty without history
    serial: Mapping[str, X] = field(default_factory=dict)
    #: what the serial messages show (scalar shape only): a b12labs._serial.SerialDetail
    serial_detail: Any = None


_NAN = math.nan

# lab reference intervals replace these profile limits (docs/clinical-logic.md §4)
REF_HIGH_REPLACES = {
    "mma": "mma_elevated",
    "homocysteine": "homocysteine_elevated",
    "mcv": "mcv_macrocytosis",
    "rdw": "rdw_high",
    "crp": "crp_inflammation",
    "b12": "b12_high",
}
REF_LOW_REPLACES = {"folate": "folate_low", "ferritin": "ferritin_low", "hb": "hb_anaemia"}

#: Condition groups of the vocabulary data (docs/clinical-logic.md §5 names their members).
INFLAMMATORY_CONDITIONS = CONDITION_GROUPS["inflammatory"]
MALABSORPTION_CONDITIONS = CONDITION_GROUPS["malabsorption"]
DIET_CONDITIONS = CONDITION_GROUPS["diet"]
NG239_OTHER_SYMPTOMS = SYMPTOM_GROUPS["ng239_other"]


@dataclass(frozen=True, slots=True)
class LimitChoice:
    """A limit whose profile key depends on the patient (age, sex, pregnancy).

    ``which(raw, profile_values, xp)`` gives, in either shape, the index into ``keys`` of the
    threshold that applies; ``also_uses`` are further profile keys the choice reads. This is
    the one place that decides which limit applies: :func:`derive` compares with it, the
    evidence names it, and the docs list every key a limit may stand for.
    """

    keys: tuple[str, ...]
    which: Callable[[RawInputs, Mapping[str, float], Any], X]
    also_uses: tuple[str, ...] = ()


def _pregnant_which(raw: RawInputs, p: Mapping[str, float], xp: Any) -> X:
    return xp.where(raw.pregnant, 1, 0)


def _mma_which(raw: RawInputs, p: Mapping[str, float], xp: Any) -> X:
    age = raw.age
    return xp.where(
        age < p["mma_child_age"],
        2,
        xp.where(
            age < p["mma_adolescent_age"],
            3,
            xp.where(age < p["mma_adult_age"], 4, xp.where(age >= p["mma_older_age"], 1, 0)),
        ),
    )


def second_trimester(raw: RawInputs, p: Mapping[str, float]) -> X:
    """Pregnant with ``gestational_weeks`` in the second trimester (14-27 weeks)."""
    weeks = raw.gestational_weeks
    return (
        raw.pregnant & (weeks >= p["second_trimester_from"]) & (weeks <= p["second_trimester_to"])
    )


def _hb_which(raw: RawInputs, p: Mapping[str, float], xp: Any) -> X:
    return xp.where(
        second_trimester(raw, p),
        3,
        xp.where(raw.pregnant, 2, xp.where(raw.sex == 1, 1, 0)),
    )


LIMIT_CHOICES: dict[str, LimitChoice] = {
    # children's age-specific limits; the under-65 limit when age is unknown (NaN compares false)
    "mma_elevated": LimitChoice(
        (
            "mma_elevated",
            "mma_elevated_older",
            "mma_elevated_infant",
            "mma_elevated_child",
            "mma_elevated_adolescent",
        ),
        _mma_which,
        also_uses=("mma_older_age", "mma_child_age", "mma_adolescent_age", "mma_adult_age"),
    ),
    # pregnancy first (its second trimester has its own limit); male when sex is unknown or
    # other: the higher, more sensitive limit
    "hb_anaemia": LimitChoice(
        (
            "hb_anaemia_male",
            "hb_anaemia_female",
            "hb_anaemia_pregnant",
            "hb_anaemia_pregnant_second_trimester",
        ),
        _hb_which,
        also_uses=("second_trimester_from", "second_trimester_to"),
    ),
    "hb_moderate": LimitChoice(("hb_moderate", "hb_moderate_pregnant"), _pregnant_which),
    "hb_severe": LimitChoice(("hb_severe", "hb_severe_pregnant"), _pregnant_which),
}


def choose_limit(name: str, raw: RawInputs, p: Mapping[str, float], xp: Any) -> tuple[X, X]:
    """(index of the key that applies, its value) for limit ``name``, in either shape."""
    choice = LIMIT_CHOICES.get(name)
    if choice is None:
        return 0, p[name]
    which = choice.which(raw, p, xp)
    values = [p[k] for k in choice.keys]
    if xp is SCALAR:
        return which, values[which]
    return which, np.choose(np.asarray(which, dtype=np.int64), values)


def applied_key(f: Facts, name: str) -> str:
    """The profile key of limit ``name`` that applied to this panel (scalar shape)."""
    choice = LIMIT_CHOICES.get(name)
    if choice is None:
        return name
    return choice.keys[int(f.limit_which.get(name, 0))]


class Facts:
    """Everything rules read: measures, effective thresholds and derived features.

    Built once per panel (or per column of panels) by :func:`derive`; the derived features
    are named after what they mean (``b12_deficient``, ``mma_elevated``, ``renal``) and are
    shared by the rules and the status. Each area's features are derived next to that area's
    rules, by ``derive_<area>`` in ``rules/<area>.py`` (cobalamin: the B12 and holoTC bands;
    metabolites: MMA, homocysteine, eGFR and renal impairment; folate; haematology: MCV, RDW,
    Hb, reticulocytes; iron: TSAT derivation, ferritin, inflammation; context: symptoms,
    treatment, IF antibody, age, diet, malabsorption, usable; quality: suspect values).
    """

    def __init__(self, raw: RawInputs, profile: Profile, xp: Any) -> None:
        self.raw = raw
        self.profile = profile
        self.xp = xp
        self.fired: dict[str, X] = {}
        self.status: X = StatusCode.NOT_ASSESSED

    def cond(self, name: str) -> X:
        return self.raw.conditions.get(name, False)

    def sym(self, name: str) -> X:
        return self.raw.symptoms.get(name, False)

    def med(self, cls: str) -> X:
        return self.raw.medications.get(cls, False)

    def any_cond(self, names: Sequence[str]) -> X:
        conditions = self.raw.conditions
        out: X = False
        if conditions:  # none recorded: false in either shape
            for n in names:
                out = out | conditions.get(n, False)
        return out

    def any_sym(self, names: Sequence[str]) -> X:
        symptoms = self.raw.symptoms
        out: X = False
        if symptoms:
            for n in names:
                out = out | symptoms.get(n, False)
        return out

    # measures and effective-limit tables, populated by derive()
    b12: Measure
    holotc: Measure
    mma: Measure
    homocysteine: Measure
    mcv: Measure
    hb: Measure
    rdw: Measure
    ferritin: Measure
    tsat: Measure
    iron: Measure
    tibc: Measure
    folate: Measure
    rbc_folate: Measure
    creatinine: Measure
    egfr: Measure
    crp: Measure
    retic: Measure
    limit: dict[str, X]
    limit_from_lab: dict[str, X]
    #: index into LIMIT_CHOICES[name].keys of the limit that applied, for chosen limits
    limit_which: dict[str, X]

    # derived features (bools/floats, or arrays of them), set by the area derivers
    anaemia: X
    anaemia_moderate: X
    anaemia_severe: X
    any_censored: X
    any_symptom: X
    any_suspect: X
    b12_deficient: X
    b12_in_indeterminate_or_low: X
    biotin: X
    cobalamin_deficient: X
    discordant: X
    egfr_calculated: X
    established: X
    if_equivocal: X
    if_false_positive_window: X
    if_negative: X
    iron_deficiency_possible: X
    iron_tsat_wanted: X
    kidney_failure: X
    mma_child: X
    ng239_symptom: X
    retic_high: X
    status_reason: X
    suspect: dict[str, X]
    treatment_none: X
    tsat_low_inflammation: X
    b12_deficient_or_indeterminate: X
    b12_high: X
    b12_indeterminate: X
    b12_undecided: X
    b12_unlikely: X
    censored_undecided: X
    cobalamin_low: X
    cobalamin_unlikely: X
    creatinine_high: X
    crp_high: X
    diet: X
    folate_borderline: X
    folate_low: X
    hcy_elevated: X
    holotc_deficient: X
    holotc_deficient_or_indeterminate: X
    holotc_indeterminate: X
    holotc_undecided: X
    holotc_unlikely: X
    if_measured: X
    if_positive: X
    inflammation: X
    iron_deficiency: X
    iron_deficiency_inflammation: X
    iron_deficiency_plain: X
    macrocytosis: X
    malabsorption: X
    marked_macrocytosis: X
    mma_elevated: X
    mma_marked: X
    mma_not_elevated: X
    mma_renal_caveat: X
    mma_undecided: X
    neuro: X
    nitrous: X
    rbc_folate_low: X
    rdw_high: X
    recent_treatment: X
    renal: X
    tsat_derived: X
    under_age: X
    usable: X

    # results over time (docs/clinical-logic.md §8), set by rules.serial.derive_serial
    days_since_start: X
    treatment_started_known: X
    on_replacement: X
    treated: X
    retest: dict[str, X]
    retest_any: X
    b12_fall: X
    b12_rise: X
    base_anaemia: X
    base_macrocytosis: X
    base_mma_elevated: X
    hb_responded: X
    mcv_responded: X
    haem_response: X
    no_response_blood: X
    no_response_mma: X
    review_due: X
    myoclonus_after_start: X
    earlier_bad: X
    earlier_neuro: X
    conflict: X
    conflict_current: X


#: An area's share of the facts: ``deriver(f, raw, xp)`` sets that area's derived features on
#: ``f`` (each next to its rules, ``rules/<area>.py``; :data:`b12labs.rules.DERIVE` is the order).
Deriver = Callable[["Facts", RawInputs, Any], None]


def exact(value: float) -> Measure:
    """An uncensored, present result in the scalar shape (a value the engine computed)."""
    return _Exact(value)


def lab_limit(f: Facts, xp: Any, name: str, base: X, lab: X) -> X:
    """A profile limit replaced, row by row, by the lab's own interval where one was given;
    recorded as the effective limit ``name``."""
    has_lab = lab == lab
    f.limit_from_lab[name] = has_lab
    value = (lab if has_lab else base) if xp is SCALAR else xp.where(has_lab, lab, base)
    f.limit[name] = value
    return value


def chosen_limit(f: Facts, name: str) -> X:
    """The profile value of chosen limit ``name`` for each panel, recording which key applied."""
    xp = f.xp
    choice = LIMIT_CHOICES.get(name)
    if choice is None or xp is not SCALAR:
        which, value = choose_limit(name, f.raw, f.profile.canonical, xp)
        f.limit_which[name] = which
        return value
    # one panel: look up only the key that applies (choose_limit builds every key's value)
    p = f.profile.canonical
    which = choice.which(f.raw, p, xp)
    f.limit_which[name] = which
    return p[choice.keys[which]]


def derive(raw: RawInputs, profile: Profile, xp: Any, areas: Sequence[Deriver]) -> Facts:
    """Build the :class:`Facts` for a panel (``SCALAR``) or a column of panels (``VECTOR``).

    Here only the measures and the (empty) effective-limit tables; each area's derived features
    are set by its deriver in ``areas``, called in that order (:data:`b12labs.rules.DERIVE`:
    an area may read the features of the areas before it).
    """
    f = Facts(raw, profile, xp)
    values, cmp = raw.values, raw.cmp
    any_censored: X = False
    if xp is SCALAR:
        f.__dict__.update(_ALL_MISSING)  # immutable in practice: rules only read measures
        keys: Sequence[str] = tuple(values)  # a missing measure is never censored
    else:
        keys = NUMERIC_ANALYTES
    for key in keys:
        code = cmp.get(key, 0)
        if xp is SCALAR and code == 0:
            m: Measure = _Exact(values[key])
        else:
            m = Measure(values.get(key, _NAN), code, xp)
        setattr(f, key, m)
        any_censored = any_censored | m.censored
    f.any_censored = any_censored
    f.limit = {}
    f.limit_from_lab = {}
    f.limit_which = {}
    for area in areas:
        area(f, raw, xp)
    return f


def _probable(f: Facts) -> X:
    """The "probable" evidence of docs/clinical-logic.md §6 step 4 (MMA, IF antibody, N2O)."""
    no_mma = f.xp.not_(f.mma.present)
    probable_mma = f.mma_elevated & f.xp.not_(f.renal)
    probable_mma_renal = f.mma_marked & f.renal & f.xp.not_(f.kidney_failure)
    probable_hcy = f.hcy_elevated & f.nitrous & no_mma
    return probable_mma | probable_mma_renal | f.if_positive | probable_hcy


def deficient_or_probable(f: Facts) -> X:
    """1 where the status of §6 would be ``deficient``, 2 where ``probable``, else 0.

    Reads the derived facts only (no rule), so an earlier result set can be judged without
    evaluating the catalogue (docs/clinical-logic.md §8 ``PREVIOUS_DEFICIENCY``).
    """
    xp = f.xp
    deficient = f.usable & f.cobalamin_deficient & xp.not_(f.discordant)
    probable = f.usable & xp.not_(f.recent_treatment) & _probable(f)
    return xp.select([deficient, probable], [1, 2], 0)


def status(f: Facts) -> X:
    """Overall status of docs/clinical-logic.md §6 (first match wins), as a status code.

    Also sets ``f.status_reason`` (an index into :data:`STATUS_REASONS`) and ``f.established``
    (a deficiency already established, so further confirmation is not suggested).
    """
    xp = f.xp
    fired = f.fired
    no_mma = xp.not_(f.mma.present)
    # a result that would otherwise be `unlikely` but cannot be trusted is not reassuring
    untrusted_normal = (
        f.nitrous
        | fired["POSSIBLE_ASSAY_INTERFERENCE"]
        | (fired["BIOTIN_INTERFERENCE"] & no_mma)
        | fired["NEURO_SYMPTOMS_NORMAL_B12"]
        | (fired["IRON_DEFICIENCY_MAY_MASK_B12"] & no_mma)
        | (fired["METABOLIC_EVIDENCE_NORMAL_B12"] & xp.not_(f.mma_elevated))
        | fired["AGE_OUT_OF_SCOPE"]
        # a deficient B12 overruled by a normal holoTC (or the reverse) beside the features of
        # POSSIBLE_ASSAY_INTERFERENCE: no more reassuring than the same picture with a higher,
        # indeterminate B12 (monotonic in B12; docs/clinical-logic.md §9)
        | (
            f.discordant
            & (
                f.if_positive
                | f.marked_macrocytosis
                | (f.macrocytosis & f.anaemia)
                | f.sym("glossitis")
            )
        )
        # results over time (§8): an earlier deficiency, or a result voided by a conflict
        | fired["PREVIOUS_DEFICIENCY"]
        | f.conflict_current
    )
    deficient = f.cobalamin_deficient & xp.not_(f.discordant)
    probable_mma = f.mma_elevated & xp.not_(f.renal)
    probable_mma_renal = f.mma_marked & f.renal & xp.not_(f.kidney_failure)
    indeterminate = (
        ((f.b12_indeterminate | f.holotc_indeterminate | f.discordant) & no_mma)
        | f.mma_renal_caveat
        # a raised homocysteine with MMA unmeasured stays unresolved even when low folate
        # could explain it (combined deficiency is common)
        | (f.hcy_elevated & no_mma)
        | f.censored_undecided
        | untrusted_normal
    )
    code = xp.select(
        [
            xp.not_(f.usable),
            deficient,
            f.recent_treatment,
            _probable(f),
            indeterminate,
        ],
        [
            StatusCode.NOT_ASSESSED,
            StatusCode.DEFICIENT,
            StatusCode.UNINTERPRETABLE,
            StatusCode.PROBABLE,
            StatusCode.INDETERMINATE,
        ],
        StatusCode.UNLIKELY,
    )
    is_deficient = code == StatusCode.DEFICIENT
    is_probable = code == StatusCode.PROBABLE
    f.status_reason = xp.select(
        [
            is_deficient & f.b12_deficient,
            is_deficient,
            is_probable & f.mma_child,
            is_probable & probable_mma,
            is_probable & probable_mma_renal,
            is_probable & f.if_positive,
            is_probable,
        ],
        [1, 2, 7, 3, 4, 5, 6],
        0,
    )
    # a deficient total B12 alone in pregnancy may be partly physiological: not "established"
    pregnancy_only = f.raw.pregnant & xp.not_(f.holotc_deficient)
    f.established = is_deficient & xp.not_(pregnancy_only)
    return code
