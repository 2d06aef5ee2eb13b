"""The rule catalogue: registration, metadata and the sources rules cite; the area derivers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._engine import LIMIT_CHOICES, Deriver
from ..models import Severity

__all__ = [
    "CATALOGUE",
    "DERIVERS",
    "FIELDS",
    "RETIRED",
    "SOURCES",
    "TESTS",
    "ActionSpec",
    "Branch",
    "Rule",
    "all_of",
    "avoid",
    "branch",
    "derives",
    "message_field",
    "missing",
    "order",
    "review",
    "rule",
]

X = Any
Predicate = Callable[[Any, Any], X]

#: Tests that ``order_test`` actions name: analyte key -> (display name, LOINC).
TESTS: dict[str, tuple[str, str]] = {
    "mma": ("MMA", "13964-2"),
    "homocysteine": ("homocysteine", "13965-9"),
    "b12": ("B12", "2132-9"),
    "folate": ("folate", "2284-8"),
    "if_antibody": ("intrinsic-factor antibody", "31444-3"),
    "holotc": ("holoTC", "72160-5"),
    "iron": ("iron", "2498-4"),
    "tibc": ("TIBC", "2500-7"),
    # no LOINC verified for coeliac serology (docs/clinical-logic.md §5): ordered by name only
    "coeliac": ("coeliac serology (tTG-IgA)", ""),
}

#: tests that are analytes of the panel: never ordered when their result is in it
ANALYTE_TESTS = frozenset(TESTS) - {"coeliac"}

#: Citations rules refer to by id (documents S000-S004 are ../shared/domain/sources/).
SOURCES: dict[str, str] = {
    "NG239": "NICE NG239, Vitamin B12 deficiency in over 16s: diagnosis and management (2024); BMJ 2024;385:q1019",
    "BSH2014": "Devalia V, Hamilton MS, Molloy AM. Guidelines for the diagnosis and treatment of cobalamin and folate disorders. Br J Haematol 2014;166:496-513",
    "BNF": "BNF hydroxocobalamin monograph (as reproduced): with neurological involvement 1 mg IM on alternate days until no further improvement, then 1 mg every 2 months",
    "MAYO": "Mayo Clinic Laboratories test catalogue (B12, MMAS/MMAP, IFBA, ACASM cascade)",
    "LABCORP": "Labcorp test 141503, Vitamin B12 deficiency cascade",
    "DANISH-MMA": "Danish age-specific MMA reference intervals (Aarhus)",
    "NORWAY-LAB": "Unilabs Norway laboratory handbook: MMA and homocysteine in B12 vs folate deficiency",
    "HARRINGTON2017": "Harrington DJ. Laboratory assessment of vitamin B12 status. J Clin Pathol 2017;70:168-173",
    "REFSUM2004": "Refsum H et al. Facts and recommendations about total homocysteine determinations. Clin Chem 2004;50:3-32",
    "GREEN2011": "Green R. Indicators for assessing folate and vitamin B12 status. Am J Clin Nutr 2011;94:666S-672S",
    "WHO-FOLATE": "WHO VMNIS 2012 / WHO 2015 serum and red-cell folate thresholds",
    "WHO-HB": "WHO 2011 haemoglobin concentrations for the diagnosis of anaemia and assessment of severity (WHO/NMH/NHD/MNM/11.1)",
    "KAFERLE2009": "Kaferle J, Strzoda CE. Evaluation of macrocytosis. Am Fam Physician 2009;79:203-208",
    "SAVAGE2000": "Savage DG et al. Etiology and diagnostic evaluation of macrocytosis. Am J Med Sci 2000;319:343-352",
    "CAPPELLINI2017": "Cappellini MD et al. Iron deficiency across chronic inflammatory conditions. Am J Hematol 2017;92:1068-1078",
    "LINDENBAUM1988": "Lindenbaum J et al. Neuropsychiatric disorders caused by cobalamin deficiency in the absence of anemia or macrocytosis. N Engl J Med 1988;318:1720-1728",
    "N2O-REVIEW": "Practical Neurology review of nitrous-oxide-induced B12 deficiency (MMA and homocysteine sensitivity 80-90%)",
    "MHRA2022": "MHRA Drug Safety Update June 2022: metformin and reduced vitamin B12 levels",
    "CARMEL2012": "Carmel R, Agrawal YP. Failures of cobalamin assays in pernicious anemia. N Engl J Med 2012;367:385-386",
    "ANDRES2013": "Andrès E et al. The pathophysiology of elevated vitamin B12 in clinical practice. QJM 2013;106:505-515",
    "FOLIC-WARNING": "BNF / NHS Highland formulary: never give folic acid alone in B12-deficient states (risk of subacute combined degeneration of the cord)",
    "ROHR2023": "Rohr M et al. Inflammatory diseases and iron deficiency: TSAT < 20 % with ferritin < 100-300 ug/L in chronic disease. Eur J Med Res 2023",
    "WHO-HB-2024": "WHO 2024 guideline on haemoglobin cut-offs to define anaemia (second trimester of pregnancy < 105 g/L)",
    "INKER2021": "Inker LA et al. New creatinine- and cystatin C-based equations to estimate GFR without race (CKD-EPI 2021). N Engl J Med 2021;385:1737-1749",
    "KDIGO2012": "KDIGO 2012 clinical practice guideline for CKD: eGFR < 15 mL/min/1.73m2 is kidney failure",
    "BNSSG": "BNSSG / Coventry primary-care B12 guidance: do not monitor replacement with serum B12; use symptoms and the full blood count",
    "MAYO-IFBA": "Mayo Clinic Laboratories IFBA: a B12 injection within 2 weeks can give a false-positive intrinsic-factor antibody result",
    "LABCORP-BIOTIN": "Labcorp biotin interference notice: stop high-dose biotin at least 72 hours before streptavidin-based immunoassays",
    "SAVAGE1994": "Savage DG et al. Sensitivity of serum methylmalonic acid and total homocysteine determinations for diagnosing cobalamin and folate deficiencies. Am J Med 1994;96:239-246",
    "COKLUK2021": "Cokluk E et al. Biological variation and reference change value of vitamin B12. Clin Lab 2021 (doi 10.7754/Clin.Lab.2021.210102): RCV 23.4 %",
    "LEEDS-RETEST": "Leeds Teaching Hospitals minimum retest intervals: B12 > 56 days, folate > 21 days, ferritin > 20 days",
    "IOM-DRI": "Institute of Medicine Dietary Reference Intakes (1998), vitamin B12: reticulocyte response within 48 h, peak at 5-8 days after treatment",
    "B12LABS-S8": "b12labs clinical specification §8 (docs/clinical-logic.md): two results of one analyte at one collection time are a conflict and neither is used",
    "S000": "S000: The role of vitamin B12 in nerve function (source document)",
    "S001": "S001: The connection between vitamin B12 and back pain (source document)",
    "S002": "S002: Can low B12 cause joint stiffness? (source document)",
    "S003": "S003: Neck pain and arm tingling, rheumatoid arthritis and B12 deficiency (source document)",
    "S004": "S004: The surprising neurological symptoms of B12 deficiency (source document)",
}


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action a rule recommends, with the condition (in both shapes) under which it applies."""

    kind: str
    test: str
    loinc: str | None = None
    when: Predicate | None = None

    def label(self) -> str:
        """Batch form: ``order 13964-2 MMA``, ``review MRI cervical spine``."""
        if self.kind == "order_test":
            return f"order {self.loinc} {self.test}" if self.loinc else f"order {self.test}"
        return f"{self.kind} {self.test}"

    def phrase(self) -> str:
        """Comment form: ``MMA (LOINC 13964-2)``, ``avoid folic acid alone``, ``MRI ...``."""
        if self.kind == "order_test":
            return f"{self.test} (LOINC {self.loinc})" if self.loinc else self.test
        if self.kind == "avoid":
            return f"avoid {self.test}"
        return self.test


def order(test: str, when: Predicate | None = None) -> ActionSpec:
    """Order a test (a key of :data:`TESTS`), only ever when its result is missing.

    ``when`` narrows that further; it can never order a test whose result is in the panel
    (docs/clinical-logic.md §1 principle 6: advice is current).
    """
    name, loinc = TESTS[test]
    if test == "if_antibody":

        def absent(f: Any, xp: Any) -> X:
            return xp.not_(f.if_measured)
    elif test in ANALYTE_TESTS:

        def absent(f: Any, xp: Any) -> X:
            return xp.not_(getattr(f, test).present)
    else:  # not an analyte of the panel (coeliac serology): only ``when`` decides
        return ActionSpec("order_test", name, loinc or None, when)
    if when is None:
        return ActionSpec("order_test", name, loinc or None, absent)
    given = when

    def both(f: Any, xp: Any) -> X:
        return absent(f, xp) & given(f, xp)

    return ActionSpec("order_test", name, loinc or None, both)


def missing(test: str) -> Predicate:
    """``test`` (an analyte key) has no usable result."""
    if test == "if_antibody":
        return lambda f, xp: xp.not_(f.if_measured)
    return lambda f, xp: xp.not_(getattr(f, test).present)


def all_of(*preds: Predicate) -> Predicate:
    """Every predicate holds (the conditions of an action, in either shape)."""

    def both(f: Any, xp: Any) -> X:
        out: X = True
        for p in preds:
            out = out & p(f, xp)
        return out

    return both


def review(text: str, when: Predicate | None = None) -> ActionSpec:
    return ActionSpec("review", text, None, when)


def avoid(text: str, when: Predicate | None = None) -> ActionSpec:
    return ActionSpec("avoid", text, None, when)


@dataclass(frozen=True, slots=True)
class Branch:
    """One way a rule can fire, with the message (and evidence) that says what held.

    A rule with branches fires when its predicate does; the *first* branch whose ``when`` holds
    for the panel is the one reported (``Finding.branch``), and only its message and evidence
    are shown, so a message never lists the rule's other branches (docs/clinical-logic.md §1).
    ``evidence`` left as ``None`` uses the rule's own pairs.
    """

    name: str
    when: Predicate
    message: str | Callable[[Any], str]
    evidence: tuple[tuple[str, str | None], ...] | None = None
    #: the clause for the printed comment when this branch fired (overrides the rule's)
    comment: str = ""


def branch(
    name: str,
    when: Predicate,
    message: str | Callable[[Any], str],
    evidence: Sequence[tuple[str, str | None]] | None = None,
    comment: str = "",
) -> Branch:
    return Branch(name, when, message, tuple(evidence) if evidence is not None else None, comment)


#: Clinical-content version a rule appears in when its definition does not say otherwise.
FIRST_VERSION = "1"

#: Codes that were in an earlier catalogue and were retired: code -> (version retired, why).
#: A retired code is never reused for another meaning (registration refuses it).
RETIRED: dict[str, tuple[str, str]] = {}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of docs/clinical-logic.md §5: metadata and the predicate that evaluates it in both shapes.

    ``when(f, xp)`` returns a bool (one panel) or a bool array (a column); ``severity`` is a
    :class:`Severity` or a function returning a severity rank (1 info, 2 warning, 3 critical)
    in the same shape. ``evidence`` names ``(analyte, limit)`` pairs shown with the finding;
    ``message`` is a template formatted with the values and limits of the panel.
    """

    code: str
    area: str
    severity: Severity
    title: str
    message: str | Callable[[Any], str]
    when: Predicate
    sources: tuple[str, ...]
    why: str
    evidence: tuple[tuple[str, str | None], ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    escalate: Callable[[Any, Any], X] | None = None
    severity_note: str = ""
    after_status: bool = False
    example: dict[str, Any] = field(default_factory=dict)
    uses: tuple[str, ...] = ()
    branches: tuple[Branch, ...] = ()
    since: str = FIRST_VERSION
    #: evidence listed from the panel instead of from ``evidence``: ``"censored"`` (every
    #: censored result) or ``"implausible"`` (every result outside its plausible range)
    evidence_of: str | None = None
    #: analyte -> fact that must hold for that analyte's evidence to be shown (a high RDW is
    #: supporting evidence; a normal one is not)
    evidence_when: tuple[tuple[str, str], ...] = ()
    #: the short clause the printed comment gives for this finding (docs/clinical-logic.md
    #: §6.1), e.g. "a positive intrinsic-factor antibody strongly supports pernicious
    #: anaemia"; a fired branch's own ``comment`` overrides it (see :meth:`clause`)
    comment: str = ""

    def clause(self, branch: str | None = None) -> str:
        """The comment clause of this rule (of ``branch`` when it has its own).

        A rule without a clause yet falls back to its title, its first letter lower-cased
        unless the first word is an abbreviation ("MMA", "B12").
        """
        if branch is not None:
            for b in self.branches:
                if b.name == branch and b.comment:
                    return b.comment
        if self.comment:
            return self.comment
        title = self.title
        first = title.split(" ", 1)[0]
        if any(c.isupper() or c.isdigit() for c in first[1:]):
            return title
        return title[:1].lower() + title[1:]

    def thresholds(self) -> tuple[str, ...]:
        """Profile threshold keys this rule compares with (for docs and audits)."""
        keys: list[str] = []
        pairs = list(self.evidence)
        for b in self.branches:
            pairs.extend(b.evidence or ())
        for _, limit in pairs:
            if limit is not None:
                keys.extend(LIMIT_KEYS.get(limit, (limit,)))
        keys.extend(self.uses)
        return tuple(dict.fromkeys(keys))

    def citations(self) -> tuple[str, ...]:
        return _citations(self.sources)


#: Effective limits that stand for several profile keys (one table: the engine's choices).
LIMIT_KEYS: dict[str, tuple[str, ...]] = {
    name: (*choice.keys, *choice.also_uses) for name, choice in LIMIT_CHOICES.items()
}


@functools.cache
def _citations(sources: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(SOURCES[s] for s in sources)


CATALOGUE: list[Rule] = []

#: Message fields rules define next to their rules: name -> function of the message view
#: (reported values, effective limits, facts and context of one panel) giving the text.
#: A field states only what holds for the panel (e.g. ``renal_basis`` names the eGFR only when
#: one was reported), so templates need no branches of their own.
FIELDS: dict[str, Callable[[Any], str]] = {}


def message_field(name: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register the decorated function as message field ``{name}``."""

    def register(fn: Callable[[Any], str]) -> Callable[[Any], str]:
        if name in FIELDS:
            raise ValueError(f"message field {name} registered twice")
        FIELDS[name] = fn
        return fn

    return register


def rule(
    code: str,
    *,
    area: str,
    severity: Severity,
    title: str,
    message: str | Callable[[Any], str],
    sources: Sequence[str],
    why: str,
    evidence: Sequence[tuple[str, str | None]] = (),
    actions: Sequence[ActionSpec] = (),
    escalate: Callable[[Any, Any], X] | None = None,
    severity_note: str = "",
    after_status: bool = False,
    example: dict[str, Any] | None = None,
    uses: Sequence[str] = (),
    branches: Sequence[Branch] = (),
    since: str = FIRST_VERSION,
    evidence_of: str | None = None,
    evidence_when: Mapping[str, str] | None = None,
    comment: str = "",
) -> Callable[[Predicate], Predicate]:
    """Register the decorated predicate as rule ``code`` (catalogue order = definition order)."""

    def register(fn: Predicate) -> Predicate:
        if any(r.code == code for r in CATALOGUE):
            raise ValueError(f"rule code {code} registered twice")
        if code in RETIRED:
            retired_in, reason = RETIRED[code]
            raise ValueError(
                f"rule code {code} was retired in v{retired_in} ({reason}): use a new code"
            )
        if evidence_of not in (None, "censored", "implausible", "suspect", "serial"):
            raise ValueError(
                f"{code}: evidence_of must be 'censored', 'implausible', 'suspect' or 'serial'"
            )
        names = [b.name for b in branches]
        if len(set(names)) != len(names):
            raise ValueError(f"{code}: branch names repeat: {names}")
        for a in actions:
            if ";" in a.test:
                raise ValueError(f"{code}: action text may not contain ';' (the batch separator)")
        unknown = [s for s in sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"{code}: unknown sources {unknown}")
        CATALOGUE.append(
            Rule(
                code=code,
                area=area,
                severity=severity,
                title=title,
                message=message,
                when=fn,
                sources=tuple(sources),
                why=why,
                evidence=tuple(evidence),
                actions=tuple(actions),
                escalate=escalate,
                severity_note=severity_note,
                after_status=after_status,
                example=example or {},
                uses=tuple(uses),
                branches=tuple(branches),
                since=since,
                evidence_of=evidence_of,
                evidence_when=tuple((evidence_when or {}).items()),
                comment=comment,
            )
        )
        return fn

    return register


#: Area derivers: area -> the function that sets that area's derived features on the facts
#: (``rules/<area>.py``, next to the rules that read them). :data:`b12labs.rules.DERIVE` is the
#: order they run in.
DERIVERS: dict[str, Deriver] = {}


def derives(area: str) -> Callable[[Deriver], Deriver]:
    """Register the decorated function as the deriver of ``area``'s facts (one an area)."""

    def register(fn: Deriver) -> Deriver:
        if area in DERIVERS:
            raise ValueError(f"facts of area {area} derived twice")
        DERIVERS[area] = fn
        return fn

    return register
