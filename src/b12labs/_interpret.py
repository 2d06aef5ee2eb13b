"""``interpret()``: one panel in, a flagged, explained, cited :class:`Interpretation` out."""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._comment import comment as build_comment
from ._comment import reason_name, resolve_comment_limit
from ._display import published, sig3, unit_shown, writes_micro_as_u
from ._engine import (
    BAND_KEYS,
    CMP_CODES,
    SCALAR,
    SEX_CODES,
    STATUS_NAMES,
    TREATMENT_CODES,
    Facts,
    RawInputs,
    applied_key,
)
from ._evaluate import evaluate
from ._serial import serial_inputs
from ._version import __version__
from .models import (
    Action,
    Evidence,
    Finding,
    HistoryEntry,
    IgnoredInput,
    Interpretation,
    LabPanel,
    Measurement,
    PatientContext,
    Severity,
    Status,
    parse_history,
    parse_panel,
    trusted_constructor,
)
from .profiles import DEFAULT_PROFILE, THRESHOLDS, Profile, load_profile
from .rules import CATALOGUE, Rule
from .rules._registry import FIELDS, ActionSpec
from .rules.serial import SERIAL_EVIDENCE
from .units import ANALYTES, convert, resolve_unit, round_sig
from .vocabulary import NEUROLOGICAL_SYMPTOMS

__all__ = ["interpret", "normalize", "panel_inputs"]

_SEVERITIES = {1: Severity.info, 2: Severity.warning, 3: Severity.critical}
_STATUSES = tuple(Status(name) for name in STATUS_NAMES)  # by status code
# outputs built from values computed here (never from user input), without re-validation
_new_evidence = trusted_constructor(Evidence)
_new_finding = trusted_constructor(Finding)
_new_interpretation = trusted_constructor(Interpretation)
_new_ignored = trusted_constructor(IgnoredInput)


_NEUROLOGICAL = frozenset(NEUROLOGICAL_SYMPTOMS)


@functools.lru_cache(maxsize=1024)
def _bands(profile: Profile, analyte: str, unit: str | None) -> tuple[tuple[str, float], ...]:
    """The B12 or holoTC band limits (canonical) for a result reported in ``unit``."""
    return tuple((key, profile.band(key, unit)[0]) for key in BAND_KEYS[analyte])


def _canonical(analyte: str, m: Measurement) -> tuple[float, float]:
    """(factor, canonical value) of a numeric measurement."""
    factor = resolve_unit(analyte, m.unit).factor if m.unit else 1.0
    assert m.value is not None
    # a value already in the canonical unit is used exactly as reported
    return factor, m.value if factor == 1.0 else round_sig(m.value * factor)


def panel_inputs(
    measurements: Mapping[str, Measurement], context: PatientContext, profile: Profile
) -> tuple[RawInputs, dict[str, float]]:
    """Normalise one panel into the engine's inputs, and the canonical values used."""
    values: dict[str, float] = {}
    cmp: dict[str, int] = {}
    ref_low: dict[str, float] = {}
    ref_high: dict[str, float] = {}
    band: dict[str, float] = {}
    implausible: dict[str, bool] = {}
    used: dict[str, float] = {}
    if_positive = if_negative = if_equivocal = False
    for key, m in measurements.items():
        spec = ANALYTES[key]
        if spec.qualitative:
            if_positive = m.qualitative == "positive"
            if_negative = m.qualitative == "negative"
            # equivocal: measured, but neither positive nor negative (§2), and no value
            # (batch leaves its canonical column empty the same way)
            if_equivocal = m.qualitative == "equivocal"
            if not if_equivocal:
                used[key] = 1.0 if if_positive else 0.0
            continue
        factor, value = _canonical(key, m)
        if spec.plausible and not (spec.plausible[0] <= value <= spec.plausible[1]):
            implausible[key] = True
            continue
        values[key] = used[key] = value
        cmp[key] = CMP_CODES[m.comparator]
        if m.ref_low is not None:
            ref_low[key] = m.ref_low if factor == 1.0 else round_sig(m.ref_low * factor)
        if m.ref_high is not None:
            ref_high[key] = m.ref_high if factor == 1.0 else round_sig(m.ref_high * factor)
        if key in BAND_KEYS:
            band.update(_bands(profile, key, m.unit))
    symptoms = context.symptoms
    raw = RawInputs(
        values=values,
        cmp=cmp,
        ref_low=ref_low,
        ref_high=ref_high,
        band=band,
        implausible=implausible,
        if_positive=if_positive,
        if_negative=if_negative,
        if_equivocal=if_equivocal,
        age=context.age if context.age is not None else math.nan,
        sex=SEX_CODES.get(context.sex, 0),
        pregnant=bool(context.pregnant),
        nitrous_oxide=bool(context.nitrous_oxide_exposure),
        treatment=TREATMENT_CODES[context.b12_treatment] if context.b12_treatment else 0,
        treatment_started=context.b12_treatment_started is not None,
        gestational_weeks=(
            context.gestational_weeks if context.gestational_weeks is not None else math.nan
        ),
        breastfeeding=bool(context.breastfeeding),
        days_since_injection=(
            context.days_since_b12_injection
            if context.days_since_b12_injection is not None
            else math.nan
        ),
        conditions=dict.fromkeys(context.conditions, True),
        symptoms=dict.fromkeys(symptoms, True),
        medications=dict.fromkeys(context.medication_classes, True) if context.medications else {},
        neurological=bool(symptoms) and not _NEUROLOGICAL.isdisjoint(symptoms),
        any_symptom=bool(symptoms),
    )
    return raw, used


_FIELDS = string.Formatter()


def _compile_template(template: str) -> tuple[tuple[str, str | None], ...] | None:
    """``"B12 {b12} is below {b12_deficient}"`` as (literal, field) parts; ``None`` when the
    template uses a format spec or conversion (then ``str.format_map`` is used as written)."""
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in _FIELDS.parse(template):
        if spec or conversion or (name is not None and not name.isidentifier()):
            return None
        parts.append((literal, name))
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``interpret()`` needs of one rule, prepared once when the catalogue is loaded."""

    rule: Rule
    code: str
    order: int
    rank: int | None  # fixed severity rank, or None when the rule escalates
    # (condition or None, action, (kind, name) as the comment suggests it)
    actions: tuple[tuple[Any, Action, tuple[str, str]], ...]
    clauses: dict[str | None, str]  # the comment clause by fired branch (None: no branch)
    parts: tuple[tuple[str, str | None], ...] | None  # compiled message template
    sources: tuple[str, ...]
    evidence_of: str | None  # evidence listed from the panel, not from the rule's pairs
    evidence_when: tuple[tuple[str, str], ...]
    # (name, predicate, message, compiled message, evidence pairs) of each branch, in order
    branches: tuple[tuple[str, Any, Any, tuple[tuple[str, str | None], ...] | None, Any], ...]


def _actions(r: Rule) -> list[tuple[ActionSpec, Action]]:
    return [
        (a, Action.model_validate({"kind": a.kind, "test": a.test, "loinc": a.loinc}))
        for a in r.actions
    ]


def _plan(i: int, r: Rule) -> _Plan:
    return _Plan(
        rule=r,
        code=r.code,
        order=i,
        rank=None if r.escalate is not None else r.severity.rank,
        actions=tuple((a.when, action, (a.kind, a.test)) for a, action in _actions(r)),
        clauses={name: r.clause(name) for name in (None, *(b.name for b in r.branches))},
        parts=_compile_template(r.message) if isinstance(r.message, str) else None,
        sources=r.citations(),
        evidence_of=r.evidence_of,
        evidence_when=r.evidence_when,
        branches=tuple(
            (
                b.name,
                b.when,
                b.message,
                _compile_template(b.message) if isinstance(b.message, str) else None,
                b.evidence if b.evidence is not None else r.evidence,
            )
            for b in r.branches
        ),
    )


@functools.lru_cache(maxsize=1024)
def _profile_limit(
    profile: Profile, key: str, unit: str | None, note: str | None
) -> tuple[float, str, str | None, str, bool, str | None]:
    """A profile limit as shown: (value, unit, source, key, from lab (False), note).

    Depends only on the profile, the threshold, the unit the result was reported in (bands
    are shown in the unit they are compared in) and the note, so it is computed once.
    """
    t = profile.thresholds[key]
    spec = THRESHOLDS[key]
    if spec.band:
        _, shown, shown_unit = profile.band(key, unit)
        return (float(shown), shown_unit, t.citation, key, False, note)
    if spec.kind in ("years", "weeks", "days"):
        return (float(t.value), spec.kind, t.citation, key, False, note)
    canonical_unit = ANALYTES[spec.kind].canonical_unit
    if resolve_unit(spec.kind, t.unit).code != canonical_unit:
        as_published = f"published as {published(t.value)} {unit_shown(t.unit)}"
        note = f"{note}; {as_published}" if note else as_published
    return (float(t.canonical), canonical_unit, t.citation, key, False, note)


def _same_unit(analyte: str, a: str, b: str) -> bool:
    """Whether two spellings are one unit for ``analyte`` (pg/mL *is* ng/L)."""
    fa, fb = resolve_unit(analyte, a).factor, resolve_unit(analyte, b).factor
    return math.isclose(fa, fb, rel_tol=1e-9)


@functools.lru_cache(maxsize=4096)
def _limit_text(
    profile: Profile, key: str, lab_unit: str | None, beside: float | None = None
) -> str:
    """A profile threshold as printed beside a result reported in ``lab_unit``.

    In the lab's unit: the published figure when the source publishes one in that unit
    (133 pmol/L; 180 pg/mL for NICE's 180 ng/L), else the threshold converted to 3 significant
    figures with the published figure in brackets ("400 nmol/L (0.40 µmol/L)"). Without a
    reported unit, the published figure.
    """
    t = profile.thresholds[key]
    analyte = THRESHOLDS[key].kind
    if analyte in ("years", "days"):
        return f"{t.value:g} {analyte}"
    ascii_micro = writes_micro_as_u(lab_unit)
    figures = [(t.value, t.unit), *((v, u) for u, v in t.alt.items())]
    if lab_unit is None:
        return f"{published(t.value)} {unit_shown(t.unit, ascii_micro)}"
    for value, unit in figures:
        if _same_unit(analyte, unit, lab_unit):
            return f"{published(value)} {unit_shown(lab_unit, ascii_micro)}"
    canonical = ANALYTES[analyte].canonical_unit
    # the bracket gives the figure published in the canonical unit when there is one
    value, unit = next(
        ((v, u) for v, u in figures if _same_unit(analyte, u, canonical)), figures[0]
    )
    exact = t.canonical / resolve_unit(analyte, lab_unit).factor
    converted = sig3(exact)
    # beside the value it is compared with, a limit never reads as equal to it ("3 ng/mL is
    # below 3.00 ng/mL"): more figures until the two differ
    digits = 4
    while beside is not None and float(converted) == beside and exact != beside and digits < 8:
        converted = f"{exact:.{digits}g}"
        digits += 1
    return f"{converted} {lab_unit} ({published(value)} {unit_shown(unit, ascii_micro)})"


def _lab_limit_text(analyte: str, m: Measurement | None, canonical_limit: float) -> str:
    """A lab's own reference limit as printed: as the lab wrote it, in its unit."""
    unit = ANALYTES[analyte].canonical_unit
    if m is not None and m.unit:
        factor = resolve_unit(analyte, m.unit).factor
        for ref in (m.ref_high, m.ref_low):
            if ref is not None and math.isclose(round_sig(ref * factor), canonical_limit):
                if _same_unit(analyte, m.unit, unit):
                    return f"{ref:g} {m.unit}"
                shown = unit_shown(unit, writes_micro_as_u(m.unit))
                return f"{ref:g} {m.unit} ({sig3(canonical_limit)} {shown})"
    ascii_micro = writes_micro_as_u(m.unit if m else None)
    return f"{sig3(canonical_limit)} {unit_shown(unit, ascii_micro)}"


_UNSET: Any = object()


class _View:
    """What message templates and evidence read: reported values and effective limits.

    Built per call; the field texts, limits and evidence it computes are kept for the call,
    since several findings of one panel show the same values and limits.
    """

    __slots__ = ("context", "evidence", "facts", "implausible", "limits", "m", "texts")

    def __init__(
        self,
        f: Facts,
        measurements: Mapping[str, Measurement],
        context: PatientContext,
        implausible: Mapping[str, bool],
    ) -> None:
        self.facts = f
        self.m = measurements
        self.context = context
        self.implausible = implausible
        self.texts: dict[str, str] = {}
        self.limits: dict[str, tuple[float, str, str | None, str, bool, str | None]] = {}
        self.evidence: dict[tuple[str, str | None], Evidence | None] = {}

    def limit(self, name: str) -> tuple[float, str, str | None, str, bool, str | None]:
        """(value, unit, source, threshold key, from lab, note) of a limit as compared.

        A band limit is shown in the unit its analyte was reported in; every evidence pair
        names the analyte of its limit (a test checks), so the limit's name is the key.
        """
        found = self.limits.get(name)
        if found is None:
            found = self.limits[name] = self._limit(name)
        return found

    def _limit(self, name: str) -> tuple[float, str, str | None, str, bool, str | None]:
        f = self.facts
        key = applied_key(f, name)
        if f.limit_from_lab.get(name, False):
            canonical = ANALYTES[THRESHOLDS[key].kind].canonical_unit
            return (f.limit[name], canonical, "laboratory reference interval", key, True, None)
        note = None
        if (
            name == "hb_anaemia"
            and f.limit_which["hb_anaemia"] == 0
            and self.context.sex in ("other", "unknown")
        ):
            note = "sex unknown or other: the higher (male) threshold applies"
        if name == "mma_elevated" and self.context.age is None:
            note = "age unknown: the under-65 limit applies"
        spec = THRESHOLDS[key]
        unit = None
        if spec.band:
            m = self.m.get(spec.kind)
            unit = m.unit if m else None
        return _profile_limit(f.profile, key, unit, note)

    def both(self, analyte: str) -> str:
        """A reported value with its canonical value in brackets when the units differ:
        ``iron 40 ug/dL (7.16 umol/L)`` is ``"40 ug/dL (7.16 umol/L)"`` (for message fields
        that show a value on its own, not beside its threshold)."""
        m = self.m.get(analyte)
        text = self[analyte]
        if m is None or m.value is None or not m.unit:
            return text
        canonical = ANALYTES[analyte].canonical_unit
        if _same_unit(analyte, m.unit, canonical):
            return text
        value = m.value * resolve_unit(analyte, m.unit).factor
        return f"{text} ({sig3(value)} {unit_shown(canonical, writes_micro_as_u(m.unit))})"

    # ---- template fields
    def __getitem__(self, key: str) -> str:
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = self._text(key)
        return text

    def _limit_text(self, name: str) -> str:
        f = self.facts
        key = applied_key(f, name)
        analyte = THRESHOLDS[key].kind
        m = self.m.get(analyte)
        if f.limit_from_lab.get(name, False):
            return _lab_limit_text(analyte, m, float(f.limit[name])) + " (lab reference interval)"
        return _limit_text(
            f.profile,
            key,
            m.unit if m is not None else None,
            m.value if m is not None else None,
        )

    def _text(self, key: str) -> str:
        if key in ANALYTES:
            m = self.m.get(key)
            if m is None:
                if key == "tsat" and self.facts.tsat_derived:
                    tsat = sig3(float(self.facts.tsat.value))
                    return (
                        f"{tsat} % (derived from iron {self.both('iron')} and TIBC "
                        f"{self.both('tibc')})"
                    )
                if key == "egfr" and self.facts.egfr_calculated:
                    return (
                        f"{sig3(float(self.facts.egfr.value))} mL/min/1.73m2 (calculated from "
                        f"creatinine {self['creatinine']}, CKD-EPI 2021)"
                    )
                return "not measured"
            return m.text()
        if key in THRESHOLDS or key in self.facts.limit or key == "hb_anaemia":
            return self._limit_text(key)
        if key == "symptoms":
            return ", ".join(s.replace("_", " ") for s in self.context.symptoms) or "none"
        if key == "conditions":
            return ", ".join(c.replace("_", " ") for c in self.context.conditions) or "none"
        if key == "medications":
            return ", ".join(self.context.medications) or "none"
        if key.startswith("meds_"):
            from .vocabulary import match_medication

            cls = key[5:]
            return (
                ", ".join(m for m in self.context.medications if cls in match_medication(m).classes)
                or "none"
            )
        if key == "age":
            return f"{self.context.age:g} years" if self.context.age is not None else "unknown"
        if key == "censored":
            return ", ".join(f"{k} {m.text()}" for k, m in self.m.items() if m.comparator) or "none"
        if key == "implausible":
            return ", ".join(f"{k} {self.m[k].text()}" for k in self.implausible) or "none"
        if key == "suspect":
            # "; " between values: each item holds its own ", beyond ..." clause
            return (
                "; ".join(
                    f"{_label(k)} {self.m[k].text()}, beyond {_suspect_limit(k)}"
                    for k in _suspect_keys(self.facts)
                    if k in self.m
                )
                or "none"
            )
        describe = FIELDS.get(key)
        if describe is not None:
            return describe(self)
        raise KeyError(key)


def _evidence(
    p: _Plan,
    view: _View,
    used: Mapping[str, float],
    pairs: tuple[tuple[str, str | None], ...],
) -> tuple[Evidence, ...]:
    """The evidence of a fired rule: one item per (analyte, limit) pair with a result."""
    if p.evidence_of is not None:
        if p.evidence_of == "serial":
            return SERIAL_EVIDENCE[p.code](view, used)
        if p.evidence_of == "censored":
            keys = [k for k, m in view.m.items() if m.comparator]
            censored = True
        elif p.evidence_of == "suspect":
            found = tuple(
                ev
                for ev in (_pair_evidence(view, used, k, None) for k in _suspect_keys(view.facts))
                if ev is not None
            )
            return tuple(
                ev.model_copy(
                    update={
                        "note": f"beyond the suspect limit {_suspect_limit(ev.analyte)}: "
                        "used; check the unit"
                    }
                )
                for ev in found
            )
        else:
            keys = list(view.implausible)
            censored = False
        return tuple(
            ev
            for ev in (_pair_evidence(view, used, k, None, censored) for k in keys)
            if ev is not None
        )
    cache = view.evidence
    out: list[Evidence] = []
    f = view.facts
    for pair in pairs:
        if p.evidence_when and any(
            pair[0] == analyte and not getattr(f, fact) for analyte, fact in p.evidence_when
        ):
            continue  # e.g. a normal RDW is not supporting evidence
        ev = cache.get(pair, _UNSET)
        if ev is _UNSET:
            ev = cache[pair] = _pair_evidence(view, used, pair[0], pair[1])
        if ev is not None and all(ev is not seen for seen in out):
            out.append(ev)
    return tuple(out)


def _pair_evidence(
    view: _View, used: Mapping[str, float], analyte: str, limit: str | None, censored: bool = False
) -> Evidence | None:
    """The evidence for one analyte (and the limit it was compared with), or ``None``."""
    f = view.facts
    m = view.m.get(analyte)
    derived_tsat = m is None and analyte == "tsat" and f.tsat_derived
    calculated_egfr = m is None and analyte == "egfr" and bool(f.egfr_calculated)
    if m is None and not derived_tsat and not calculated_egfr:
        return None
    note: str | None = None
    limit_fields: dict[str, Any] = {}  # left out (defaults) when no limit was compared
    t_unit = t_key = None
    lab = False
    if limit is not None:
        threshold, t_unit, t_source, t_key, lab, note = view.limit(limit)
        limit_fields = {
            "threshold": threshold,
            "threshold_unit": t_unit,
            "threshold_source": t_source,
            "threshold_name": t_key,
            "lab_interval": lab,
        }
    if derived_tsat:
        return _new_evidence(
            analyte="tsat",
            reported=None,
            value=f.tsat.value,
            unit="%",
            note="derived from iron and TIBC (iron / TIBC x 100)",
            **limit_fields,
        )
    if calculated_egfr:
        sex = view.context.sex
        return _new_evidence(
            analyte="egfr",
            reported=None,
            value=f.egfr.value,
            unit="mL/min/1.73m2",
            note=(
                f"calculated from creatinine {view['creatinine']}, age {view['age']} and sex "
                f"{sex} (CKD-EPI 2021 creatinine equation, race-free)"
            ),
            **limit_fields,
        )
    assert m is not None
    spec = ANALYTES[analyte]
    if spec.qualitative:
        return _new_evidence(analyte=analyte, reported=view[analyte], note=note, **limit_fields)
    value: float | None = used.get(analyte)
    unit = spec.canonical_unit
    if analyte in view.implausible:
        note = "outside the plausible range: not used"
        value = (
            round_sig(m.value * resolve_unit(analyte, m.unit).factor)
            if m.value is not None and m.unit
            else m.value
        )
    elif (
        t_key is not None and not lab and THRESHOLDS[t_key].band and m.value is not None and m.unit
    ):
        assert t_unit is not None
        unit = t_unit
        value = convert(m.value, analyte, m.unit, unit)
    if censored:
        note = _censored_decided(f, analyte)
    return _new_evidence(
        analyte=analyte,
        reported=view[analyte],
        value=value,
        unit=unit,
        comparator=m.comparator,
        note=note,
        **limit_fields,
    )


def _suspect_keys(f: Facts) -> list[str]:
    """Analytes beyond their suspect limit (used, but the unit is questioned)."""
    return [k for k, flag in f.suspect.items() if bool(flag)]


def _suspect_limit(analyte: str) -> str:
    spec = ANALYTES[analyte]
    return f"{float(spec.suspect or 0):g} {spec.canonical_unit}"


def _label(analyte: str) -> str:
    """How a message names an analyte mid-sentence: the analytes data's short name, lower-cased
    unless it is an abbreviation (``MMA``, ``B12``, ``holoTC``, but ``homocysteine``)."""
    short = ANALYTES[analyte].short
    first = short.split(" ", 1)[0]
    if len(first) <= 3 or any(c.isupper() or c.isdigit() for c in first[1:]):
        return short  # an abbreviation: B12, Hb, MMA, holoTC, eGFR
    return short[:1].lower() + short[1:]


def _censored_decided(f: Facts, analyte: str) -> str:
    undecided = {"b12": f.b12_undecided, "holotc": f.holotc_undecided, "mma": f.mma_undecided}
    if analyte in undecided:
        return "did not decide a band" if undecided[analyte] else "decided its band"
    return "used as its bound where the comparison is decided"


def _render(message: Any, parts: tuple[tuple[str, str | None], ...] | None, view: _View) -> str:
    if parts is None:
        return str(message(view) if callable(message) else message.format_map(view))
    return "".join([literal + view[name] if name else literal for literal, name in parts])


def _branch(p: _Plan, f: Facts) -> tuple[str | None, Any, Any, tuple[tuple[str, str | None], ...]]:
    """(branch name, message, compiled message, evidence pairs) of a fired rule: its first
    branch that holds, or the rule's own message when it has no branches."""
    for name, when, message, parts, pairs in p.branches:
        if when(f, SCALAR):
            return name, message, parts, pairs
    if p.branches:  # the predicate fired but no branch claims it: a catalogue defect
        raise AssertionError(f"{p.code}: fired without a branch that holds")
    return None, p.rule.message, p.parts, p.rule.evidence


def interpret(
    panel: Mapping[str, Any] | LabPanel,
    context: Mapping[str, Any] | PatientContext | None = None,
    *,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    decimal: str = ".",
    comment_limit: int | None = None,
    history: Sequence[Mapping[str, Any] | HistoryEntry] | None = None,
) -> Interpretation:
    """Interpret one patient's B12 work-up.

    ``panel`` maps docs/clinical-logic.md §2 keys to results (``"250 pg/mL"``, ``{"value": 0.4, "unit":
    "umol/L"}``, numbers where no unit is needed, or :class:`Measurement`); ``context`` maps
    docs/clinical-logic.md §3 fields. ``profile`` is a shipped profile id or a path to a local TOML profile.
    ``comment_limit`` caps the printed comment (characters; default the profile's
    ``comment_limit``, else 400; docs/clinical-logic.md §6.1).
    ``history`` holds the patient's earlier results (docs/clinical-logic.md §8): each a
    mapping of analytes with its ``collected_at`` and optionally the ``context`` of that time
    (or a :class:`HistoryEntry`); the current panel's time is ``context["collected_at"]``
    (else now). Earlier results change what the current one means (serial findings such as
    ``B12_SIGNIFICANT_FALL``), never make it look safer.
    Returns an immutable :class:`Interpretation`; raises :class:`~b12labs.errors.InputError`
    subclasses for input it cannot use. Decision support, not a diagnosis.
    """
    if isinstance(panel, LabPanel):
        measurements = panel.measurements()
    elif isinstance(panel, Mapping):
        parsed = parse_panel(panel, decimal=decimal)
        measurements = {k: parsed[k] for k in ANALYTES if k in parsed}
    else:
        measurements = LabPanel.parse(panel, decimal=decimal).measurements()  # raises the error
    ctx = PatientContext.parse(context)
    prof = load_profile(profile)
    limit = resolve_comment_limit(comment_limit, prof)
    ignored: tuple[IgnoredInput, ...] = ()
    entries = parse_history(history, decimal=decimal) if history else ()
    if entries or ctx.b12_treatment_started is not None:
        serial, detail, voided = serial_inputs(measurements, ctx, entries, prof, eager_bad=False)
        if voided:
            measurements = {k: m for k, m in measurements.items() if k not in voided}
        ignored = tuple(
            _new_ignored(
                source=f"history[{i}]",
                reason=f"collected more than {prof['history_window']:g} days before the "
                "current panel: not compared",
            )
            for i in detail.ignored_old
        )
        raw, used = panel_inputs(measurements, ctx, prof)
        raw.serial, raw.serial_detail = serial, detail
    else:
        raw, used = panel_inputs(measurements, ctx, prof)
    f = evaluate(raw, prof, SCALAR)
    if f.tsat_derived:
        used["tsat"] = f.tsat.value
    view = _View(f, measurements, ctx, raw.implausible)
    fired = f.fired
    ranked: list[tuple[int, int, _Plan]] = []
    for code, on in fired.items():
        if on:
            p = _PLAN_BY_CODE[code]
            rank = p.rank if p.rank is not None else p.rule.escalate(f, SCALAR)  # type: ignore[misc]
            ranked.append((-rank, p.order, p))
    ranked.sort()  # severity (critical first), then catalogue order; never compares plans
    findings = []
    clauses: list[tuple[int, str]] = []
    suggestions: dict[tuple[str, str], None] = {}
    for neg_rank, _, p in ranked:
        actions: tuple[Action, ...] = ()
        if p.actions:
            chosen = [(a, s) for when, a, s in p.actions if when is None or when(f, SCALAR)]
            actions = tuple(a for a, _ in chosen)
            suggestions.update(dict.fromkeys(s for _, s in chosen))
        severity = _SEVERITIES[-neg_rank]
        branch, message, parts, pairs = _branch(p, f)
        if neg_rank < -1:  # info findings give the comment no clause
            clauses.append((-neg_rank, p.clauses[branch]))
        finding = {} if branch is None else {"branch": branch}
        findings.append(
            _new_finding(
                code=p.code,
                severity=severity,
                title=p.rule.title,
                message=_render(message, parts, view),
                evidence=_evidence(p, view, used, pairs),
                actions=actions,
                sources=p.sources,
                **finding,
            )
        )
    status = STATUS_NAMES[f.status]
    return _new_interpretation(
        status=_STATUSES[f.status],
        findings=tuple(findings),
        values=used,
        comment=build_comment(
            status,
            reason_name(getattr(f, "status_reason", None)),
            tuple(clauses),
            tuple(suggestions),
            limit,
        ),
        profile_id=prof.id,
        profile_version=prof.version,
        library_version=__version__,
        unrecognised_medications=ctx.unrecognised_medications if ctx.medications else (),
        **({"ignored": ignored} if ignored else {}),
    )


def normalize(panel: Mapping[str, Any] | LabPanel, *, decimal: str = ".") -> dict[str, float]:
    """Each numeric result in its canonical unit (a censored value as its bound).

    ``normalize({"b12": "180 ng/L"})["b12"]`` is 132.8 (pmol/L). A qualitative IF antibody is
    1.0 (positive) or 0.0 (negative); an equivocal one has no value (it is left out, as it is
    neither). Plausibility is not checked here; ``interpret`` does.
    """
    out: dict[str, float] = {}
    for key, m in LabPanel.parse(panel, decimal=decimal).measurements().items():
        if ANALYTES[key].qualitative:
            if m.qualitative != "equivocal":
                out[key] = 1.0 if m.qualitative == "positive" else 0.0
        else:
            out[key] = _canonical(key, m)[1]
    return out


_PLAN_BY_CODE: dict[str, _Plan] = {r.code: _plan(i, r) for i, r in enumerate(CATALOGUE)}
