"""FHIR R4 in: :func:`interpret_fhir` turns a Bundle or a list of resources into one
:class:`~b12labs.models.Interpretation`, through the same ``interpret()`` as every front-end.

What is read (docs/clinical-logic.md §2–§3; the code maps are ``reference_ranges/codes/``):

- ``Observation`` coded with a LOINC code of docs/clinical-logic.md §2: ``valueQuantity`` (value,
  comparator, UCUM ``code`` or else ``unit``), ``valueString`` (``"<50 pmol/L"``),
  ``valueCodeableConcept`` (IF antibody: SNOMED CT Positive/Negative or text),
  ``valueInteger``; the first ``referenceRange`` that applies to everyone; the specimen time from
  ``effectiveDateTime`` / ``effectivePeriod.start`` / ``effectiveInstant``, else ``issued``,
  else the time of the DiagnosticReport (``result``) or panel Observation (``hasMember``)
  that lists the result; an undated result is not used.
- ``Observation`` LOINC 82810-3 (pregnancy status) and SNOMED CT-coded symptom/context
  Observations (code, or answer in ``valueCodeableConcept``).
- ``Condition`` (clinicalStatus active/recurrence/relapse or absent; verificationStatus
  not refuted/entered-in-error) by SNOMED CT, falling back to its text.
- ``MedicationRequest``/``MedicationStatement`` with status ``active`` by RxNorm or ATC,
  falling back to the text/display; ``medicationReference`` to a contained or bundled
  ``Medication``.
- ``Patient``: ``birthDate`` (age in completed years at the newest result of the episode,
  or today without results; a partial date counts from its last day, i.e. the youngest
  possible age) and ``gender``.
- Context statements (symptom Observations) older than ``window_days`` before the newest
  result are not used; a "pregnant" status older than 42 weeks is not used.

Results over time (docs/clinical-logic.md §8): the results are grouped into episodes by the
shared panel-assembly function (:func:`b12labs.panels.assemble`); the newest value of each
analyte in the newest episode is the *current* panel, whose ``collected_at`` is the newest
result's time; a result dated more than a day in the future is not used. Every earlier result - of earlier episodes,
and those the newest value superseded - is *history*: one entry per distinct specimen time
with the analytes measured then, for the core's serial rules. What was known then (treatment,
symptoms) is not reconstructed, so history entries carry no ``context``. Results more than
``history_days`` (the profile's ``history_window``, 730 days) before the newest are not passed
on (the core would ignore them).

Resources that refer to more than one patient are refused (InvalidValueError).

Whatever is not used is listed in ``Interpretation.ignored`` with the reason; one bad
resource never fails the call. Reasons never contain a patient value. The same result reported
twice (same analyte, same specimen time, same value, e.g. in two units) is used once. Two
results of the same analyte with the same specimen time and different values are a *result
conflict*: neither is used, whether current or earlier, and no older value stands in for a
current one (each is listed with a reason starting :data:`CONFLICT_REASON`); both are handed to
the core as history entries of that time, so that ``RESULT_CONFLICT`` names them. Choosing one
("last one wins") could reassure wrongly, and what is chosen never depends on the order of the
resources.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import interpret
from .._grammar import COMPARATORS, MAX_MAGNITUDE
from ..errors import B12LabsError, InputError, InvalidValueError, error_title
from ..models import IgnoredInput, Interpretation, Measurement, parse_measurement
from ..panels import DEFAULT_WINDOW_DAYS, assemble
from ..profiles import DEFAULT_PROFILE, Profile, load_profile
from ..units import ANALYTES, convert
from ..vocabulary import normalise_condition, normalise_symptom
from ._common import (
    ATC,
    LOINC,
    RXNORM,
    SNOMED,
    UCUM,
    SnomedEntry,
    as_dict,
    as_list,
    as_str,
    code_maps,
    codings,
    concept_texts,
    loinc_analyte,
    parse_fhir_datetime,
    resource_label,
    validate,
)

__all__ = ["CONFLICT_REASON", "HISTORY_DAYS", "ObservationResult", "interpret_fhir", "read_result"]

#: Start of the ``ignored`` reason of results that conflict with another (see the docstring).
CONFLICT_REASON = "result conflict"
#: Earlier results more than this many days before the newest are not passed on as history
#: (docs/clinical-logic.md §8: the core ignores them too); the shipped profiles'
#: ``history_window``, the default of :func:`interpret_fhir`.
HISTORY_DAYS = 730

#: SNOMED CT qualifier values for a qualitative result (IF antibody).
_SNOMED_POSITIVE = "10828004"
_SNOMED_NEGATIVE = "260385009"
_SNOMED_EQUIVOCAL = "42425007"
_NEGATED_TEXT = {"absent", "no", "negative", "not present", "none", "not detected", "false"}
_OBSERVATION_STATUSES = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}
_COMPARATORS = frozenset(COMPARATORS.values())  # the grammar's, as FHIR spells them
_CLINICAL_CURRENT = {"active", "recurrence", "relapse"}
_CLINICAL_NOT_CURRENT = {"inactive", "remission", "resolved"}
_VERIFICATION_EXCLUDED = {"refuted", "entered-in-error"}
_SEX = {"male": "male", "female": "female", "other": "other", "unknown": "unknown"}
#: A specimen time later than now by more than this is refused (the slack of interpret()).
_FUTURE_SLACK = dt.timedelta(days=1)
#: A pregnancy statement older than the longest pregnancy (42 weeks) is no longer current.
_PREGNANCY_MAX_DAYS = 42 * 7
_USED_TYPES = {
    "Observation",
    "Patient",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
}
_SUPPORT_TYPES = {"Medication", "DiagnosticReport"}


# ---------------------------------------------------------------- input flattening
@dataclass(slots=True)
class _Entry:
    resource: dict[str, Any]
    label: str
    full_url: str | None


@dataclass(slots=True)
class _Collected:
    entries: list[_Entry] = field(default_factory=list)
    ignored: list[IgnoredInput] = field(default_factory=list)


def _as_json(obj: object) -> dict[str, Any] | None:
    """A resource as a JSON-shaped dict (fhir.resources models are dumped by alias)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        data = dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(data, dict):
            return data
    return None


def _flatten(resources: object) -> _Collected:
    out = _Collected()
    counter = [0]

    def add(obj: object, full_url: str | None, top: bool) -> None:
        data = _as_json(obj)
        if data is None:
            out.ignored.append(
                IgnoredInput(source=f"item #{counter[0] + 1}", reason="not a FHIR resource")
            )
            counter[0] += 1
            return
        rtype = data.get("resourceType")
        if rtype == "Bundle":
            for e in as_list(data.get("entry")):
                entry = as_dict(e)
                if entry.get("resource") is not None:
                    add(entry["resource"], as_str(entry.get("fullUrl")), False)
            return
        if (
            rtype is None
            and top
            and all(
                v is None or isinstance(v, (Mapping, list)) or hasattr(v, "model_dump")
                for v in data.values()
            )
        ):
            # a CDS Hooks prefetch object: {"patient": {...}, "observations": Bundle, ...}
            for v in data.values():
                if isinstance(v, list):
                    for item in v:
                        add(item, None, False)
                elif v is not None:
                    add(v, None, False)
            return
        out.entries.append(_Entry(data, resource_label(data, counter[0], full_url), full_url))
        counter[0] += 1

    if isinstance(resources, (list, tuple)):
        for item in resources:
            add(item, None, True)
    elif isinstance(resources, Mapping) or hasattr(resources, "model_dump"):
        add(resources, None, True)
    else:
        raise InvalidValueError(
            f"cannot read a {type(resources).__name__} as FHIR input",
            accepted="a Bundle or a list of resources (dicts or fhir.resources models)",
        )
    return out


# ---------------------------------------------------------------- observations
@dataclass(frozen=True, slots=True)
class ObservationResult:
    """One lab result read from an Observation: analyte, specimen time and measurement."""

    analyte: str
    when: dt.datetime | None
    measurement: Measurement


class _Unusable(B12LabsError):
    """A resource that cannot be used; the message is the (value-free) reason, ``error_code``
    the input grammar's code when a value was refused (listed in ``Interpretation.ignored``)."""

    def __init__(self, reason: str, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.error_code = error_code


def _quantity_unit(q: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(unit for the library, unit text for display) of a FHIR Quantity."""
    system, code, text = as_str(q.get("system")), as_str(q.get("code")), as_str(q.get("unit"))
    if code and system == UCUM:
        return code, text or code
    if text:
        return text, text
    if code and system is None:
        return code, code
    return None, None


def _number(x: object) -> float | None:
    """A JSON number (or a Decimal from a fhir.resources model) as a finite float within the
    grammar's magnitude limit (a 400-digit JSON integer is refused, never overflowed)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        return None
    if isinstance(x, int) and abs(x) > MAX_MAGNITUDE:
        return None
    value = float(x)
    return value if math.isfinite(value) and abs(value) <= MAX_MAGNITUDE else None


def _huge(x: object) -> bool:
    """A JSON number beyond the grammar's magnitude limit (or infinite)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
        return False
    if isinstance(x, int):
        return abs(x) > MAX_MAGNITUDE
    value = float(x)
    return math.isinf(value) or abs(value) > MAX_MAGNITUDE


def _reference_range(resource: Mapping[str, Any]) -> Mapping[str, Any] | None:
    ranges = [as_dict(r) for r in as_list(resource.get("referenceRange"))]
    for r in ranges:
        if not r.get("appliesTo") and not r.get("age"):
            return r
    return ranges[0] if ranges else None


def _cutoff(resource: Mapping[str, Any], unit: str | None) -> float | None:
    """The upper limit of a qualitative result's reference range, when it is in ``unit``."""
    rr = _reference_range(resource)
    if rr is None:
        return None
    q = as_dict(rr.get("high"))
    high_unit, _ = _quantity_unit(q)
    if high_unit is not None and unit is not None and high_unit != unit:
        return None
    return _number(q.get("value"))


def _with_range(analyte: str, m: Measurement, resource: Mapping[str, Any]) -> Measurement:
    """Attach the lab's reference interval, converted to the value's unit; dropped if unusable."""
    rr = _reference_range(resource)
    if rr is None or m.value is None or m.unit is None:
        return m
    limits: dict[str, float] = {}
    for side, key in (("low", "ref_low"), ("high", "ref_high")):
        q = as_dict(rr.get(side))
        value = _number(q.get("value"))
        if value is None:
            continue
        unit, _ = _quantity_unit(q)
        try:
            limits[key] = (
                value if unit is None or unit == m.unit else convert(value, analyte, unit, m.unit)
            )
        except (InputError, ValueError, ArithmeticError):
            return m
    if not limits:
        return m
    if limits.get("ref_low", -math.inf) > limits.get("ref_high", math.inf):
        # a swapped interval is refused, as in interpret(): dropping it would lose the lab's
        # limits silently, using it would compare against an empty interval
        raise _Unusable(
            f"{ANALYTES[analyte].short}: {error_title('reference-inverted')}", "reference-inverted"
        )
    try:
        return Measurement.model_validate({**m.model_dump(exclude_none=True), **limits})
    except ValueError:
        return m


def _qualitative(analyte: str, concept: Mapping[str, Any]) -> Measurement:
    for system, code, _ in codings(concept):
        if system == SNOMED and code == _SNOMED_POSITIVE:
            return Measurement(qualitative="positive", reported="positive")
        if system == SNOMED and code == _SNOMED_NEGATIVE:
            return Measurement(qualitative="negative", reported="negative")
        if system == SNOMED and code == _SNOMED_EQUIVOCAL:
            # measured, but neither positive nor negative (§2)
            return Measurement(qualitative="equivocal", reported="equivocal")
    for text in concept_texts(concept):
        try:
            return parse_measurement(analyte, text)
        except InputError:
            continue
    raise _Unusable("coded result not recognised as positive, negative or equivocal")


def _measurement(analyte: str, r: Mapping[str, Any]) -> Measurement:
    spec = ANALYTES[analyte]
    if "valueQuantity" in r:
        q = as_dict(r.get("valueQuantity"))
        value = _number(q.get("value"))
        if value is None:
            raise _Unusable(
                "valueQuantity without a usable numeric value",
                "value-too-large" if _huge(q.get("value")) else "value-unparseable",
            )
        comparator = as_str(q.get("comparator"))
        if comparator is not None and comparator not in _COMPARATORS:
            raise _Unusable(
                f"valueQuantity.comparator: {error_title('comparator-invalid')} "
                "(accepted: <, <=, >, >=)",
                "comparator-invalid",
            )
        unit, unit_text = _quantity_unit(q)
        reported = f"{comparator or ''}{value:g}" + (f" {unit_text}" if unit_text else "")
        quantity: dict[str, object] = {
            "value": value,
            "unit": unit,
            "comparator": comparator,
            "reported": reported,
        }
        if spec.qualitative:
            # a numeric antibody result is read against the laboratory's cut-off (the upper
            # limit of its reference range, in the same unit); without one it is unusable
            cut = _cutoff(r, unit)
            if cut is not None:
                quantity["ref_high"] = cut
        raw: object = quantity
    elif "valueString" in r:
        text = as_str(r.get("valueString"))
        if text is None:
            raise _Unusable("empty valueString")
        raw = text
    elif "valueInteger" in r:
        value = _number(r.get("valueInteger"))
        if value is None:
            raise _Unusable("valueInteger is not a number")
        raw = {"value": value}
    elif "valueCodeableConcept" in r:
        if not spec.qualitative:
            raise _Unusable(f"a coded value cannot be used for {spec.short}")
        return _qualitative(analyte, as_dict(r.get("valueCodeableConcept")))
    else:
        raise _Unusable("no value (valueQuantity, valueString or valueCodeableConcept) to use")
    try:
        m = parse_measurement(analyte, raw)
    except InputError as exc:
        accepted = f" (accepted: {exc.accepted})" if exc.accepted else ""
        raise _Unusable(f"{spec.short}: {exc.reason}{accepted}", exc.code) from None
    return _with_range(analyte, m, r)


def _effective(r: Mapping[str, Any]) -> dt.datetime | None:
    when = parse_fhir_datetime(r.get("effectiveDateTime"))
    if when is None:
        when = parse_fhir_datetime(as_dict(r.get("effectivePeriod")).get("start"))
    if when is None:
        when = parse_fhir_datetime(r.get("effectiveInstant"))
    return when


def read_result(resource: Mapping[str, Any]) -> ObservationResult | None:
    """The lab result of an Observation, or ``None`` if it is not a usable docs/clinical-logic.md §2 result.

    Used by :func:`~b12labs.fhir.to_fhir` to recognise its ``inputs``; no validation, no date
    fallback to a DiagnosticReport.
    """
    if resource.get("resourceType") != "Observation":
        return None
    if (
        resource.get("status") in ("entered-in-error", "cancelled")
        or "dataAbsentReason" in resource
    ):
        return None
    analyte = loinc_analyte(resource.get("code"))
    if analyte is None:
        return None
    try:
        m = _measurement(analyte, resource)
    except _Unusable:
        return None
    return ObservationResult(
        analyte, _effective(resource) or parse_fhir_datetime(resource.get("issued")), m
    )


# ---------------------------------------------------------------- context statements
@dataclass(frozen=True, slots=True)
class _Statement:
    """A dated context fact: a pregnancy status or a symptom/condition term."""

    when: dt.datetime | None
    label: str
    pregnant: bool | None = None
    symptom: str | None = None
    condition: str | None = None


def _snomed_entries(concept: object) -> list[SnomedEntry]:
    table = code_maps().snomed
    return [
        table[c] for s, c, _ in codings(concept) if s == SNOMED and c is not None and c in table
    ]


def _negated(r: Mapping[str, Any]) -> bool:
    if r.get("valueBoolean") is False:
        return True
    value = r.get("valueCodeableConcept")
    if value is None:
        return False
    if any(s == SNOMED and c == _SNOMED_NEGATIVE for s, c, _ in codings(value)):
        return True
    return any(t.lower() in _NEGATED_TEXT for t in concept_texts(value))


def _ref_key(ref: str, urls: Mapping[str, Mapping[str, Any]]) -> str:
    """A reference normalised to ``Type/id`` where possible (for the one-patient check)."""
    target = urls.get(ref)
    if target is not None and as_str(target.get("id")):
        return f"{target.get('resourceType')}/{target.get('id')}"
    parts = [p for p in ref.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _value_key(analyte: str, m: Measurement) -> tuple[object, ...]:
    """What makes two results of one analyte the same result (canonical value where known)."""
    value: object = m.value
    if m.value is not None and m.unit is not None:
        try:
            # three significant digits: the same result reported in two units is not a conflict
            value = f"{convert(m.value, analyte, m.unit):.3g}"
        except (InputError, ValueError, ArithmeticError):
            value = (m.value, m.unit)
    return (value, m.comparator, m.qualitative)


def _result_order(item: tuple[Measurement, str]) -> tuple[str, float, str, str]:
    """A total order of results (to choose among equal ones regardless of input order)."""
    m, label = item
    return (m.unit or "", -math.inf if m.value is None else m.value, m.reported or "", label)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What the reader hands to :func:`b12labs.interpret`."""

    panel: dict[str, Measurement]
    context: dict[str, Any]
    history: list[dict[str, Any]]


# ---------------------------------------------------------------- the reader
@dataclass(slots=True)
class _Reader:
    window_days: float
    ignored: list[IgnoredInput] = field(default_factory=list)
    results: list[tuple[str, dt.datetime, tuple[Measurement, str]]] = field(default_factory=list)
    statements: list[_Statement] = field(default_factory=list)
    medications: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    patients: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)
    by_ref: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_url: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    report_dates: dict[int, dt.datetime] = field(default_factory=dict)

    def ignore(self, label: str, reason: str, code: str | None = None) -> None:
        if code is None:
            self.ignored.append(IgnoredInput(source=label, reason=reason))
        else:
            self.ignored.append(IgnoredInput(source=label, reason=reason, code=code))

    # -- indexes
    def index(self, entries: Sequence[_Entry]) -> None:
        for e in entries:
            r = e.resource
            rtype, rid = as_str(r.get("resourceType")), as_str(r.get("id"))
            if rtype and rid:
                self.by_ref[f"{rtype}/{rid}"] = r
            if e.full_url:
                self.by_url[e.full_url] = r
        # Results without their own time inherit it from the report or panel that lists them
        # (DiagnosticReport.result, Observation.hasMember), e.g. DiagnosticReport -> CBC panel
        # -> haemoglobin; three passes cover that nesting and one more level.
        for _ in range(3):
            for e in entries:
                r = e.resource
                members = {"DiagnosticReport": "result", "Observation": "hasMember"}.get(
                    str(r.get("resourceType"))
                )
                if members is None or not r.get(members):
                    continue
                when = (
                    _effective(r)
                    or parse_fhir_datetime(r.get("issued"))
                    or self.report_dates.get(id(r))
                )
                if when is None:
                    continue
                for ref in as_list(r.get(members)):
                    target = self.resolve(as_str(as_dict(ref).get("reference")), None)
                    if target is not None:
                        self.report_dates.setdefault(id(target), when)

    def resolve(
        self, ref: str | None, container: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        if ref is None:
            return None
        if ref.startswith("#") and container is not None:
            for c in as_list(container.get("contained")):
                if as_str(as_dict(c).get("id")) == ref[1:]:
                    return as_dict(c)
            return None
        if ref in self.by_url:
            return self.by_url[ref]
        return self.by_ref.get(_ref_key(ref, {}))

    def subject(self, r: Mapping[str, Any], element: str = "subject") -> None:
        ref = as_str(as_dict(r.get(element)).get("reference"))
        if ref is None:
            return
        key = _ref_key(ref, self.by_url)
        if key.startswith("Patient/") or ref.startswith("urn:"):
            self.subjects.add(key)

    # -- resources
    def read(self, e: _Entry) -> None:
        rtype = as_str(e.resource.get("resourceType"))
        if rtype in _SUPPORT_TYPES:
            return
        if rtype not in _USED_TYPES:
            self.ignore(e.label, f"resource type {rtype or '(none)'} not used by b12labs")
            return
        try:
            if rtype == "Observation":
                self.observation(e)
            elif rtype == "Patient":
                self.patient(e)
            elif rtype == "Condition":
                self.condition(e)
            else:
                self.medication(e)
        except _Unusable as exc:
            self.ignore(e.label, str(exc), exc.error_code)
        except (TypeError, ValueError, AttributeError, KeyError, ArithmeticError):
            # A shape no check above foresaw: report it as unusable rather than fail the call.
            self.ignore(e.label, "malformed resource (an element has the wrong type)")

    def _valid(self, r: Mapping[str, Any]) -> None:
        problem = validate(r)
        if problem is not None:
            raise _Unusable(problem)

    def observation(self, e: _Entry) -> None:
        r = e.resource
        status = r.get("status")
        if not isinstance(status, str):
            raise _Unusable("missing or unknown Observation.status")
        if status in ("entered-in-error", "cancelled"):
            raise _Unusable(f"status {status}")
        if status not in _OBSERVATION_STATUSES:
            raise _Unusable("missing or unknown Observation.status")
        if "dataAbsentReason" in r:
            reason = next((c for _, c, _ in codings(r.get("dataAbsentReason")) if c), None)
            raise _Unusable(f"dataAbsentReason {reason}" if reason else "dataAbsentReason")
        maps = code_maps()
        analyte = loinc_analyte(r.get("code"))
        when = _effective(r)
        if analyte is not None:
            self._valid(r)
            m = _measurement(analyte, r)
            when = when or parse_fhir_datetime(r.get("issued")) or self.report_dates.get(id(r))
            if when is None:
                raise _Unusable("no effective date or issued time: cannot be placed in an episode")
            if when > dt.datetime.now(dt.UTC) + _FUTURE_SLACK:
                # refused as interpret() refuses such a collected_at, but for this result only
                raise _Unusable(f"specimen time: {error_title('date-future')}", "date-future")
            self.subject(r)
            self.results.append((analyte, when, (m, e.label)))
            return
        loincs = {c for s, c, _ in codings(r.get("code")) if s == LOINC and c}
        if loincs & maps.pregnancy_observations:
            self._valid(r)
            answers = [
                maps.pregnancy_answers.get(c)
                for s, c, _ in codings(r.get("valueCodeableConcept"))
                if s == LOINC and c is not None
            ]
            answers += [
                x.pregnant
                for x in _snomed_entries(r.get("valueCodeableConcept"))
                if x.pregnant is not None
            ]
            known = [a for a in answers if a is not None]
            if not known:
                raise _Unusable("pregnancy status unknown or its answer not recognised")
            self.subject(r)
            self.statements.append(
                _Statement(when or parse_fhir_datetime(r.get("issued")), e.label, pregnant=known[0])
            )
            return
        entries = _snomed_entries(r.get("code"))
        from_value = False
        if not entries:
            entries = _snomed_entries(r.get("valueCodeableConcept"))
            from_value = True
        if not entries:
            raise _Unusable("code not used by b12labs")
        self._valid(r)
        if not from_value and _negated(r):
            raise _Unusable("the finding is recorded as absent")
        self.subject(r)
        when = when or parse_fhir_datetime(r.get("issued"))
        for x in entries:
            self.statements.append(
                _Statement(
                    when, e.label, pregnant=x.pregnant, symptom=x.symptom, condition=x.condition
                )
            )

    def patient(self, e: _Entry) -> None:
        self._valid(e.resource)
        self.patients.append((e.label, e.resource))

    def condition(self, e: _Entry) -> None:
        r = e.resource
        verification = {c for _, c, _ in codings(r.get("verificationStatus")) if c}
        excluded = verification & _VERIFICATION_EXCLUDED
        if excluded:
            raise _Unusable(f"verificationStatus {sorted(excluded)[0]}")
        clinical = {c for _, c, _ in codings(r.get("clinicalStatus")) if c}
        if clinical and not clinical & _CLINICAL_CURRENT:
            raise _Unusable(f"clinicalStatus {sorted(clinical)[0]}: not current")
        entries = _snomed_entries(r.get("code"))
        terms: list[tuple[str | None, str | None]] = []
        if not entries:
            for text in concept_texts(r.get("code")):
                for kind, fn in (
                    ("condition", normalise_condition),
                    ("symptom", normalise_symptom),
                ):
                    try:
                        term = fn(text)
                    except InputError:
                        continue
                    terms.append((term, None) if kind == "condition" else (None, term))
                    break
                if terms:
                    break
        if not entries and not terms:
            raise _Unusable("code not used by b12labs")
        self._valid(r)
        self.subject(r)
        when = (
            parse_fhir_datetime(r.get("onsetDateTime"))
            or parse_fhir_datetime(as_dict(r.get("onsetPeriod")).get("start"))
            or parse_fhir_datetime(r.get("recordedDate"))
        )
        for x in entries:
            if x.condition:
                self.conditions.append(x.condition)
            if x.symptom:
                self.statements.append(_Statement(None, e.label, symptom=x.symptom))
            if x.pregnant is not None:
                self.statements.append(_Statement(when, e.label, pregnant=x.pregnant))
        for condition, symptom in terms:
            if condition:
                self.conditions.append(condition)
            if symptom:
                self.statements.append(_Statement(None, e.label, symptom=symptom))

    def medication(self, e: _Entry) -> None:
        r = e.resource
        status = r.get("status")
        if status != "active":
            raise _Unusable(
                f"status {status}: not an active medication"
                if isinstance(status, str)
                else "missing status"
            )
        if r.get("doNotPerform") is True:
            raise _Unusable("doNotPerform: the medicine is not to be given")
        concept: Mapping[str, Any] | None = None
        if "medicationCodeableConcept" in r:
            concept = as_dict(r.get("medicationCodeableConcept"))
        fallback: str | None = None
        if concept is None:
            ref = as_dict(r.get("medicationReference"))
            fallback = as_str(ref.get("display"))
            target = self.resolve(as_str(ref.get("reference")), r)
            if (
                target is not None
                and target.get("resourceType") == "Medication"
                and validate(target) is None
            ):
                concept = as_dict(target.get("code"))
        self._valid(r)
        names = self._medication_names(concept) if concept is not None else []
        if not names and fallback:
            names = [fallback]
        if not names:
            raise _Unusable("medication without a usable code or text")
        self.subject(r, "subject")
        self.medications.extend(names)

    @staticmethod
    def _medication_names(concept: Mapping[str, Any]) -> list[str]:
        maps = code_maps()
        names: list[str] = []
        for system, code, _ in codings(concept):
            name = None
            if system == RXNORM and code:
                name = maps.rxnorm.get(code)
            elif system == ATC and code:
                name = maps.atc.get(code)
            if name and name not in names:
                names.append(name)
        if names:
            return names
        texts = concept_texts(concept)
        return texts[:1]

    # -- the context
    def context(self, reference: dt.datetime) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        self._patient_context(reference, ctx)
        symptoms: list[str] = []
        conditions = list(self.conditions)
        earliest = reference - dt.timedelta(days=self.window_days)
        pregnancy: list[_Statement] = []
        for s in self.statements:
            if s.pregnant is not None:
                pregnancy.append(s)
                continue
            if s.when is not None and s.when < earliest:
                self.ignore(
                    s.label,
                    f"older than the {self.window_days:g}-day window before the newest result",
                )
                continue
            if s.symptom:
                symptoms.append(s.symptom)
            if s.condition:
                conditions.append(s.condition)
        pregnant = self._pregnancy(pregnancy, reference)
        if pregnant is not None:
            ctx["pregnant"] = pregnant
        if self.medications:
            ctx["medications"] = list(dict.fromkeys(self.medications))
        if conditions:
            ctx["conditions"] = list(dict.fromkeys(conditions))
        if symptoms:
            ctx["symptoms"] = list(dict.fromkeys(symptoms))
        return ctx

    def _pregnancy(self, statements: list[_Statement], reference: dt.datetime) -> bool | None:
        if not statements:
            return None
        low = dt.datetime.min.replace(tzinfo=dt.UTC)
        ordered = sorted(statements, key=lambda s: s.when or low, reverse=True)
        chosen = ordered[0]
        for s in ordered[1:]:
            self.ignore(s.label, "superseded by a newer pregnancy status")
        if (
            chosen.pregnant
            and chosen.when is not None
            and (reference - chosen.when > dt.timedelta(days=_PREGNANCY_MAX_DAYS))
        ):
            self.ignore(
                chosen.label, "pregnancy status older than 42 weeks before the newest result"
            )
            return None
        return chosen.pregnant

    def _patient_context(self, reference: dt.datetime, ctx: dict[str, Any]) -> None:
        if not self.patients:
            return
        ids = {as_str(p.get("id")) for _, p in self.patients} - {None}
        if len(ids) > 1:
            raise InvalidValueError(
                f"the input holds {len(ids)} different Patient resources; interpret one patient at a time"
            )
        label, patient = self.patients[-1]
        birth = parse_fhir_datetime(patient.get("birthDate"), latest=True)
        if birth is not None:
            day = reference.date()
            years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
            if years < 0:
                self.ignore(label, "birthDate after the newest result: age not used")
            else:
                ctx["age"] = years
        sex = _SEX.get(str(patient.get("gender")))
        if sex is not None:
            ctx["sex"] = sex

    def inputs(self, history_days: float) -> _Inputs:
        """The current panel, its context and the history (see the module docstring).

        Results are grouped by (analyte, specimen time) first, so that neither the choice of the
        current value nor a conflict depends on the order of the resources.
        """
        groups = self._same_time_groups()
        keys = sorted(groups)
        episodes = assemble(
            [(a, when, (a, when)) for a, when in keys], window_days=self.window_days
        )
        panel: dict[str, Measurement] = {}
        current: set[tuple[str, dt.datetime]] = set()
        reference = dt.datetime.now(dt.UTC)
        if episodes:
            newest = episodes[-1]
            reference = newest.end
            for analyte, key in newest.newest.items():
                current.add(key)
                if len(groups[key]) == 1:
                    panel[analyte] = groups[key][0][0]
                # else: a conflict at the newest time; no older value stands in for it
        earliest = reference - dt.timedelta(days=history_days)
        at_time: dict[dt.datetime, list[dict[str, Any]]] = {}
        for key in keys:
            analyte, when = key
            if when < earliest:
                for _, label in groups[key]:
                    self.ignore(
                        label,
                        f"older than {history_days:g} days before the newest result: not compared",
                    )
                continue
            if len(groups[key]) > 1:
                for _, label in groups[key]:
                    self.ignore(
                        label,
                        f"{CONFLICT_REASON}: another {ANALYTES[analyte].short} result with the "
                        "same specimen time has a different value; neither is used",
                    )
            elif key in current:
                continue
            # an earlier result, or each side of a conflict: to the history, one entry per
            # distinct time (two entries at one time when its values conflict)
            entries = at_time.setdefault(when, [])
            for i, (m, _) in enumerate(groups[key]):
                if i == len(entries):
                    entries.append({"collected_at": when})
                entries[i][analyte] = m
        context = self.context(reference)
        if episodes:
            context["collected_at"] = reference
        history = [e for when in sorted(at_time) for e in at_time[when]]
        return _Inputs(panel, context, history)

    def _same_time_groups(self) -> dict[tuple[str, dt.datetime], list[tuple[Measurement, str]]]:
        """(analyte, specimen time) -> its distinct results (more than one is a conflict), in
        an order that does not depend on the input; a result reported twice (e.g. in two
        units) is kept once and the repeat listed as superseded."""
        members: dict[tuple[str, dt.datetime], list[tuple[Measurement, str]]] = {}
        for analyte, when, item in self.results:
            members.setdefault((analyte, when), []).append(item)
        out: dict[tuple[str, dt.datetime], list[tuple[Measurement, str]]] = {}
        for (analyte, when), items in members.items():
            by_value: dict[str, list[tuple[Measurement, str]]] = {}
            for item in items:
                by_value.setdefault(repr(_value_key(analyte, item[0])), []).append(item)
            kept = []
            for value in sorted(by_value):
                same = sorted(by_value[value], key=_result_order)
                kept.append(same[0])
                for _, label in same[1:]:
                    self.ignore(
                        label,
                        "superseded: the same result as another with the same specimen time",
                    )
            out[(analyte, when)] = kept
        return out

    def check_one_patient(self) -> None:
        keys = set(self.subjects)
        for _, p in self.patients:
            pid = as_str(p.get("id"))
            if pid:
                keys.add(f"Patient/{pid}")
        if len(keys) > 1:
            raise InvalidValueError(
                f"the resources refer to {len(keys)} different patients; interpret one patient at a time"
            )


def interpret_fhir(
    resources: object,
    *,
    profile: str | Path | Profile = DEFAULT_PROFILE,
    window_days: float = DEFAULT_WINDOW_DAYS,
    history_days: float | None = None,
) -> Interpretation:
    """Interpret one patient's FHIR R4 resources (a Bundle, or a list of resources).

    Resources may be JSON dicts or ``fhir.resources`` models; Bundles (any type) and CDS Hooks
    prefetch objects are unpacked. The newest value of each analyte in the newest episode
    (results within ``window_days`` of its first result, by the shared
    :func:`b12labs.panels.assemble`) is the current panel; every earlier result within
    ``history_days`` of the newest (default: the profile's ``history_window``, 730 days in the
    shipped profiles) is its history (docs/clinical-logic.md §8). Both go to
    :func:`b12labs.interpret` under ``profile``. Every input not used is listed in
    ``Interpretation.ignored`` with the reason. Raises
    :class:`~b12labs.errors.InvalidValueError` only for input that is not FHIR at all or that
    mixes patients. Decision support, not a diagnosis.
    """
    prof = load_profile(profile)
    if history_days is None:
        history_days = float(prof["history_window"])
    inputs, ignored = _read(resources, window_days=window_days, history_days=history_days)
    interpretation = interpret(inputs.panel, inputs.context, profile=prof, history=inputs.history)
    return interpretation.model_copy(update={"ignored": (*ignored, *interpretation.ignored)})


def _read(
    resources: object, *, window_days: float, history_days: float
) -> tuple[_Inputs, tuple[IgnoredInput, ...]]:
    """The reader without the interpretation: the inputs for ``interpret()`` and what was not
    used."""
    if not history_days > 0:
        raise InvalidValueError("history_days must be positive", code="option-invalid")
    collected = _flatten(resources)
    reader = _Reader(window_days=window_days, ignored=list(collected.ignored))
    reader.index(collected.entries)
    for e in collected.entries:
        reader.read(e)
    reader.check_one_patient()
    inputs = reader.inputs(history_days)
    return inputs, tuple(reader.ignored)
