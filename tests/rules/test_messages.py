"""Every fired finding's text says only what holds for this patient (RULES.md v2 §1, principles 5
and 7; §5 NEURO_URGENT on which symptoms are neurological).

Checked over every rule case (tests/rules/cases/*.yaml) and over random panels and contexts
generated with hypothesis (a strategy of our own, plus the batch equivalence generator driven by
hypothesis' random). Each property is one check function returning the problems it found, so
a failure names the property, the input and the offending text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b12labs import interpret
from b12labs.errors import B12LabsError
from tests.batch.test_equivalence import _random_panel
from tests.rules._cases import CASES_DIR, load_cases

# --------------------------------------------------------------------------------------------
# inputs: the rule cases and a hypothesis strategy
# --------------------------------------------------------------------------------------------



def _load_cases_tolerant() -> list[Any]:
    """All rule cases; a case file that does not parse (another helper may be editing it) is
    skipped with a warning rather than hiding every other file's cases."""
    import tempfile
    import warnings
    from pathlib import Path

    try:
        return load_cases()
    except Exception:
        pass
    cases: list[Any] = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / path.name).symlink_to(path)
            try:
                cases += load_cases(Path(tmp))
            except Exception as exc:
                warnings.warn(f"rule case file {path.name} skipped: {exc}", stacklevel=1)
    return cases

NEURO_TERMS = ("paraesthesia", "numbness", "ataxia", "gait_disturbance", "myoclonus",
               "muscle_weakness", "cognitive_impairment", "visual_disturbance",
               "bladder_bowel_dysfunction")
OTHER_SYMPTOMS = ("fatigue", "glossitis", "neck_pain", "neck_stiffness", "back_pain",
                  "joint_stiffness", "occipital_headache", "mood_change")
CONDITIONS = ("rheumatoid_arthritis", "pernicious_anaemia", "autoimmune_gastritis", "gastrectomy",
              "bariatric_surgery", "ileal_resection", "crohns_disease", "coeliac_disease",
              "chronic_kidney_disease", "hypothyroidism", "inflammatory_bowel_disease",
              "heart_failure", "vegan_diet", "vegetarian_diet", "alcohol_excess", "liver_disease")
MEDICATIONS = ("metformin 500 mg", "omeprazole 20 mg", "methotrexate 15 mg weekly", "Humira",
               "folic acid 5 mg", "folic acid 400 micrograms", "hydroxycarbamide", "azathioprine",
               "cyanocobalamin", "biotin 10 mg", "aspirin", "atorvastatin", "trimethoprim",
               "colchicine")


def _num(lo: float, hi: float, places: int) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda x: round(x, places))


def _value(lo: float, hi: float, unit: str, places: int = 1, censor: bool = True) -> st.SearchStrategy[str]:
    cmp = st.sampled_from(["", "", "", "", "", "<", ">"]) if censor else st.just("")
    return st.builds(lambda c, v: f"{c}{v:g} {unit}".replace(" %", " %"), cmp, _num(lo, hi, places))


# units in which a value arrives (the converted display is what principle 7 is about)
_ANALYTE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "b12": st.one_of(_value(40, 1500, "pg/mL", 0), _value(30, 1100, "pmol/L", 1), _value(40, 1500, "ng/L", 0),
                     _value(0.05, 1.5, "ng/mL", 2, censor=False)),
    "holotc": _value(5, 150, "pmol/L", 1),
    "mma": st.one_of(_value(0.08, 2.0, "umol/L", 2), _value(80, 2000, "nmol/L", 0), _value(0.08, 2.0, "nmol/mL", 3)),
    "homocysteine": st.one_of(_value(4, 60, "umol/L", 1), _value(0.5, 8, "mg/L", 2)),
    "mcv": _value(70, 140, "fL", 1, censor=False),
    "hb": st.one_of(_value(6, 17, "g/dL", 1, censor=False), _value(60, 170, "g/L", 0, censor=False),
                    _value(4, 11, "mmol/L", 2, censor=False)),
    "rdw": _value(11, 20, "%", 1, censor=False),
    "ferritin": st.one_of(_value(3, 400, "ng/mL", 0), _value(3, 400, "ug/L", 1)),
    "tsat": _value(5, 50, "%", 0, censor=False),
    "iron": _value(20, 180, "ug/dL", 0, censor=False),
    "tibc": _value(200, 480, "ug/dL", 0, censor=False),
    "folate": st.one_of(_value(1, 20, "ng/mL", 2), _value(2, 45, "nmol/L", 1)),
    "rbc_folate": _value(150, 900, "nmol/L", 0),
    "egfr": _value(8, 110, "mL/min/1.73m2", 0, censor=False),
    "creatinine": st.one_of(_value(40, 400, "umol/L", 0, censor=False), _value(0.5, 4, "mg/dL", 2, censor=False)),
    "crp": st.one_of(_value(0.5, 60, "mg/L", 1), _value(0.05, 5, "mg/dL", 2)),
    "if_antibody": st.sampled_from(["positive", "negative", "equivocal"]),
    "retic": _value(20, 200, "10^9/L", 0, censor=False),
}

panels = st.dictionaries(st.sampled_from(sorted(_ANALYTE_VALUES)), st.none(), max_size=8).flatmap(
    lambda keys: st.fixed_dictionaries({k: _ANALYTE_VALUES[k] for k in keys})
)

contexts = st.fixed_dictionaries(
    {},
    optional={
        "age": st.one_of(st.integers(0, 95), st.floats(0.2, 17.5).map(lambda x: round(x, 1))),
        "sex": st.sampled_from(["female", "male", "f", "m", "unknown", "other"]),
        "pregnant": st.booleans(),
        "gestational_weeks": st.integers(4, 40),
        "medications": st.lists(st.sampled_from(MEDICATIONS), max_size=3, unique=True),
        "conditions": st.lists(st.sampled_from(CONDITIONS), max_size=3, unique=True),
        "symptoms": st.lists(st.sampled_from(NEURO_TERMS + OTHER_SYMPTOMS), max_size=4, unique=True),
        "nitrous_oxide_exposure": st.booleans(),
        "b12_treatment": st.sampled_from(["none", "oral", "injection"]),
        "days_since_b12_injection": st.integers(0, 400),
        "breastfeeding": st.booleans(),
    },
)

#: the equivalence test's generator, driven by hypothesis (so its inputs shrink and replay)
_equivalence_inputs = st.randoms(use_true_random=False).map(_random_panel)

INPUTS = st.one_of(st.tuples(panels, contexts), _equivalence_inputs)

#: ≥300 random examples per property (the brief), reproducible
RANDOM = settings(max_examples=350, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def run(panel: dict[str, Any], context: dict[str, Any] | None, profile: str | None = None,
        **kwargs: Any) -> Any:
    kw = dict(kwargs)
    if profile:
        kw["profile"] = profile
    return interpret(panel, context or None, **kw)


def _cleaned(context: dict[str, Any]) -> dict[str, Any]:
    # gestational weeks only with a pregnancy (the library may refuse it otherwise)
    ctx = dict(context)
    if not ctx.get("pregnant"):
        ctx.pop("gestational_weeks", None)
    if ctx.get("pregnant") and ctx.get("sex") in ("male", "m"):
        ctx["sex"] = "female"
    return ctx


def run_random(panel: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> Any:
    from hypothesis import reject

    try:
        return run(panel, _cleaned(context), **kwargs)
    except B12LabsError:
        reject()


_CASE_RESULTS: list[tuple[str, dict[str, Any], dict[str, Any], Any]] | None = None


def case_results() -> list[tuple[str, dict[str, Any], dict[str, Any], Any]]:
    """(case id, panel, context, Interpretation) of every rule case (computed once)."""
    global _CASE_RESULTS
    if _CASE_RESULTS is None:
        out = []
        for c in _load_cases_tolerant():
            try:
                r = run(c.panel, c.context, c.profile, **c.kwargs)
            except B12LabsError:  # a case of an input error: no findings to check
                continue
            out.append((c.id, c.panel, c.context, r))
        _CASE_RESULTS = out
    return _CASE_RESULTS


def texts(result: Any) -> Iterable[tuple[str, str, Any]]:
    """(where, text, finding) of every finding's message."""
    for f in result.findings:
        yield f"{f.code}.message", f.message, f


def _report(problems: list[str], limit: int = 8) -> str:
    uniq = list(dict.fromkeys(problems))
    return f"{len(uniq)} problem(s):\n  " + "\n  ".join(uniq[:limit])


# --------------------------------------------------------------------------------------------
# the properties
# --------------------------------------------------------------------------------------------

_NUM = r"\d+(?:\.\d+)?"
_COMPARISON = r"(?:below|above|under|over|exceeds?|elevated|raised|low|high|in the \w+ band|within|borderline|less than|greater than|[<>≤≥])"

# "not measured" may only say that something was not measured. The v1 defects put it where a
# value belongs: as the subject of a comparison ("homocysteine not measured is elevated",
# "TSAT not measured below 20 %"), or as one side of an alternative ("MMA 0.68 umol/L or
# homocysteine not measured"). So "not measured" must not be followed, within the same clause
# (no , ; : . or bracket in between), by a comparison word — legitimate sentences end the
# clause right after it ("with MMA not measured: order MMA", "... band, MMA not measured") —
# and must not be joined by "or" or "/" to a measured value.
_NOT_MEASURED_COMPARED = re.compile(
    rf"not measured\s*(?:(?:is|are|was|were)\s+)?(?:not\s+)?[^,;:.()\n]{{0,25}}?\b{_COMPARISON}", re.I)
_NOT_MEASURED_AS_VALUE = re.compile(
    rf"(?:{_NUM}\s*[^\s,;:()]+|measured|positive|negative)\s+(?:or|/|and/or)\s+[\w -]{{0,30}}?not measured"
    rf"|not measured\s+(?:or|/|and/or)\s+[\w -]{{0,30}}?{_NUM}", re.I)


def check_not_measured(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _ in texts(result):
        for rx in (_NOT_MEASURED_COMPARED, _NOT_MEASURED_AS_VALUE):
            m = rx.search(text)
            if m:
                out.append(f"{where}: {m.group(0)!r} in {text!r}")
    return out


# A message gives the branch that fired, never the rule's alternatives (principle 5). v1 wrote
# "Ferritin 60 ug/L is below 30 ug/L, or below 100 ug/L with TSAT 12 %" and "B12 450 ng/L /
# active B12 not measured is in the unlikely band, but MMA 0.68 umol/L or homocysteine not
# measured is elevated". The patterns: a second threshold comparison joined by "or"
# ("..., or below 100"), "or below/above" (except the "at or above" wording of a limit), two
# results joined by "/" or "or" ("B12 450 ng/L / active B12", "MMA 0.68 umol/L or
# homocysteine"), and "X or Y is elevated/in the band" listing analytes as alternatives.
_ANALYTE_WORDS = (r"(?:total B12|active B12|B12|holoTC|holotranscobalamin|MMA|homocysteine|ferritin|"
                  r"TSAT|transferrin saturation|folate|red-cell folate|MCV|Hb|haemoglobin|RDW|CRP|eGFR|creatinine)")
_ALTERNATIVES = [
    re.compile(rf"(?<!\bat )\bor (?:below|above|under|over)\s+{_NUM}", re.I),
    re.compile(rf"(?<![\w.]){_NUM}\s*[^\s\d,;:()][^\s,;:()]*\s*,?\s+or\s+(?:is\s+)?(?:below|above)\b", re.I),
    re.compile(rf",\s+or\s+[^.;:]*?\b(?:below|above)\s+{_NUM}", re.I),
    re.compile(rf"(?<![\w.]){_NUM}\s*[^\s\d,;:()][^\s,;:()]*\s+(?:/|or|and/or)\s+{_ANALYTE_WORDS}\b"),
    re.compile(rf"\b{_ANALYTE_WORDS}\s+/\s+{_ANALYTE_WORDS}\b"),
    re.compile(r"\b(?:B12|holoTC)\s*/\s*(?:active B12|holoTC)\b"),
    re.compile(rf"\bor {_ANALYTE_WORDS}\s+(?:{_NUM}\s*\S+\s+)?(?:not measured\s+)?(?:is|are)\s+"
               rf"(?:elevated|raised|low|high|above|below|in the)\b"),
]


def check_no_alternative_branches(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _ in texts(result):
        for rx in _ALTERNATIVES:
            m = rx.search(text)
            if m:
                out.append(f"{where}: {m.group(0)!r} in {text!r}")
    return out


# "<value> <unit> is [not] above|below <threshold> <unit>" (also "ferritin 99 ng/mL is below 100
# ng/mL and TSAT 19 % below 20 %", "MCV 125 fL above 120 fL") and the band forms "in the
# indeterminate band (180 pg/mL to 350 pg/mL)", "within 100 ng/mL to 300 ng/mL", "borderline
# (6.8 nmol/L to 10 nmol/L)". A converted figure may follow a number in brackets ("400 nmol/L
# (0.40 µmol/L)"). Each comparison is checked numerically on the displayed numbers, honouring
# a censoring comparator on the value (">350 pg/mL is above 350 pg/mL" holds: the whole
# interval is above); the two sides must be in the same unit (principle 7).
_UNIT = r"[^\s,;:()]+"
_CMP_VALUE = rf"(?P<cmp>>=|<=|[<>≤≥])?\s?(?P<v>{_NUM})\s*(?P<u>{_UNIT}(?: \(\w+\))?)"
_DIRECTED = re.compile(
    rf"(?<![\w.]){_CMP_VALUE}\s+(?:is\s+)?(?P<neg>not\s+)?(?P<dir>above|below|under|over)\s+"
    rf"(?P<t>{_NUM})\s*(?P<tu>{_UNIT})")
_BAND = re.compile(
    rf"(?<![\w.]){_CMP_VALUE}\s+is\s+(?:in the [\w-]+ band|borderline|within)\s*\(?\s*(?P<lo>{_NUM})\s*(?P<lu>{_UNIT})"
    rf"(?:\s*\([^)]*\))*\s+to\s+(?P<hi>{_NUM})\s*(?P<hu>{_UNIT})")


def _unit(u: str) -> str:
    # one unit, two spellings: UCUM's "mL/min/{1.73_m2}" is §2's "mL/min/1.73m2"
    u = u.replace("{1.73_m2}", "1.73m2")
    return u.replace("µ", "u").replace("μ", "u").strip().rstrip(".")


def _holds(cmp: str | None, v: float, direction: str, t: float) -> bool:
    """Whether the value (the whole censored interval) lies on ``direction`` of ``t``."""
    cmp = {"<=": "≤", ">=": "≥"}.get(cmp or "", cmp or "")
    if direction in ("above", "over"):
        if cmp in ("<", "≤"):
            return False  # an upper bound never shows a value above anything
        return v >= t if cmp == ">" else v > t
    if cmp in (">", "≥"):
        return False
    return v <= t if cmp == "<" else v < t


def _not_holds(cmp: str | None, v: float, direction: str, t: float) -> bool:
    """Whether "not above t" (the value is at or below t) / "not below t" holds for the interval."""
    cmp = {"<=": "≤", ">=": "≥"}.get(cmp or "", cmp or "")
    if direction in ("above", "over"):
        return False if cmp in (">", "≥") else v <= t
    return False if cmp in ("<", "≤") else v >= t


def check_comparisons_true(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _ in texts(result):
        for m in _DIRECTED.finditer(text):
            v, t = float(m["v"]), float(m["t"])
            u = _unit(m["u"].split(" (")[0])
            if u != _unit(m["tu"]):
                out.append(f"{where}: units differ in {m.group(0)!r} ({text!r})")
                continue
            if m["neg"]:
                holds = _not_holds(m["cmp"], v, m["dir"], t)
            else:
                holds = _holds(m["cmp"], v, m["dir"], t)
            if not holds:
                out.append(f"{where}: false comparison {m.group(0)!r} in {text!r}")
        for m in _BAND.finditer(text):
            v, lo, hi = float(m["v"]), float(m["lo"]), float(m["hi"])
            # a censored value is "in" a band only when its whole interval is, which a bound
            # alone never shows for a closed band
            if m["cmp"] or not (lo <= v <= hi):
                out.append(f"{where}: value not inside the stated band {m.group(0)!r} in {text!r}")
            if _unit(m["u"].split(" (")[0]) != _unit(m["lu"]):
                out.append(f"{where}: units differ in {m.group(0)!r} ({text!r})")
    return out


def check_evidence_direction(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    """For each evidence item with a threshold: when the message says "<reported> is above/below",
    the exact (evidence) value is on that side of the exact threshold."""
    out = []
    for where, text, f in texts(result):
        for e in f.evidence:
            if e.threshold is None or e.value is None or not e.reported or e.unit != e.threshold_unit:
                continue
            rep = re.escape(e.reported.strip())
            m = re.search(rf"(?<![\w.]){rep}\s+(?:is\s+)?(?P<neg>not\s+)?(?P<dir>above|below)\s+(?P<t>{_NUM})", text)
            if not m or m["neg"] or (e.comparator is not None and str(e.comparator)):
                continue
            # only the evidence item whose threshold is the one named (an eGFR carries both the
            # renal-caveat limit 60 and the kidney-failure limit 15)
            if not math.isclose(float(m["t"]), e.threshold, rel_tol=5e-3):
                continue
            ok = e.value > e.threshold if m["dir"] == "above" else e.value < e.threshold
            if not ok:
                out.append(f"{where}: evidence {e.analyte} {e.value} {e.unit} is not {m['dir']} "
                           f"{e.threshold} {e.threshold_unit} yet {text!r}")
    return out


# Only §3's neurological terms are neurological symptoms (§5 NEURO_URGENT; principle 5). A list
# introduced as neurological ("neurological symptoms (a, b and c)", "neurological symptoms such
# as …", "neurological …: …") must name only those; and no clause that calls something
# neurological may name neck pain/stiffness, back pain or occipital headache as one of them.
_NEURO_DISPLAY = {t.replace("_", " ") for t in NEURO_TERMS} | {"paresthesia"}
_NOT_NEURO = re.compile(r"neck pain|neck stiffness|stiff neck|back pain|occipital headache|headache|joint stiffness", re.I)
_NEURO_LIST = re.compile(
    r"neurological\s+(?:symptoms?|signs?|features?|terms?|involvement)\s*(?:\((?P<paren>[^)]*)\)|(?:such as|including|like|:)\s+(?P<list>[^.;:()]*))",
    re.I)


def check_neurological_terms(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _ in texts(result):
        for m in _NEURO_LIST.finditer(text):
            listed = m["paren"] if m["paren"] is not None else m["list"]
            items = [i.strip().lower() for i in re.split(r",|\band\b|\bor\b", listed) if i.strip()]
            bad = [i for i in items if i not in _NEURO_DISPLAY]
            if bad:
                out.append(f"{where}: not neurological terms {bad} listed as neurological in {text!r}")
        for clause in re.split(r"[.;:]", text):
            if re.search(r"neurolog", clause, re.I):
                # "X with neck pain and neurological symptoms (…)" names both side by side: fine;
                # what is forbidden is neck/back terms inside the neurological list itself
                for m in _NEURO_LIST.finditer(clause):
                    listed = m["paren"] if m["paren"] is not None else m["list"]
                    if _NOT_NEURO.search(listed or ""):
                        out.append(f"{where}: {listed!r} called neurological in {text!r}")
                if re.search(r"neurological\s+(?:symptoms?\s+)?(?:of|from)?\s*(?:neck|back|occipital)", clause, re.I):
                    out.append(f"{where}: neck/back term called neurological in {text!r}")
    return out


# No template leftovers or missing values anywhere a reader sees text.
_RAW = re.compile(r"[{}]|\bNone\b|\bnan\b|\bNaN\b|\binf\b|\bnull\b|\bundefined\b|%\(|\$\{")


def check_no_raw_template(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    pieces: list[tuple[str, str]] = [("comment", result.comment)]
    for f in result.findings:
        pieces += [(f"{f.code}.message", f.message), (f"{f.code}.title", f.title)]
        pieces += [(f"{f.code}.action", a.test) for a in f.actions]
    # a UCUM annotation the lab wrote ("mL/min/{1.73_m2}") is the reported text, not a template
    # leftover; one the library adds on its own (a bare eGFR number) is not
    lab_written = {a for v in (panel or {}).values()
                   for a in re.findall(r"\{[^{}]*\}", str(v.get("unit", "")) + str(v.get("value", ""))
                                       if isinstance(v, dict) else str(v))}
    for where, text in pieces:
        for a in lab_written:
            text = (text or "").replace(a, "")
        m = _RAW.search(text or "")
        if m:
            out.append(f"{where}: {m.group(0)!r} in {text!r}")
        if not (text or "").strip() and where != "comment":
            out.append(f"{where}: empty")
    return out


# A number shown with more than 3 significant figures must be the reported value as written
# (principle 7: "a reported value as the lab wrote it … a converted value to 3 significant
# figures"), or a threshold as published (the evidence's threshold: 1245 pg/mL is Labcorp's).
# Not numbers: parts of words/codes (NG239, S003, 31444-3), units (1.73m2), ISO dates, years
# in a citation ("Carmel 2012", "(2024)"), ranges of percentages as published ("22-35 %").
_NUMBER = re.compile(r"(?<![\w.\-/])(\d+(?:\.\d+)?)(?![\w.]*\d)(?![\w\-])")


def sig_figs(token: str) -> int:
    if "." in token:
        digits = token.replace(".", "").lstrip("0")
        return len(digits)
    return len(token.lstrip("0").rstrip("0")) or 1


def _fmt(x: float) -> set[str]:
    return {f"{x:g}", f"{x:.0f}" if x == int(x) else f"{x}", repr(x), f"{x:.2f}", f"{x:.3f}"}


def check_number_precision(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _f in texts(result):
        allowed: set[str] = set()
        for ff in result.findings:  # any reported value of this panel, as written
            for e in ff.evidence:
                if e.reported:
                    allowed |= set(re.findall(r"\d+(?:[.,]\d+)?", e.reported))
                if e.threshold is not None:
                    allowed |= _fmt(e.threshold)
        scrubbed = re.sub(r"\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?", " ", text)
        scrubbed = re.sub(r"\b(?:19|20)\d{2}\b(?=\s*[);,.\]]|$)", " ", scrubbed)
        for m in _NUMBER.finditer(scrubbed):
            tok = m.group(1)
            if sig_figs(tok) > 3 and tok not in allowed:
                out.append(f"{where}: {tok} has {sig_figs(tok)} significant figures in {text!r}")
    return out


# The same symptom or term named twice in one message ("neck pain or stiffness and neck pain");
# a list with an item twice ("(paraesthesia, numbness and paraesthesia)"); a word doubled.
_TERMS = sorted({t.replace("_", " ") for t in NEURO_TERMS + OTHER_SYMPTOMS + CONDITIONS}
                | {"crohn's disease", "coeliac disease", "neck pain", "neck stiffness", "stiffness"},
                key=len, reverse=True)


def check_no_repeats(result: Any, panel: dict[str, Any] | None = None) -> list[str]:
    out = []
    for where, text, _ in texts(result):
        # within one sentence or clause (a general list of causes and then "Present here: …"
        # naming one of them is not a repeat)
        for clause in re.split(r"[.;:]\s", text.lower()):
            # "neck pain or stiffness" names neck stiffness too
            counted = re.sub(r"neck pain (or|and) stiffness", r"neck pain \1 neck stiffness", clause)
            for term in _TERMS:
                n = len(re.findall(rf"(?<![\w-]){re.escape(term)}(?![\w-])", counted))
                if n > 1:
                    out.append(f"{where}: {term!r} named {n} times in one clause of {text!r}")
                counted = re.sub(rf"(?<![\w-]){re.escape(term)}(?![\w-])", " ", counted)  # longest first
        for lst in re.findall(r"\(([^()]*)\)", text):
            items = [i.strip().lower() for i in re.split(r",|\band\b|\bor\b", lst) if i.strip()]
            dup = {i for i in items if items.count(i) > 1}
            if dup:
                out.append(f"{where}: {sorted(dup)} twice in the list ({lst}) of {text!r}")
        m = re.search(r"\b(\w+)\s+\1\b", text, re.I)
        if m and not m.group(1).isdigit():
            out.append(f"{where}: word doubled {m.group(0)!r} in {text!r}")
        sentences = [s.strip().lower() for s in re.split(r"(?<=[.;:])\s+", text) if s.strip()]
        dup_s = {s for s in sentences if sentences.count(s) > 1 and len(s) > 10}
        if dup_s:
            out.append(f"{where}: sentence repeated {sorted(dup_s)} in {text!r}")
    return out


PROPERTIES: dict[str, Callable[..., list[str]]] = {
    "not_measured_never_compared": check_not_measured,
    "no_alternative_branches": check_no_alternative_branches,
    "comparisons_are_true": check_comparisons_true,
    "evidence_agrees_with_direction": check_evidence_direction,
    "only_neurological_terms_called_neurological": check_neurological_terms,
    "no_raw_template_text": check_no_raw_template,
    "numbers_at_most_3_sig_figs": check_number_precision,
    "no_repeated_terms": check_no_repeats,
}


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prop", sorted(PROPERTIES))
def test_property_over_rule_cases(prop: str) -> None:
    check = PROPERTIES[prop]
    problems = []
    for case_id, panel, ctx, result in case_results():
        problems += [f"[{case_id}] panel={panel} context={ctx}: {p}" for p in check(result, panel)]
    assert not problems, _report(problems)


@pytest.mark.parametrize("prop", sorted(PROPERTIES))
@RANDOM
@given(inputs=INPUTS)
def test_property_over_random_panels(prop: str, inputs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    panel, ctx = inputs
    result = run_random(panel, ctx)
    problems = PROPERTIES[prop](result, panel)
    assert not problems, f"panel={panel} context={_cleaned(ctx)}: " + _report(problems)


# the checks must catch the v1 defects quoted in the issue (the regexes are not vacuous)
class _F:
    def __init__(self, message: str, evidence: tuple[Any, ...] = ()) -> None:
        self.code, self.message, self.title, self.evidence, self.actions = "X", message, "t", evidence, ()


class _R:
    def __init__(self, *messages: str) -> None:
        self.findings = tuple(_F(m) for m in messages)
        self.comment = "B12 deficiency is unlikely on these results."


@pytest.mark.parametrize(("prop", "message"), [
    ("not_measured_never_compared", "MMA 0.68 umol/L or homocysteine not measured is elevated."),
    ("not_measured_never_compared", "With inflammation, ferritin 60 ug/L and TSAT not measured below 20 %."),
    ("no_alternative_branches", "Ferritin 60 ug/L is below 30 ug/L, or below 100 ug/L with TSAT 12 %."),
    ("no_alternative_branches",
     "B12 450 ng/L / active B12 not measured is in the unlikely band, but MMA 0.68 umol/L or homocysteine not measured is elevated."),
    ("comparisons_are_true", "MMA 0.30 umol/L is above 0.40 umol/L: supports functional deficiency."),
    ("comparisons_are_true", "Total B12 250 pg/mL is in the indeterminate band (180 pg/mL to 200 pg/mL)."),
    ("only_neurological_terms_called_neurological", "Neurological symptoms (paraesthesia, neck pain) with B12 150 pg/mL."),
    ("no_raw_template_text", "Total B12 {value} is below None."),
    ("numbers_at_most_3_sig_figs", "Total B12 510 pg/mL (376.281 pmol/L) is above 350 pg/mL."),
    ("numbers_at_most_3_sig_figs", "Hb 7.16268 mmol/L is below 8.07 mmol/L."),
    ("no_repeated_terms", "Rheumatoid arthritis with neck pain or stiffness and neck pain: consider subluxation."),
])
def test_checks_catch_the_v1_defects(prop: str, message: str) -> None:
    assert PROPERTIES[prop](_R(message)), f"{prop} did not flag {message!r}"


@pytest.mark.parametrize(("prop", "message"), [
    ("not_measured_never_compared", "Neurological symptoms (paraesthesia) with total B12 250 pg/mL in the indeterminate band and MMA not measured: prompt review."),
    ("no_alternative_branches", "Hb 115 g/L is at or above the WHO threshold."),
    ("comparisons_are_true", "Total B12 >350 pg/mL is above 350 pg/mL: deficiency is unlikely."),
    ("comparisons_are_true", "MMA 250 nmol/L is not above 400 nmol/L (0.40 µmol/L): functional deficiency is unlikely."),
    ("only_neurological_terms_called_neurological", "Rheumatoid arthritis with neck pain and neurological symptoms (paraesthesia): exclude cord compression."),
    ("numbers_at_most_3_sig_figs", "Total B12 1246 pg/mL is above 1245 pg/mL; some assays (22-35 % of cases, Carmel 2012)."),
])
def test_checks_accept_correct_wording(prop: str, message: str) -> None:
    class _E:
        analyte, reported, value, unit, comparator, note = "b12", "1246 pg/mL", 1246.0, "pg/mL", None, None
        threshold, threshold_unit = 1245.0, "pg/mL"

    r = _R(message)
    r.findings[0].evidence = (_E(),)
    assert not PROPERTIES[prop](r), PROPERTIES[prop](r)
