"""FHIR R4 out: :func:`to_fhir` writes an :class:`~b12labs.models.Interpretation` as a
``collection`` Bundle that validates with ``fhir.resources.R4B``.

Entries:

- one ``Device`` (b12labs, with the library and threshold-profile versions) that authors
  the DetectedIssues;
- one ``DetectedIssue`` per finding: ``status`` final, ``severity`` high/moderate/low from
  critical/warning/info, ``code`` in the b12labs rule code system (:data:`RULE_SYSTEM`),
  ``detail`` the message, ``evidence`` (a text with the value, threshold and source, and a
  ``detail`` reference to the Observation where it is known), ``implicated`` the input
  Observations the finding used, ``reference`` the rule's documentation page;
- one ``ServiceRequest`` (status draft, intent proposal, LOINC code) per test to order;
- each input Observation used, echoed with an added ``interpretation`` from the HL7 v3
  ObservationInterpretation code system (``L``, ``H``, ``N``, ``IND``, ``POS``, ``NEG``, ``E``).

``Bundle.meta.tag`` carries the overall status, the profile (``version`` = profile version)
and the library version.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import normalize
from ..errors import InputError, InvalidValueError, ProfileError
from ..models import Evidence, Finding, Interpretation, Measurement, Severity
from ..profiles import THRESHOLDS, load_profile
from ..units import ANALYTES, convert
from ._common import LOINC, V3_INTERPRETATION, as_str
from ._read import ObservationResult, _as_json, read_result

__all__ = [
    "INTERPRETATION_DISPLAY",
    "RULE_DOC_URL",
    "RULE_SYSTEM",
    "observation_interpretation",
    "to_fhir",
]

#: Code system of the b12labs rule codes (``DetectedIssue.code``).
RULE_SYSTEM = "https://b12labs.org/fhir/CodeSystem/rule"
#: Documentation page of a rule (``DetectedIssue.reference``); ``{code}`` is the rule code.
RULE_DOC_URL = "https://b12labs.org/rules/{code}"
STATUS_SYSTEM = "https://b12labs.org/fhir/CodeSystem/status"
PROFILE_SYSTEM = "https://b12labs.org/fhir/CodeSystem/profile"
LIBRARY_SYSTEM = "https://b12labs.org/fhir/CodeSystem/library"
SOURCE_EXTENSION = "https://b12labs.org/fhir/StructureDefinition/source"
ACTION_EXTENSION = "https://b12labs.org/fhir/StructureDefinition/recommended-action"

_SEVERITY = {Severity.critical: "high", Severity.warning: "moderate", Severity.info: "low"}
#: Displays as in the HL7 v3 ObservationInterpretation code system (R4 and THO 3.0.0).
INTERPRETATION_DISPLAY = {
    "L": "Low",
    "H": "High",
    "N": "Normal",
    "IND": "Indeterminate",
    "POS": "Positive",
    "NEG": "Negative",
    "E": "Equivocal",
}
_RANK = {"L": 3, "H": 3, "IND": 2, "N": 1}

# How each threshold reads (see b12labs.profiles.THRESHOLDS):
#   upper: above -> H, else N          lower: below -> L, else N
#   band_low: below -> L (else no verdict: the band above decides)
#   band_ind: up to (inclusive) -> IND, above -> N
#   band_high: above -> H (else no verdict)     borderline: below -> IND, else N
_UPPER = {
    "mma_elevated",
    "mma_elevated_older",
    "mma_markedly_elevated",
    "mma_elevated_infant",
    "mma_elevated_child",
    "mma_elevated_adolescent",
    "retic_high",
    "homocysteine_elevated",
    "mcv_macrocytosis",
    "mcv_marked",
    "rdw_high",
    "crp_inflammation",
}
_LOWER = {
    "ferritin_low",
    "ferritin_low_inflammation",
    "tsat_low_inflammation",
    "folate_low",
    "rbc_folate_low",
    "hb_anaemia_male",
    "hb_anaemia_female",
    "hb_anaemia_pregnant",
    "hb_anaemia_pregnant_second_trimester",
    "hb_moderate",
    "hb_severe",
    "hb_moderate_pregnant",
    "hb_severe_pregnant",
    "egfr_renal",
    "egfr_kidney_failure",
}
#: limits that bound a range rather than mark abnormal (ferritin 100-300 in inflammation)
_RANGE_BOUNDS = {"ferritin_possible_upper"}
_BAND_LOW = {"b12_deficient", "holotc_deficient"}
_BAND_IND = {"b12_indeterminate_upper", "holotc_indeterminate_upper"}
_BAND_HIGH = {"b12_high"}
_BORDERLINE = {"folate_borderline_upper"}


# ---------------------------------------------------------------- comparisons (censored-aware)
def _below(value: float, comparator: str | None, t: float) -> bool | None:
    """Whether the true value is < ``t``: True, False, or None when a censored value cannot say."""
    if comparator is None:
        return value < t
    if comparator == "<":
        return True if value <= t else None
    if comparator == "<=":
        return True if value < t else None
    return False if value >= t else None  # > or >=


def _above(value: float, comparator: str | None, t: float) -> bool | None:
    """Whether the true value is > ``t`` (None when a censored value cannot say)."""
    if comparator is None:
        return value > t
    if comparator == ">":
        return True if value >= t else None
    if comparator == ">=":
        return True if value > t else None
    return False if value <= t else None  # < or <=


def _at_most(value: float, comparator: str | None, t: float) -> bool | None:
    """Whether the true value is <= ``t`` (None when a censored value cannot say)."""
    above = _above(value, comparator, t)
    return None if above is None else not above


def _verdict(e: Evidence) -> str | None:
    """The ObservationInterpretation code one evidence item supports, if any."""
    name, t, value = e.threshold_name, e.threshold, e.value
    if name is None or t is None or value is None:
        return None
    if e.unit and e.threshold_unit and e.unit != e.threshold_unit:
        try:
            value = convert(value, e.analyte, e.unit, e.threshold_unit)
        except (InputError, ValueError, ArithmeticError):
            return None
    return _compare(name, value, e.comparator, t)


def _compare(name: str, value: float, cmp: str | None, t: float) -> str | None:
    """The code a value (with its comparator) earns against the threshold ``name`` = ``t``."""
    if name in _UPPER:
        r = _above(value, cmp, t)
        return "IND" if r is None else ("H" if r else "N")
    if name in _LOWER:
        r = _below(value, cmp, t)
        return "IND" if r is None else ("L" if r else "N")
    if name in _BAND_LOW:
        r = _below(value, cmp, t)
        return "IND" if r is None else ("L" if r else None)
    if name in _BAND_IND:
        r = _at_most(value, cmp, t)
        return "IND" if r is None or r else "N"
    if name in _BAND_HIGH:
        r = _above(value, cmp, t)
        return "H" if r else None
    if name in _BORDERLINE:
        r = _below(value, cmp, t)
        return "IND" if r is None or r else "N"
    return None


def _from_profile(
    interpretation: Interpretation, analyte: str, measurement: Measurement | None
) -> str | None:
    """A code from the profile's own limits, for a value no finding compared with one.

    Band limits (B12, holoTC) apply to everyone, so they decide L/IND/N/H. Other limits can
    depend on age, sex or pregnancy, which the interpretation does not carry: only ``N``
    when the value is normal against every limit of its analyte, else no code.
    """
    value = interpretation.values.get(analyte)
    if value is None:
        return None
    try:
        profile = load_profile(interpretation.profile_id)
    except (ProfileError, OSError, ValueError):
        return None
    cmp = measurement.comparator if measurement is not None else None
    unit = measurement.unit if measurement is not None else None
    verdicts: list[str | None] = []
    band = False
    for key, spec in THRESHOLDS.items():
        if spec.kind != analyte or key not in profile.thresholds or key in _RANGE_BOUNDS:
            continue
        if spec.band:
            band = True
            limit = profile.band(key, unit)[0]
        else:
            limit = profile[key]
        verdicts.append(_compare(key, value, cmp, limit))
    if band:
        found = [v for v in verdicts if v is not None]
        return max(found, key=_RANK.__getitem__) if found else None
    return "N" if verdicts and all(v == "N" for v in verdicts) else None


def _from_range(m: Measurement) -> str | None:
    """L/H/N (or IND) against the lab's own reference interval, when no rule judged the value."""
    if m.value is None:
        return None
    if m.ref_low is not None:
        r = _below(m.value, m.comparator, m.ref_low)
        if r is None:
            return "IND"
        if r:
            return "L"
    if m.ref_high is not None:
        r = _above(m.value, m.comparator, m.ref_high)
        if r is None:
            return "IND"
        if r:
            return "H"
    return "N" if m.ref_low is not None or m.ref_high is not None else None


def observation_interpretation(
    interpretation: Interpretation, analyte: str, measurement: Measurement | None = None
) -> tuple[str, str] | None:
    """``(code, explanation)`` in the v3 ObservationInterpretation system for one analyte.

    Derived from the thresholds the findings compared the value with (abnormal L/H outranks
    IND, which outranks N); when no finding judged the value, from the lab's reference
    interval in ``measurement``, else from the profile's limits. A qualitative IF antibody is
    POS/NEG, or E when ``measurement`` is equivocal (it has no value). ``None`` when nothing
    supports a code.
    """
    if ANALYTES[analyte].qualitative:
        value = interpretation.values.get(analyte)
        if value is None:
            if measurement is not None and measurement.qualitative == "equivocal":
                return ("E", "equivocal")
            return None
        return ("POS", "positive") if value >= 0.5 else ("NEG", "negative")
    best: tuple[str, str] | None = None
    for finding in interpretation.findings:
        for e in finding.evidence:
            if e.analyte != analyte:
                continue
            code = _verdict(e)
            if code is None:
                continue
            if best is None or _RANK[code] > _RANK[best[0]]:
                source = (
                    "laboratory reference interval" if e.lab_interval else interpretation.profile_id
                )
                best = (
                    code,
                    f"{e.threshold_name} {e.threshold:g} {e.threshold_unit or ''}".rstrip()
                    + f" ({source})",
                )
    if best is not None:
        return best
    if measurement is not None:
        code = _from_range(measurement)
        if code is not None:
            return code, "laboratory reference interval"
    code = _from_profile(interpretation, analyte, measurement)
    if code is not None:
        return code, f"limits of {interpretation.profile_id}"
    return None


# ---------------------------------------------------------------- inputs used
@dataclass(frozen=True, slots=True)
class _Used:
    resource: dict[str, Any]
    result: ObservationResult
    reference: str
    full_url: str


def _canonical(result: ObservationResult) -> float | None:
    try:
        value = normalize({result.analyte: result.measurement}).get(result.analyte)
    except (InputError, ValueError):
        return None
    return float(value) if value is not None else None


def _used_inputs(interpretation: Interpretation, inputs: Sequence[object]) -> dict[str, _Used]:
    """The input Observation behind each value the interpretation used (newest if several)."""
    ignored = {i.source for i in interpretation.ignored}
    chosen: dict[str, _Used] = {}
    low = dt.datetime.min.replace(tzinfo=dt.UTC)
    for item in inputs:
        resource = _as_json(item)
        if resource is None:
            continue
        rid = as_str(resource.get("id"))
        if rid and f"Observation/{rid}" in ignored:
            continue
        result = read_result(resource)
        if result is None:
            continue
        if result.analyte not in interpretation.values:
            # an equivocal IF antibody is used (it is measured) but has no value (§2)
            if result.measurement.qualitative != "equivocal":
                continue
        else:
            canonical = _canonical(result)
            used = interpretation.values[result.analyte]
            if canonical is None or not math.isclose(canonical, used, rel_tol=1e-9, abs_tol=1e-12):
                continue
        full_url = f"urn:uuid:{uuid.uuid4()}"
        reference = f"Observation/{rid}" if rid else full_url
        previous = chosen.get(result.analyte)
        if previous is None or (result.when or low) > (previous.result.when or low):
            chosen[result.analyte] = _Used(resource, result, reference, full_url)
    return chosen


# ---------------------------------------------------------------- resources
def _evidence_text(e: Evidence) -> str:
    spec = ANALYTES.get(e.analyte)
    parts = [f"{spec.short if spec else e.analyte}: {e.reported or 'derived'}"]
    if e.value is not None and e.unit:
        parts[0] += f" (= {e.comparator or ''}{e.value:g} {e.unit})"
    if e.threshold is not None:
        what = e.threshold_name or "threshold"
        where = "laboratory reference interval" if e.lab_interval else (e.threshold_source or "")
        parts.append(
            f"compared with {what} {e.threshold:g} {e.threshold_unit or ''}".rstrip()
            + (f" ({where})" if where else "")
        )
    if e.note:
        parts.append(e.note)
    return "; ".join(parts)


def _detected_issue(
    finding: Finding,
    *,
    subject: str,
    device: str,
    device_display: str,
    timestamp: str,
    used: Mapping[str, _Used],
) -> dict[str, Any]:
    implicated: list[dict[str, Any]] = []
    seen: set[str] = set()
    evidence: list[dict[str, Any]] = []
    for e in finding.evidence:
        item: dict[str, Any] = {"code": [{"text": _evidence_text(e)}]}
        u = used.get(e.analyte)
        if u is not None:
            ref = {"reference": u.reference, "display": ANALYTES[e.analyte].short}
            item["detail"] = [ref]
            if u.reference not in seen:
                seen.add(u.reference)
                implicated.append(dict(ref))
        evidence.append(item)
    extensions = [{"url": SOURCE_EXTENSION, "valueString": s} for s in finding.sources]
    extensions += [
        {"url": ACTION_EXTENSION, "valueString": f"{a.kind}: {a.test}"}
        for a in finding.actions
        if a.kind != "order_test"
    ]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": {
            "coding": [{"system": RULE_SYSTEM, "code": finding.code, "display": finding.title}],
            "text": finding.title,
        },
        "severity": _SEVERITY[finding.severity],
        "patient": {"reference": subject},
        "identifiedDateTime": timestamp,
        "author": {"reference": device, "display": device_display},
        "detail": finding.message,
        "reference": RULE_DOC_URL.format(code=finding.code),
    }
    if extensions:
        issue["extension"] = extensions
    if implicated:
        issue["implicated"] = implicated
    if evidence:
        issue["evidence"] = evidence
    return issue


def _service_requests(interpretation: Interpretation, subject: str) -> list[dict[str, Any]]:
    reasons: dict[tuple[str | None, str], list[str]] = {}
    for finding in interpretation.findings:
        for a in finding.actions:
            if a.kind == "order_test":
                titles = reasons.setdefault((a.loinc, a.test), [])
                if finding.title not in titles:
                    titles.append(finding.title)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for (loinc, test), titles in reasons.items():
        key = loinc or test
        if key in seen:
            continue
        seen.add(key)
        code: dict[str, Any] = {"text": test}
        if loinc:
            code["coding"] = [{"system": LOINC, "code": loinc, "display": test}]
        out.append(
            {
                "resourceType": "ServiceRequest",
                "status": "draft",
                "intent": "proposal",
                "code": code,
                "subject": {"reference": subject},
                "reasonCode": [{"text": t} for t in titles],
            }
        )
    return out


def _echo(interpretation: Interpretation, u: _Used) -> dict[str, Any]:
    resource = copy.deepcopy(u.resource)
    verdict = observation_interpretation(interpretation, u.result.analyte, u.result.measurement)
    if verdict is not None:
        code, why = verdict
        concept = {
            "coding": [
                {"system": V3_INTERPRETATION, "code": code, "display": INTERPRETATION_DISPLAY[code]}
            ],
            "text": f"b12labs: {INTERPRETATION_DISPLAY[code]} ({why})",
        }
        existing = resource.get("interpretation")
        resource["interpretation"] = [*(existing if isinstance(existing, list) else []), concept]
    return resource


def to_fhir(
    interpretation: Interpretation,
    *,
    subject: str,
    inputs: Sequence[object] | None = None,
) -> dict[str, Any]:
    """The interpretation as a FHIR R4 ``collection`` Bundle (a JSON dict).

    ``subject`` is the patient reference (``"Patient/123"``). ``inputs`` are the Observations
    given to :func:`interpret_fhir` (dicts or models; more than were used is fine: those the
    interpretation lists as ignored, superseded or not matching a used value are skipped).
    Every resource validates with ``fhir.resources.R4B``.
    """
    if not as_str(subject):
        raise InvalidValueError(
            "subject must be a patient reference such as 'Patient/123'", code="option-invalid"
        )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    timestamp = now.isoformat()
    used = _used_inputs(interpretation, inputs or ())
    device_url = f"urn:uuid:{uuid.uuid4()}"
    device_display = f"b12labs {interpretation.library_version}"
    device = {
        "resourceType": "Device",
        "status": "active",
        "deviceName": [{"name": "b12labs", "type": "manufacturer-name"}],
        "version": [
            {"type": {"text": "b12labs library"}, "value": interpretation.library_version},
            {
                "type": {"text": f"threshold profile {interpretation.profile_id}"},
                "value": interpretation.profile_version,
            },
        ],
    }
    entries: list[dict[str, Any]] = [{"fullUrl": device_url, "resource": device}]
    for finding in interpretation.findings:
        issue = _detected_issue(
            finding,
            subject=subject,
            device=device_url,
            device_display=device_display,
            timestamp=timestamp,
            used=used,
        )
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": issue})
    for request in _service_requests(interpretation, subject):
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": request})
    for analyte in ANALYTES:
        u = used.get(analyte)
        if u is not None:
            entries.append({"fullUrl": u.full_url, "resource": _echo(interpretation, u)})
    return {
        "resourceType": "Bundle",
        "meta": {
            "tag": [
                {"system": STATUS_SYSTEM, "code": interpretation.status.value},
                {
                    "system": PROFILE_SYSTEM,
                    "code": interpretation.profile_id,
                    "version": interpretation.profile_version,
                },
                {
                    "system": LIBRARY_SYSTEM,
                    "code": "b12labs",
                    "version": interpretation.library_version,
                },
            ]
        },
        "type": "collection",
        "timestamp": timestamp,
        "entry": entries,
    }
